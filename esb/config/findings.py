"""Turning pydantic validation errors into findings that read ``file:line: path: what to do``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from esb.config.walk import nested_models
from esb.config.yamlpos import Located, PathKey, format_path
from esb.registry import did_you_mean


def _clean_loc(loc: tuple[Any, ...], data: Any) -> PathKey:
    """Drop the tags pydantic inserts for unions (step kinds, model names) from an error location."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
            out.append(part)
        # anything else is a union tag or model name inserted by pydantic: skip it
    return tuple(out)


def _advice(error: Any, located: Located, path: PathKey, known: list[str]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        hint = did_you_mean(name, known) if known else ""
        return f"unknown key {name!r}{hint}: remove it or fix its spelling"
    if kind == "missing":
        return f"missing required key {error['loc'][-1]!r}: add it"
    if kind == "unknown_step":
        raw = error.get("input")
        if isinstance(raw, dict):
            from esb.config.steps import kinds

            names = ", ".join(repr(k) for k in raw)
            first = str(next(iter(raw), ""))
            return f"unknown step {names}{did_you_mean(first, list(kinds()))}: {error['msg']}"
        return str(error["msg"])
    return f"{error['msg']}"


def findings_from_validation(
    exc: ValidationError, located: Located, model: Any = None, prefix: PathKey = ()
) -> list[str]:
    """Return one finding per pydantic error, located in the YAML file that was validated."""
    findings: list[str] = []
    seen: set[str] = set()
    for error in exc.errors():
        path = (*prefix, *_clean_loc(error["loc"][: len(error["loc"])], _sub(located.data, prefix)))
        if error["type"] == "extra_forbidden":
            line_path: PathKey = (*path, str(error["loc"][-1]))
        else:
            line_path = path
        known = _known_fields(model, error) if model is not None else []
        finding = f"{located.where(line_path)}: {format_path(path)}: {_advice(error, located, path, known)}"
        if finding not in seen:
            seen.add(finding)
            findings.append(finding)
    return findings


def _sub(data: Any, prefix: PathKey) -> Any:
    for part in prefix:
        data = data[part]
    return data


def _known_fields(model: Any, error: Any) -> list[str]:
    """Best-effort list of field names allowed where an unknown key was found (for did-you-mean)."""
    names: set[str] = set()
    for cls in nested_models(model, into_steps=True):
        for name, field in cls.model_fields.items():
            names.add(field.alias or name)
    return sorted(names)


#: what marks a finding as a warning: ``file:line: warning: path: problem`` (lint exits 0 on warnings alone)
WARNING = "warning: "


def warning(where: str, text: str) -> str:
    """Return the warning ``text`` located at ``where`` (``file:line``)."""
    return f"{where}: {WARNING}{text}"


def is_warning(finding: str) -> bool:
    """True when ``finding`` is a warning rather than an error."""
    _, _, rest = finding.partition(": ")
    return rest.startswith(WARNING)
