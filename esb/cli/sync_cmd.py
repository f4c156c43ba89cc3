"""``esb sync``: sync state, full resync, reconciliation against a target's extract, and repair.

Exit codes: 0 done (reconcile: the target holds what the hub sent); 1 records or sends failed, or a run
failed; 2 usage or project error; 3 (reconcile) differences found, stored as a report to repair from.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from esb.cli.main import Obj
from esb.exceptions import ConfigError
from esb.logging import configure_logging
from esb.ops.common import load, open_journal, table, to_json
from esb.project import Project
from esb.resync.extract import extract_blocks, extract_records
from esb.resync.reconcile import Reconciler, Reconciliation
from esb.resync.resync import Resync
from esb.sync.runs import COUNTS, KINDS, Run, SyncRuns
from esb.sync.store import SyncStore

#: reconcile found keys that differ (not an error: a report to repair from)
DIFFERENCES = 3


@click.group()
def sync() -> None:
    """Sync state, full resync, reconciliation and repair (docs/sync.md)."""


def _store(project: Project) -> SyncStore:
    store = SyncStore(project.settings.journal.url, pool_size=2)
    store.connect()
    return store


@sync.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(obj: Obj, as_json: bool) -> None:
    """Every sync: keys held (live, deleted), its resync/reconcile settings, the last runs and reports."""
    project = load(obj.project, obj.env)
    settings = project.settings.sync
    with _store(project) as store:
        runs = SyncRuns(store)
        names = sorted({*store.names(), *settings.resync, *settings.reconcile})
        rows: list[dict[str, Any]] = []
        for name in names:
            rows.append(
                {
                    "sync": name,
                    "live": store.count(name, deleted=False),
                    "deleted": store.count(name, deleted=True),
                    "resync": name in settings.resync,
                    "reconcile": name in settings.reconcile,
                    "runs": [r.as_dict() for r in runs.runs(name, limit=3)],
                    "reports": [r.as_dict() for r in runs.reports(name, limit=3)],
                }
            )
    if as_json:
        click.echo(to_json(rows))
        return
    if not rows:
        click.echo("no sync holds state and none is configured")
        return
    click.echo(
        table(
            ["SYNC", "LIVE", "DELETED", "LAST RUN", "STATUS", "COUNTS", "LAST REPORT"],
            [
                [
                    r["sync"],
                    r["live"],
                    r["deleted"],
                    *(_run_cells(r["runs"][0]) if r["runs"] else ["-", "-", "-"]),
                    _report_cell(r["reports"][0]) if r["reports"] else "-",
                ]
                for r in rows
            ],
        )
    )


def _run_cells(run: dict[str, Any]) -> list[str]:
    counts = " ".join(f"{k}={run['counts'].get(k, 0)}" for k in COUNTS)
    return [f"{run['id']} ({run['kind']})", run["status"], counts]


def _report_cell(report: dict[str, Any]) -> str:
    counts = report["counts"]
    return f"{report['id']}: " + " ".join(f"{k}={counts.get(k, 0)}" for k in KINDS)


@sync.command()
@click.argument("name")
@click.option(
    "--extract",
    "extract",
    type=click.Path(path_type=Path),
    default=None,
    help="The source's full extract (read with the resync's extract endpoint's layout).",
)
@click.option(
    "--keys", default=None, help="Repair only these keys (comma-separated): resend the stored body."
)
@click.option("--from-report", "report_id", default=None, help="Repair the keys of a reconciliation report.")
@click.option("--restart", is_flag=True, help="Start over instead of resuming an unfinished run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def resync(
    obj: Obj,
    name: str,
    extract: Path | None,
    keys: str | None,
    report_id: str | None,
    restart: bool,
    as_json: bool,
) -> None:
    """Send NAME's target only what differs from the source's full extract (--extract), or repair the
    listed keys (--keys, --from-report). A killed run resumes where it stopped when run again."""
    if sum(x is not None for x in (extract, keys, report_id)) != 1:
        raise click.UsageError("give exactly one of --extract FILE, --keys K1,K2, --from-report REPORT_ID")
    project = load(obj.project, obj.env)
    configure_logging(project.settings.logging.level, project.settings.logging.format, sys.stderr)
    spec = project.settings.sync.resync.get(name)
    if extract is not None and spec is None:
        raise ConfigError(f"sync.resync.{name} is not configured in settings (extract endpoint, transform)")
    with open_journal(project) as journal, _store(project) as store:
        engine = Resync(project, journal, store, name, spec, progress=None if as_json else _progress)
        try:
            if extract is not None:
                assert spec is not None
                blocks, parse = extract_blocks(project, spec.extract, extract)
                run = engine.run(blocks, parse, str(extract.resolve()), restart=restart)
            else:
                run = _repair(engine, store, name, keys, report_id)
        finally:
            engine.close()
    if as_json:
        click.echo(to_json(run.as_dict()))
    else:
        click.echo(
            f"{run.kind} {run.id} of {name}: {run.status}: "
            + " ".join(f"{k}={run.counts.get(k, 0)}" for k in COUNTS)
        )
        for sample in run.counts.get("error_samples", [])[:10]:
            click.echo(f"  error: {sample}")
    if run.counts.get("errors") or run.status != "done":
        raise click.exceptions.Exit(1)


def _progress(run: Run) -> None:
    click.echo(
        f"  ... {run.checkpoint} records: " + " ".join(f"{k}={run.counts[k]}" for k in COUNTS), err=True
    )


def _repair(engine: Resync, store: SyncStore, name: str, keys: str | None, report_id: str | None) -> Run:
    """Resend the stored body of each listed key (a delete for a report's extra keys)."""
    runs = SyncRuns(store)
    resend: list[str] = []
    delete: list[str] = []
    if keys is not None:
        resend = [k.strip() for k in keys.split(",") if k.strip()]
        if not resend:
            raise click.UsageError("--keys: no key given")
        source = f"keys:{','.join(resend)}"[:1000]
    else:
        assert report_id is not None
        report = runs.report(report_id)
        if report is None or report.name != name:
            raise ConfigError(f"no reconciliation report {report_id!r} of sync {name!r} (esb sync status)")
        resend = report.keys.get("missing", []) + report.keys.get("different", [])
        delete = report.keys.get("extra", [])
        source = f"report:{report_id}"
    run = runs.start(name, "repair", source)
    try:
        for start in range(0, len(resend), 500):
            engine.send_stored(run, resend[start : start + 500])
        for start in range(0, len(delete), 500):
            engine.send_delete(run, delete[start : start + 500])
        run.counts["read"] = len(resend) + len(delete)
        run.checkpoint = run.counts["read"]
    except Exception as exc:
        runs.finish(run, f"{type(exc).__name__}: {exc}")
        raise
    runs.finish(run)
    return run


@sync.command()
@click.argument("name")
@click.option(
    "--extract",
    "extract",
    type=click.Path(path_type=Path),
    required=True,
    help="The target's extract (read with the reconciliation's extract endpoint's layout).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def reconcile(obj: Obj, name: str, extract: Path, as_json: bool) -> None:
    """Compare NAME's target extract with what the hub sent it: missing, extra and different keys.

    The report is stored (its id printed); exit 3 when keys differ, 0 when none do."""
    project = load(obj.project, obj.env)
    spec = project.settings.sync.reconcile.get(name)
    if spec is None:
        raise ConfigError(
            f"sync.reconcile.{name} is not configured in settings (extract endpoint, transform)"
        )
    with _store(project) as store:
        found = Reconciler(project, store, name, spec).run(
            extract_records(project, spec.extract, extract), str(extract.resolve())
        )
    if as_json:
        click.echo(to_json(found.as_dict()))
    else:
        click.echo(render(found))
    if found.counts.get("errors"):
        raise click.exceptions.Exit(1)
    if found.differs:
        raise click.exceptions.Exit(DIFFERENCES)


def render(found: Reconciliation, shown: int = 20) -> str:
    """The report for people: counts, then up to ``shown`` keys per kind."""
    c = found.counts
    lines = [
        f"report {found.report_id}: sync {found.name} against {found.extract}",
        f"target records {c['target_records']}, hub keys {c['hub_keys']}, same {c['same']}, "
        f"missing {c['missing']}, extra {c['extra']}, different {c['different']}, unreadable {c['errors']}",
    ]
    for kind in KINDS:
        keys = found.keys[kind]
        if keys:
            more = f" (and {len(keys) - shown} more)" if len(keys) > shown else ""
            lines.append(f"{kind}: {', '.join(keys[:shown])}{more}")
    lines.extend(f"unreadable: {e}" for e in found.errors[:10])
    if found.differs:
        lines.append(f"repair: esb sync resync {found.name} --from-report {found.report_id}")
    return "\n".join(lines)
