"""Canonical ProductOrder -> the same order with its catalogue decomposition attached (``components``)."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

from esb.config.catalog import CATALOG_FILE, Catalog, load_catalog
from esb.model.decompose import DecompositionError, decompose


@lru_cache(maxsize=8)
def _catalog(project_dir: Path, stamp: float) -> Catalog:
    """The project's catalogue, loaded once per change of config/catalog.yaml (``stamp``: its mtime)."""
    return load_catalog(project_dir)


def with_components(body: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return a copy of the order with ``components``: its component orders (component_order.v1)."""
    if not isinstance(body, dict):
        raise DecompositionError(
            f"expected a canonical product order (a JSON object), got {type(body).__name__}"
        )
    project_dir = Path(context.fn_context.project_dir)
    catalog_file = project_dir / CATALOG_FILE
    stamp = catalog_file.stat().st_mtime if catalog_file.is_file() else 0.0
    out = copy.deepcopy(body)
    out["components"] = decompose(body, _catalog(project_dir, stamp))
    return out
