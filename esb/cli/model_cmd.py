"""``esb model``: list, show, validate and diff canonical schemas; convert to and from TMF v4.

Exit codes: 0 fine; 1 the document is invalid, the TMF document cannot be read, or ``diff`` found a
breaking change (so CI can stop a breaking edit to a published version); 2 a project mistake (unknown
schema, unreadable schema file), as everywhere in ``esb``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from esb.exceptions import ConfigError, EsbError
from esb.model.diff import diff_schemas, is_breaking
from esb.model.fields import schema_fields
from esb.model.registry import ModelRegistry
from esb.model.states import MACHINES
from esb.model.tmf import TMFConversionError, dumps, entity_spec, from_tmf, loads, to_tmf


def _registry(ctx: click.Context) -> ModelRegistry:
    return ModelRegistry(ctx.obj.project / "canonical_model")


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


def _read_json(path: Path, *, exact: bool = False) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{path}: cannot read: {exc}", 1)
    try:
        return loads(text) if exact else json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{path}:{exc.lineno}: not JSON: {exc.msg}", 1)


def _resolve(ctx: click.Context, name: str) -> str:
    try:
        return _registry(ctx).resolve_name(name)
    except ConfigError as exc:
        _fail(str(exc), 2)
        raise  # unreachable: _fail raises


@click.group()
def model() -> None:
    """The canonical model: schemas, states, validation, versions and the TMF v4 form."""


@model.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the canonical entity schemas."""
    reg = _registry(ctx)
    rows = [
        (n, str(reg.schema(n).get("title", "")), str(reg.schema(n).get("description", "")))
        for n in reg.names()
    ]
    if as_json:
        click.echo(
            json.dumps([{"name": n, "title": t, "description": d} for n, t, d in rows], ensure_ascii=False)
        )
        return
    width = max((len(n) for n, _, _ in rows), default=4)
    for name, title, desc in rows:
        click.echo(f"{name:<{width}}  {title}: {desc[:90]}")


def _machines_for(schema: dict[str, Any]) -> list[str]:
    text = json.dumps(schema)
    return [m.name for m in MACHINES.values() if m.schema_def and f'#/$defs/{m.schema_def}"' in text]


@model.command()
@click.argument("entity")
@click.option("--depth", default=1, show_default=True, help="Levels of nested objects to list.")
@click.pass_context
def show(ctx: click.Context, entity: str, depth: int) -> None:
    """Show ENTITY's fields (type, required, allowed values) and its state machines."""
    name = _resolve(ctx, entity)
    reg = _registry(ctx)
    schema = reg.schema(name)
    click.echo(f"{name}: {schema.get('title', '')}\n{schema.get('description', '')}\n")
    fields = schema_fields(schema, reg.resources(), depth=depth)
    width = max((len(f.path) for f in fields), default=5)
    click.echo(f"{'FIELD':<{width}}  {'TYPE':<24} REQ  VALUES / DESCRIPTION")
    for f in fields:
        extra = ", ".join(f.values) if f.values else f.description
        click.echo(f"{f.path:<{width}}  {f.type:<24} {'yes' if f.required else '   '}  {extra[:100]}")
    for machine_name in _machines_for(schema):
        m = MACHINES[machine_name]
        click.echo(f"\nstates ({m.name}, {m.standard}); initial: {', '.join(sorted(m.initial))}")
        for state in m.states:
            nxt = ", ".join(sorted(m.transitions[state])) or "(final)"
            click.echo(f"  {state:<22} -> {nxt}")


@model.command()
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def validate(ctx: click.Context, entity: str, file: Path) -> None:
    """Validate FILE (JSON) against ENTITY's schema; print every error with its JSON path."""
    name = _resolve(ctx, entity)
    doc = _read_json(file)
    errors = _registry(ctx).validator(name).errors(doc)
    if not errors:
        click.echo(f"{file}: valid {name}")
        return
    for path, message in errors:
        click.echo(f"{file}: {path}: {message}")
    _fail(f"{file}: {len(errors)} error(s) against {name}", 1)


def _load_schema(ctx: click.Context, ref: str) -> dict[str, Any]:
    path = Path(ref)
    if path.suffix == ".json" and path.exists():
        doc = _read_json(path)
        if not isinstance(doc, dict):
            _fail(f"{path}: a schema must be a JSON object", 2)
        return dict(doc)
    return _registry(ctx).schema(_resolve(ctx, ref))


@model.command()
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def diff(ctx: click.Context, old: str, new: str, as_json: bool) -> None:
    """Compare schema OLD with NEW (names like product_order.v1 or file paths); exit 1 if breaking."""
    changes = diff_schemas(_load_schema(ctx, old), _load_schema(ctx, new), _registry(ctx).resources())
    if as_json:
        keys = ("path", "kind", "breaking", "detail", "note")
        click.echo(json.dumps([{k: getattr(c, k) for k in keys} for c in changes], ensure_ascii=False))
    else:
        for change in changes:
            click.echo(str(change))
        breaking = sum(c.breaking for c in changes)
        click.echo(f"{len(changes)} change(s), {breaking} breaking" if changes else "no changes")
    if is_breaking(changes):
        raise click.exceptions.Exit(1)


def _convert(ctx: click.Context, entity: str, file: Path, direction: str) -> None:
    try:
        spec = entity_spec(entity)
        doc = _read_json(file, exact=True)
        if direction == "to":
            canonical = json.loads(dumps(doc))  # decimals back to plain JSON values
            errors = _registry(ctx).validator(spec.canonical_schema).errors(canonical)
            if errors:
                for path, message in errors:
                    click.echo(f"{file}: {path}: {message}", err=True)
                _fail(f"{file}: not a valid {spec.canonical_schema}; not converted", 1)
            click.echo(dumps(to_tmf(entity, canonical)))
            return
        result, warnings = from_tmf(entity, doc, _registry(ctx))
    except TMFConversionError as exc:
        _fail(str(exc), 1)
        return
    except EsbError as exc:
        _fail(str(exc), exc.exit_code)
        return
    for warning in warnings:
        click.echo(f"warning: {file}: {warning}", err=True)
    click.echo(dumps(result))
    errors = _registry(ctx).validator(spec.canonical_schema).errors(json.loads(dumps(result)))
    for path, message in errors:
        click.echo(f"{file}: {path}: {message}", err=True)
    if errors:
        _fail(f"{file}: the converted document is not a valid {spec.canonical_schema}", 1)


@model.command("to-tmf")
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def to_tmf_cmd(ctx: click.Context, entity: str, file: Path) -> None:
    """Print the TMF v4 form of canonical FILE (validated first)."""
    _convert(ctx, entity, file, "to")


@model.command("from-tmf")
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def from_tmf_cmd(ctx: click.Context, entity: str, file: Path) -> None:
    """Print the canonical form of TMF v4 FILE; corrections go to stderr as warnings."""
    _convert(ctx, entity, file, "from")
