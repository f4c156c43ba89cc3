"""``esb soap operations WSDL``: the services, ports and operations of a contract, for an engineer
meeting it for the first time (read offline: imports are resolved from local files only, all under the
contract root: ``--root``, by default the project's ``config/contracts/`` when the WSDL lies in it, else the
WSDL's own folder).

The SOAP adapter's own command group, added to the ``esb`` CLI through its ``commands()`` capability.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import orjson

from adapters.soap.config import DEFAULT_CONTRACT_ROOT


def _describe(contract: Any) -> list[dict[str, Any]]:
    rows = []
    for op in contract.operations:
        signature = None
        if op.input_element:
            element = contract.element(op.input_element)
            signature = element.type.signature(schema=contract.document.types, standalone=False)
        rows.append(
            {
                "service": op.service,
                "port": op.port,
                "soap": op.soap_version,
                "operation": op.name,
                "style": "one-way" if op.one_way else "request-reply",
                "soap_action": op.soap_action,
                "input": op.input_element,
                "output": op.output_element,
                "address": op.address,
                "input_fields": signature,
            }
        )
    return rows


def _project(ctx: click.Context) -> Path:
    project = getattr(ctx.find_root().obj, "project", None)
    return project if isinstance(project, Path) else Path.cwd()


def default_root(wsdl: Path, project: Path) -> Path:
    """Return the project's contract folder when ``wsdl`` lies in it, else the WSDL's own folder."""
    contracts = Path(os.path.realpath(project / DEFAULT_CONTRACT_ROOT))
    return contracts if contracts in Path(os.path.realpath(wsdl)).parents else wsdl.parent


@click.group()
def soap() -> None:
    """Look into SOAP contracts (WSDL)."""


@soap.command()
@click.argument("wsdl", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The contract root: every file the WSDL imports must lie in it. Default: the project's "
    "config/contracts/ when the WSDL lies in it, else the WSDL's own folder.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per operation).")
@click.pass_context
def operations(ctx: click.Context, wsdl: Path, root: Path | None, as_json: bool) -> None:
    """List the services, ports and operations of WSDL with their input and output elements."""
    from adapters.soap.wsdl import load_contract

    contract = load_contract(wsdl, root=root or default_root(wsdl, _project(ctx)))
    rows = _describe(contract)
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{wsdl}  ({len(contract.files)} file(s): {', '.join(p.name for p in contract.files)})")
    current = None
    for row in rows:
        if (row["service"], row["port"]) != current:
            current = (row["service"], row["port"])
            click.echo(
                f"\nservice {row['service']}  port {row['port']}  SOAP {row['soap']}  {row['address']}"
            )
        click.echo(f"  {row['operation']}  ({row['style']}, SOAPAction {row['soap_action'] or '-'})")
        click.echo(f"      in : {row['input']}")
        if row["input_fields"]:
            click.echo(f"           {row['input_fields']}")
        click.echo(f"      out: {row['output'] or '-'}")
