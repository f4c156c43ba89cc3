"""Round-trip editing of the project's YAML files with ruamel.yaml: comments, quotes and layout are kept."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from esb.exceptions import ConfigError


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)  # the project's layout: "routes:\n  - id: ..."
    return yaml


def load(path: Path) -> Any:
    """Return the round-trip document of ``path`` (ConfigError when it is not YAML)."""
    try:
        return _yaml().load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"{path}: cannot be read as YAML: {exc}") from exc


def parse(text: str) -> Any:
    """Return the round-trip document of a YAML snippet (its comments are kept when it is inserted)."""
    return _yaml().load(text)


def dump(data: Any) -> str:
    """Return ``data`` as YAML text in the project's layout."""
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()
