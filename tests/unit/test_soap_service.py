"""The listener's per-path settings, derived once from its bindings: the same answers as computing them
on every request, and new answers as soon as an operation is bound or unbound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.http.exchange import Inbox
from adapters.soap.config import SOAPEndpoint
from adapters.soap.nonces import MemoryNonceStore
from adapters.soap.service import Binding, SOAPService
from adapters.soap.wsdl import Contract, load_contract

ROOT = Path(__file__).resolve().parents[2]
CRM = ROOT / "config" / "contracts" / "crm" / "esb-crm.wsdl"


@pytest.fixture(scope="module")
def contract() -> Contract:
    """The CRM's contract (two operations at one path)."""
    return load_contract(CRM, root=ROOT / "config" / "contracts")


def binding(contract: Contract, operation: str, user: str, **listen: Any) -> Binding:
    """A binding of ``operation`` for ``user``, with extra listen options."""
    endpoint = SOAPEndpoint.model_validate(
        {
            "adapter": "soap",
            "wsdl": str(CRM),
            "operation": operation,
            "listen": {
                "port": 0,
                "path": "/soap/crm",
                "auth": {"users": [{"username": user, "password_env": "UNUSED"}]},
                **listen,
            },
        }
    )
    info = contract.operation(None, None, operation)
    return Binding(f"crm.{operation}", endpoint, info, {user: f"{user}-pw"}, Inbox())


def test_path_settings_follow_bind_and_unbind(contract: Contract) -> None:
    """Users, modes, size limit and throttle change when an operation is bound or unbound."""
    service = SOAPService("/soap/crm", contract, MemoryNonceStore())
    service.bind(binding(contract, "SubmitBillingAccount", "siebel", max_request_bytes=2048))
    assert service.users() == {"siebel": "siebel-pw"}
    assert service.max_bytes() == 2048
    assert service.throttle_options().max_failures == 10
    service.bind(
        binding(
            contract,
            "QueryOrderStatus",
            "hotline",
            max_request_bytes=4096,
            auth={"modes": ["wsse"], "users": [{"username": "hotline", "password_env": "UNUSED"}]},
            throttle={"max_failures": 3},
        )
    )
    assert service.users() == {"siebel": "siebel-pw", "hotline": "hotline-pw"}
    assert service.modes() == {"basic", "wsse"}
    assert service.max_bytes() == 4096
    assert service.throttle_options().max_failures == 3
    service.unbind("QueryOrderStatus")
    assert service.users() == {"siebel": "siebel-pw"}
    assert service.max_bytes() == 2048
    assert service.throttle_options().max_failures == 10


def test_declared_actions_match_the_uncached_computation(contract: Contract) -> None:
    """Each operation's declared soapActions per SOAP version, asked in turns, equal the computation."""
    service = SOAPService("/soap/crm", contract, MemoryNonceStore())
    for _ in range(2):
        for version in ("1.1", "1.2"):
            for info in contract.operations:
                assert service.declared_actions(info, version) == service._declared_actions(info, version)
