"""``sync_target_id``: keep the target's own id of a synced key from its answer, and recall it.

Billing answers createAccount with its own account id and wants that id in updateAccount: the route
keeps it per (sync, key) with ``remember`` after the create, and recalls it after the ``sync`` step to
choose update or create (docs/sync.md, "The target's own id").
"""

from __future__ import annotations

from pydantic import Field

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.config.steps.sync import FIELD_PATH, SYNC_NAME, _sync_names
from esb.expressions import Expression as Compiled


class SyncTargetIdSpec(Strict):
    """Which sync the key belongs to, the body field that gets the id, and where an answer holds it."""

    name: str = Field(pattern=SYNC_NAME, max_length=64, description="the sync step's name (same route)")
    into: str = Field(
        pattern=FIELD_PATH,
        description="the body field that gets the target's id of the key (null when none is known)",
    )
    remember: Expression | None = Field(
        default=None,
        description="JMESPath giving the target's id in its answer (e.g. an enrich's reply): kept for the "
        "key, replacing an older one; none: only recall the id kept before",
    )


class SyncTargetIdStep(Strict):
    """Keep or recall the target's own id of the key (see SyncTargetIdSpec)."""

    sync_target_id: SyncTargetIdSpec = Field(description="name, into, remember")


def build(step: SyncTargetIdStep, ctx: BuildContext) -> Processor:
    """Return the keeper (its store, the journal's database, is opened on the first message)."""
    from esb.processors.sync_target_id import TargetIdKeeper, TargetIdRule  # brings SQLAlchemy

    spec = step.sync_target_id
    where = ctx.where(f"sync_target_id {spec.name}")
    remember = None if spec.remember is None else Compiled(spec.remember, f"{where}.remember")
    return TargetIdKeeper(TargetIdRule(spec.name, spec.into, remember), ctx.project.settings.journal.url)


def lint(step: SyncTargetIdStep, path: PathKey, ctx: LintContext) -> None:
    """The expression parses; the step's route declares that sync (the key comes from its header)."""
    spec = step.sync_target_id
    base = (*path, "sync_target_id")
    if spec.remember is not None:
        ctx.check_expression(spec.remember, (*base, "remember"))
    routes = ctx.project.routes
    if len(path) > 1 and path[0] == "routes" and isinstance(path[1], int) and path[1] < len(routes):
        route = routes[path[1]]
        if spec.name not in _sync_names(route.steps):
            ctx.add(
                (*base, "name"), f"route {route.id!r} declares no sync {spec.name!r}: put a sync step first"
            )


KIND = StepKind("sync_target_id", SyncTargetIdStep, build, lint, before_partition=False, order=79)
