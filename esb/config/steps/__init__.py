"""Route step kinds: one module each (model, processor factory, lint checks), collected in a registry.

Adding a kind is adding its module here, ending with ``KIND = StepKind(...)``: every module of this
package that declares a ``KIND`` is registered, in ``KIND.order`` (see docs/routes.md). The route model,
``esb schema routes``, lint, the pipeline builder and docs/reference.md all read the registry.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from esb.config.steps.kind import BuildContext, LintContext, StepKind
from esb.config.steps.registry import Step, kind_of, kinds, ready, register, step_kind, unregister


def _declared() -> tuple[StepKind[Any], ...]:
    """Every ``KIND`` declared by a module of this package, in ``order``."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        kind = getattr(importlib.import_module(f"{__name__}.{module.name}"), "KIND", None)
        if isinstance(kind, StepKind):
            found.append(kind)
    return tuple(sorted(found, key=lambda k: (k.order, k.name)))


#: The built-in kinds, in the order error messages, the schema and the reference list them.
BUILTIN: tuple[StepKind[Any], ...] = _declared()

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
