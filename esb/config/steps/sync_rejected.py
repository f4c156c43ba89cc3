"""``sync_rejected``: a record the target rejected (a line of its ack file) becomes the dead letter of the
change that was sent, on the sync route's dead-letter queue, so ``esb dlq retry`` sends it again."""

from __future__ import annotations

from pydantic import Field

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.config.steps.sync import SYNC_NAME, _sync_names
from esb.expressions import Expression as Compiled


class SyncRejectedSpec(Strict):
    """Which sync the rejected record belongs to, and where its key and the target's reason are."""

    sync: str = Field(pattern=SYNC_NAME, max_length=64, description="the name of the sync step that sent it")
    route: str = Field(description="the route whose sync step sent it (its dead letter is made for it)")
    key: Expression = Field(description="JMESPath giving the rejected record's key (the sync's key)")
    code: Expression = Field(description="JMESPath giving the target's reason code")
    reason: Expression | None = Field(default=None, description="JMESPath giving the target's reason text")
    record: Expression | None = Field(
        default=None, description="JMESPath giving the record's number in the file the target answered"
    )


class SyncRejectedStep(Strict):
    """A rejected record to the dead letter of the change that was sent (see SyncRejectedSpec)."""

    sync_rejected: SyncRejectedSpec = Field(description="sync, route, key, code, reason, record")


def build(step: SyncRejectedStep, ctx: BuildContext) -> Processor:
    """Return the rejecter (its store, the journal's database, is opened on the first message)."""
    from esb.processors.sync_rejected import RejectRule, SyncRejecter  # here: they bring SQLAlchemy

    spec = step.sync_rejected
    where = ctx.where(f"sync_rejected {spec.sync}")

    def compiled(text: str | None, what: str) -> Compiled | None:
        return None if text is None else Compiled(text, f"{where}.{what}")

    rule = RejectRule(
        spec.sync,
        spec.route,
        Compiled(spec.key, f"{where}.key"),
        Compiled(spec.code, f"{where}.code"),
        compiled(spec.reason, "reason"),
        compiled(spec.record, "record"),
    )
    route = next((r for r in ctx.project.routes if r.id == spec.route), None)
    dead_letter = route.on_error.dead_letter if route is not None else None
    return SyncRejecter(rule, ctx.project.settings.journal.url, where, dead_letter)


def lint(step: SyncRejectedStep, path: PathKey, ctx: LintContext) -> None:
    """Expressions parse; the route exists, declares that sync and has a dead-letter endpoint."""
    spec = step.sync_rejected
    base = (*path, "sync_rejected")
    for what in ("key", "code", "reason", "record"):
        text = getattr(spec, what)
        if text is not None:
            ctx.check_expression(text, (*base, what))
    route = next((r for r in ctx.project.routes if r.id == spec.route), None)
    if route is None:
        ctx.add((*base, "route"), f"no route {spec.route!r}")
    elif spec.sync not in _sync_names(route.steps):
        ctx.add((*base, "sync"), f"route {spec.route!r} declares no sync {spec.sync!r}")
    elif route.on_error.dead_letter is None:
        ctx.add(
            (*base, "route"),
            f"route {spec.route!r} has no dead_letter: a rejected change would have no queue",
        )


KIND = StepKind("sync_rejected", SyncRejectedStep, build, lint, before_partition=False, order=79)
