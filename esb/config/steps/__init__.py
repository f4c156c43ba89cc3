"""Route step kinds: one module each (model, processor factory, lint checks), collected in a registry.

Adding a kind is adding its module here and one line to ``BUILTIN`` (see docs/routes.md). The route
model, ``esb schema routes``, lint, the pipeline builder and docs/reference.md all read the registry.
"""

from __future__ import annotations

from typing import Any

from esb.config.steps import aggregate, choice, enrich, log, set_header, split, transform, validate
from esb.config.steps import filter as filter_
from esb.config.steps.kind import BuildContext, LintContext, StepKind
from esb.config.steps.registry import Step, kind_of, kinds, ready, register, step_kind, unregister

#: The built-in kinds, in the order error messages, the schema and the reference list them.
BUILTIN: tuple[StepKind[Any], ...] = (
    transform.KIND,
    validate.KIND,
    filter_.KIND,
    choice.KIND,
    split.KIND,
    aggregate.KIND,
    enrich.KIND,
    set_header.KIND,
    log.KIND,
)

for _kind in BUILTIN:
    register(_kind)
ready()

__all__ = [
    "BUILTIN",
    "BuildContext",
    "LintContext",
    "Step",
    "StepKind",
    "kind_of",
    "kinds",
    "register",
    "step_kind",
    "unregister",
]
