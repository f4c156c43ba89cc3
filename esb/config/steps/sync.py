"""``sync``: send a key's change to a target only if it changes what the target holds (docs/sync.md).

Per (sync name, key) the sync store keeps the content hash of the fields the target cares about, the
version, whether the target holds a record, the message that last set it and the body sent. An
unchanged change is dropped (``filtered``, journaled as ``skipped: unchanged``), an older version after
a newer one is dropped (``skipped: stale``), anything else goes on with the header ``sync-action:
upsert`` or ``delete`` for the route's mapping of the target's message to choose by.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.expressions import Expression as Compiled

#: A sync's name: state is kept per (name, key), so one name per entity and target.
SYNC_NAME = r"^[a-z][a-z0-9_.-]*$"
FIELD_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


class SyncSpec(Strict):
    """One entity synced to one target: its key, the fields that matter, the version and delete rules."""

    name: str = Field(
        pattern=SYNC_NAME,
        max_length=64,
        description="the sync's name, e.g. customer-billing: state is kept per (name, key), one name per "
        "entity and target",
    )
    key: Expression = Field(description="JMESPath giving the record's key (e.g. body.id)")
    fields: list[str] = Field(
        min_length=1,
        description="the canonical fields that matter to this target (names or dotted paths): a change "
        "to any other field is not sent",
    )
    version: Expression | None = Field(
        default=None,
        description="JMESPath giving the change's version (an integer, or an ISO date-time with a zone): "
        "an older version after a newer one is dropped as stale; none: arrival order decides",
    )
    delete: Expression | None = Field(
        default=None, description="JMESPath: truthy when the change deletes the record at the target"
    )
    exclude: Expression | None = Field(
        default=None,
        description="JMESPath: truthy when the record must never reach this target (privacy, out of "
        "scope); if the target holds it, a delete is sent instead",
    )

    @field_validator("fields")
    @classmethod
    def _fields_are_paths(cls, fields: list[str]) -> list[str]:
        import re

        for field in fields:
            if not re.match(FIELD_PATH, field):
                raise ValueError(
                    f"field {field!r} is not a field name or dotted path (e.g. contactMedium.city)"
                )
        repeated = sorted({f for f in fields if fields.count(f) > 1})
        if repeated:
            raise ValueError(f"field(s) listed twice: {', '.join(repeated)}")
        return fields


class SyncStep(Strict):
    """Send only what changes the target, never an older version after a newer one (see SyncSpec)."""

    sync: SyncSpec = Field(description="name, key, fields, version, delete, exclude")


def build(step: SyncStep, ctx: BuildContext) -> Processor:
    """Return the syncer (its store, the journal's database, is opened on the first message)."""
    from esb.processors.sync import Syncer, SyncRule  # here: the sync store brings SQLAlchemy

    spec = step.sync
    where = ctx.where(f"sync {spec.name}")

    def compiled(text: str | None, what: str) -> Compiled | None:
        return None if text is None else Compiled(text, f"{where}.{what}")

    key = Compiled(spec.key, f"{where}.key")
    rule = SyncRule(
        spec.name,
        key,
        tuple(spec.fields),
        compiled(spec.version, "version"),
        compiled(spec.delete, "delete"),
        compiled(spec.exclude, "exclude"),
    )
    return Syncer(rule, ctx.project.settings.journal.url, ctx.route_id)


def lint(step: SyncStep, path: PathKey, ctx: LintContext) -> None:
    """Expressions parse; a sync name belongs to one route (two routes would share one target's state)."""
    spec = step.sync
    base = (*path, "sync")
    for what in ("key", "version", "delete", "exclude"):
        text = getattr(spec, what)
        if text is not None:
            ctx.check_expression(text, (*base, what))
    users = sorted({route.id for route in ctx.project.routes if spec.name in _sync_names(route.steps)})
    if len(users) > 1:
        ctx.add(
            (*base, "name"),
            f"sync {spec.name!r} is declared by routes {', '.join(users)}: they would share one target's "
            "state; give each entity and target its own name",
        )


def _sync_names(steps: list[object]) -> set[str]:
    """The names of the sync steps among ``steps`` (branches included)."""
    names: set[str] = set()
    for step in steps:
        if isinstance(step, SyncStep):
            names.add(step.sync.name)
        for branch in getattr(step, "choice", None) or []:
            names |= _sync_names(getattr(branch, "steps", None) or getattr(branch, "otherwise", None) or [])
    return names


KIND = StepKind("sync", SyncStep, build, lint, before_partition=False, order=78)
