"""The table of adapters, imported lazily by name (kombu's ``TRANSPORT_ALIASES``).

The engine never imports a specific adapter: it looks the endpoint's ``adapter`` name up here. An
unknown name answers "did you mean ...?"; an adapter whose optional library is missing answers with the
install hint.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

from esb.exceptions import ConfigError

ADAPTERS: dict[str, str] = {
    "queue": "adapters.queue:QueueAdapter",
    "direct": "adapters.direct:DirectAdapter",
    "soap": "adapters.soap:SOAPAdapter",
    "batch": "adapters.batch:BatchAdapter",
    "rest": "adapters.rest:RESTAdapter",
    "pool": "adapters.pool:PoolAdapter",
    "memory": "esb.testing:MemoryAdapter",
}


def did_you_mean(name: str, choices: list[str] | set[str] | tuple[str, ...]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def import_string(path: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) importing each name of ``table`` (name -> module) on first use.

    An adapter package exports its source and sink this way, so that commands needing only its endpoint
    model (``esb trace``, ``esb health``, ``esb dlq``) do not import the protocol libraries behind them.
    """

    def module_getattr(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return module_getattr


@cache
def resolve_adapter(name: str) -> Any:
    """Return the adapter instance registered under ``name``.

    Raises ConfigError for an unknown name (with a suggestion) or a missing optional library.
    """
    try:
        path = ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(
            f"unknown adapter {name!r}{did_you_mean(name, list(ADAPTERS))}; known: {known}"
        ) from None
    try:
        factory = import_string(path)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"adapter {name!r} needs the Python package {exc.name!r}: pip install {exc.name}"
        ) from exc
    return factory()


def endpoint_models() -> dict[str, type[Any]]:
    """Return each registered adapter's endpoint options model, by adapter name (imports every adapter)."""
    return {name: resolve_adapter(name).endpoint_model() for name in ADAPTERS}
