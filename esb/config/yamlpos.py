"""YAML loading that remembers where each value came from, so findings read ``file:line: path: ...``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esb.exceptions import ConfigError

PathKey = tuple[str | int, ...]


@dataclass
class Located:
    """A YAML document as plain Python data plus the line of every mapping key and sequence item."""

    data: Any
    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int:
        """Return the line of ``path``, or of its nearest ancestor that has one (1 for the root)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def where(self, path: PathKey) -> str:
        """Return ``file:line`` for ``path``."""
        return f"{self.file}:{self.line_of(path)}"


def format_path(path: PathKey) -> str:
    """Render ``("routes", 3, "to")`` as ``routes[3].to``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _plain(node: Any, path: PathKey, lines: dict[PathKey, int]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            try:
                lines[child] = node.lc.key(key)[0] + 1
            except (KeyError, TypeError):
                lines[child] = node.lc.line + 1
            out[str(key)] = _plain(value, child, lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            try:
                lines[child] = node.lc.item(index)[0] + 1
            except (KeyError, TypeError):
                lines[child] = node.lc.line + 1
            items.append(_plain(value, child, lines))
        return items
    if hasattr(node, "value") and not isinstance(node, str | int | float | bool):
        return node.value
    if isinstance(node, str):
        return str(node)
    return node


def load_yaml_text(text: str, file: str) -> Located:
    """Parse YAML ``text`` (reported as ``file``) into a :class:`Located` document.

    libyaml's C parser takes the documents it reads alike (``esb.config.yamlfast``, ~30x faster); the
    others, and every invalid one, go through ruamel.yaml, which reports errors with their line.
    """
    from esb.config.yamlfast import load_fast  # here: it imports this module

    fast = load_fast(text, file)
    return fast if fast is not None else load_yaml_ruamel(text, file)


def load_yaml_ruamel(text: str, file: str) -> Located:
    """Parse YAML ``text`` with ruamel.yaml's round-trip loader (the reference for the fast path)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        line = (exc.problem_mark.line + 1) if exc.problem_mark else 1
        raise ConfigError(
            f"{file}:{line}: invalid YAML: {exc.problem}",
            findings=[f"{file}:{line}: invalid YAML: {exc.problem}"],
        ) from exc
    except Exception as exc:  # ruamel raises several unrelated classes for duplicate keys and bad input
        raise ConfigError(
            f"{file}: invalid YAML: {exc}", findings=[f"{file}:1: invalid YAML: {exc}"]
        ) from exc
    lines: dict[PathKey, int] = {(): 1}
    return Located(_plain(raw, (), lines), file, lines)


def load_yaml(path: Path, *, display: str | None = None) -> Located:
    """Load the YAML file at ``path``; ``display`` is the name used in findings (relative path)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{display or path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display or path}:1: not UTF-8: {exc}") from exc
    return load_yaml_text(text, display or str(path))
