"""``choice``: content-based routing inside a route, ``when`` branches in order, then ``otherwise``."""

from __future__ import annotations

from pydantic import Field, model_validator

from esb.config.language import Expression, Strict
from esb.config.steps.kind import BuildContext, LintContext, PathKey, Processor, StepKind
from esb.config.steps.registry import Step, track
from esb.expressions import Expression as Compiled


class WhenBranch(Strict):
    """One branch of a choice: the first branch whose ``when`` is truthy runs its steps."""

    when: Expression
    steps: list[Step] = Field(default_factory=list, description="the steps run when this branch is taken")


class OtherwiseBranch(Strict):
    """The branch of a choice taken when no ``when`` matched."""

    otherwise: list[Step] = Field(description="the steps run when no when matched")


class ChoiceStep(Strict):
    """Content-based routing inside a route: ``when`` branches in order, then ``otherwise``."""

    choice: list[WhenBranch | OtherwiseBranch] = Field(
        min_length=1, description="when branches in order, then at most one otherwise, last"
    )

    @model_validator(mode="after")
    def _otherwise_last(self) -> ChoiceStep:
        kinds = [isinstance(b, OtherwiseBranch) for b in self.choice]
        if any(kinds[:-1]):
            raise ValueError("'otherwise' must be the last branch of a choice, and there can be only one")
        return self


track(WhenBranch, OtherwiseBranch, ChoiceStep)


def build(step: ChoiceStep, ctx: BuildContext) -> Processor:
    """Return the router running the first matching branch's steps."""
    from esb.processors.routing import ContentRouter  # imported when a route is built

    branches: list[tuple[Compiled | None, Processor]] = []
    for branch in step.choice:
        if isinstance(branch, WhenBranch):
            branches.append((Compiled(branch.when, ctx.where("when")), ctx.build(branch.steps)))
        else:
            branches.append((None, ctx.build(branch.otherwise)))
    return ContentRouter(branches)


def lint(step: ChoiceStep, path: PathKey, ctx: LintContext) -> None:
    """No duplicate ``when`` (the second could never run), valid expressions, then each branch's steps."""
    whens: dict[str, int] = {}
    for k, branch in enumerate(step.choice):
        bpath: PathKey = (*path, "choice", k)
        if isinstance(branch, WhenBranch):
            normalized = " ".join(branch.when.split())
            if normalized in whens:
                ctx.add(
                    (*bpath, "when"),
                    f"duplicate when {branch.when!r} (same as branch {whens[normalized]}): "
                    "the second branch can never run; merge them",
                )
            whens.setdefault(normalized, k)
            ctx.check_expression(branch.when, (*bpath, "when"))
            ctx.check_steps(branch.steps, (*bpath, "steps"))
        else:
            ctx.check_steps(branch.otherwise, (*bpath, "otherwise"))


KIND = StepKind("choice", ChoiceStep, build, lint, order=40)
