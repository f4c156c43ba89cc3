"""The queue adapter's configuration, error translation and delivery-count hook (no broker needed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.queue import QueueAdapter, QueueEndpoint
from adapters.queue.errors import translate_errors
from adapters.queue.source import delivery_count
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import ConfigError, TransportError
from esb.registry import resolve_adapter
from esb.typing import Adapter


def _context(url: str) -> AdapterContext:
    settings = Settings.model_validate({"broker": {"url": url, "max_retries": 0}})
    return AdapterContext(settings=settings, project_dir=Path("."), endpoint="crm.orders")


def test_registry_resolves_the_queue_adapter() -> None:
    """'queue' in the adapter table is this adapter and satisfies the Adapter protocol."""
    adapter = resolve_adapter("queue")
    assert isinstance(adapter, QueueAdapter)
    assert isinstance(adapter, Adapter)
    assert adapter.endpoint_model() is QueueEndpoint


def test_endpoint_rejects_unknown_keys() -> None:
    """A misspelt option is an error, not silently ignored."""
    with pytest.raises(ValidationError, match="quue"):
        QueueEndpoint.model_validate({"adapter": "queue", "queue": "q", "quue": "x"})


def test_routing_key_needs_an_exchange() -> None:
    """A routing key with the default exchange is refused (the queue name is the key there)."""
    with pytest.raises(ValidationError, match="routing_key needs an exchange"):
        QueueEndpoint.model_validate({"adapter": "queue", "queue": "q", "routing_key": "k"})


def test_publish_key_defaults_to_the_queue_name() -> None:
    """Without a routing key, messages are published under the queue's name."""
    ep = QueueEndpoint.model_validate({"adapter": "queue", "queue": "q", "exchange": "esb"})
    assert ep.publish_key == "q"
    assert ep.durable is True


def test_translate_errors_masks_the_password() -> None:
    """A broker library error becomes TransportError whose text never shows the password."""
    url = "pyamqp://esb:s3cret@127.0.0.1:5672//"
    with pytest.raises(TransportError) as info, translate_errors(url, "connect"):
        raise ConnectionRefusedError(f"cannot reach {url}")
    assert "s3cret" not in str(info.value)
    assert "esb:***@" in str(info.value)
    assert info.value.retryable is True


def test_translate_errors_maps_sqlite_errors() -> None:
    """sqlite3 errors (a locked database) are retryable transport errors."""
    with pytest.raises(TransportError, match="database is locked"), translate_errors("sqlite:////x", "ack"):
        raise sqlite3.OperationalError("database is locked")


@pytest.mark.parametrize(
    ("action", "raised"),
    [
        pytest.param("publish", ValueError("bad value"), id="value-error-outside-connect"),
        pytest.param("read", TransportError("ours", endpoint="x"), id="the-hubs-own"),
        pytest.param("read", KeyError("k"), id="not-a-broker-error"),
    ],
)
def test_translate_errors_lets_other_errors_through_unchanged(action: str, raised: Exception) -> None:
    """A ValueError outside connect, the hub's own errors and non-broker errors leave the block as raised."""
    with pytest.raises(type(raised)) as info, translate_errors("sqlite:////x", action):
        raise raised
    assert info.value is raised


def test_translate_errors_chains_the_library_error() -> None:
    """The TransportError says what was done and keeps the library's exception as its cause."""
    cause = ConnectionResetError("reset by peer")
    with (
        pytest.raises(TransportError, match="queue read failed: ConnectionResetError") as info,
        translate_errors("sqlite:////x", "read"),
    ):
        raise cause
    assert info.value.__cause__ is cause


def test_bad_transport_option_is_a_config_error(tmp_path: Path) -> None:
    """A synchronous level that is not crash-safe is reported as a configuration mistake."""
    settings = Settings.model_validate(
        {"broker": {"url": f"sqlite:///{tmp_path}/q.db", "transport_options": {"synchronous": "OFF"}}}
    )
    ctx = AdapterContext(settings=settings, project_dir=tmp_path, endpoint="crm.orders")
    ep = QueueEndpoint(queue="q")
    with pytest.raises(ConfigError, match="synchronous"):
        QueueAdapter().sink(ep, ctx).connect()


def test_read_before_connect_is_an_error(tmp_path: Path) -> None:
    """Reading an unconnected source raises TransportError; closing it twice is harmless."""
    source = QueueAdapter().source(QueueEndpoint(queue="q"), _context(f"sqlite:///{tmp_path}/q.db"))
    with pytest.raises(TransportError, match="not connected"):
        source.read(0)
    source.close()
    source.close()


@pytest.mark.parametrize(
    ("delivery_info", "headers", "expected"),
    [
        pytest.param({"delivery_count": 3}, {}, 3, id="sqlite-count"),
        pytest.param({}, {"x-delivery-count": 2}, 3, id="quorum-header"),
        pytest.param({"redelivered": True}, {}, 2, id="classic-redelivered"),
        pytest.param({"redelivered": False}, {}, 1, id="first"),
    ],
)
def test_delivery_count_hook(delivery_info: dict[str, Any], headers: dict[str, Any], expected: int) -> None:
    """Each broker's way of counting deliveries gives the 1-based delivery count."""
    raw: Any = SimpleNamespace(delivery_info=delivery_info, headers=headers)
    assert delivery_count(raw) == expected
