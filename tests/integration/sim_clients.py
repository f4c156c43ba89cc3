"""The hub's own SOAP client (SOAPSink) pointed at a simulated system, for the simulator tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.soap.config import SOAPEndpoint
from adapters.soap.sink import SOAPSink
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from tests.integration.soap_project import REPO

#: The password every simulator test serves with, read by the client from this variable.
PASSWORD_ENV = "TEST_SIM_PASSWORD"
PASSWORD = "sim-secret"


def soap_client(tmp_path: Path, wsdl: str, operation: str, address: str, **options: Any) -> SOAPSink:
    """Return a connected hub SOAP client calling ``operation`` of ``wsdl`` at ``address``."""
    raw = {
        "adapter": "soap",
        "wsdl": wsdl,
        "operation": operation,
        "address": address,
        "timeout": "5s",
        "connect_timeout": "1s",
        "auth": {"username": "esb", "password_env": PASSWORD_ENV, "mode": "wsse-digest"},
        **options,
    }
    client = SOAPSink(
        SOAPEndpoint.model_validate(raw),
        AdapterContext(Settings(data_dir=tmp_path), REPO, f"sim.{operation}"),
    )
    client.connect()
    return client


def call(client: SOAPSink, body: dict[str, Any]) -> dict[str, Any]:
    """Call the client's operation with ``body``; return the reply's body."""
    reply = client.request(Message(body), 5.0).body
    assert isinstance(reply, dict)
    return reply
