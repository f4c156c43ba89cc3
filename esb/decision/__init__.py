"""Decision tables: routing and assignment rules kept as data (see docs/routing.md).

:mod:`~esb.decision.cells` reads typed values and the cell syntax, :mod:`~esb.decision.loader` a table
from YAML or CSV, :mod:`~esb.decision.index` answers lookups without a scan,
:mod:`~esb.decision.table` applies the hit policies, :mod:`~esb.decision.lint` checks tables against
the project, :mod:`~esb.decision.testrun` runs the tests beside them.
"""

from __future__ import annotations

from esb.decision.registry import TABLES_DIR, TableRegistry
from esb.decision.table import Decision, Rule, Table

__all__ = ["TABLES_DIR", "Decision", "Rule", "Table", "TableRegistry"]
