"""The listener's per-request shortcuts against the slow paths they replaced: per-path settings derived
once from the bindings (new answers as soon as an operation is bound or unbound) and the one-pass
envelope split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.http.exchange import Inbox
from adapters.soap.config import SOAPEndpoint
from adapters.soap.envelope import NAMESPACES, VERSIONS, SOAPFault, split
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


def split_by_find(root: etree._Element) -> tuple[str, etree._Element | None, etree._Element]:
    """The envelope split as it was before the one-pass scan (QName and find): the reference."""
    qname = etree.QName(root)
    version = VERSIONS.get(qname.namespace or "")
    if qname.localname != "Envelope" or version is None:
        raise SOAPFault("NotSOAP", f"not a SOAP 1.1 or 1.2 Envelope: <{root.tag}>")
    ns = NAMESPACES[version]
    header = root.find(f"{{{ns}}}Header")
    body = root.find(f"{{{ns}}}Body")
    if body is None:
        raise SOAPFault("NotSOAP", "the Envelope has no Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SOAPFault("NotSOAP", f"the Body must hold exactly one element, it holds {len(children)}")
    return version, header, children[0]


ENV11 = 'xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"'
ENV12 = 'xmlns:e="http://www.w3.org/2003/05/soap-envelope"'
ENVELOPES = [
    pytest.param(f"<e:Envelope {ENV11}><e:Body><x/></e:Body></e:Envelope>", id="1.1"),
    pytest.param(
        f"<e:Envelope {ENV12}><e:Header><h/></e:Header><e:Body><x/></e:Body></e:Envelope>", id="1.2"
    ),
    pytest.param(
        f"<e:Envelope {ENV11}><!-- c --><e:Header>1</e:Header><e:Header>2</e:Header>"
        "<e:Body><!-- c --><x/></e:Body><e:Body><y/></e:Body></e:Envelope>",
        id="twice-each-and-comments",
    ),
    pytest.param(f"<e:Envelope {ENV11}><e:Header/></e:Envelope>", id="no-body"),
    pytest.param(f"<e:Envelope {ENV11}><e:Body><x/><y/></e:Body></e:Envelope>", id="two-in-body"),
    pytest.param(f"<e:Envelope {ENV11}><e:Body/></e:Envelope>", id="empty-body"),
    pytest.param(
        f"<e:Envelope {ENV12}><b:Body xmlns:b='http://schemas.xmlsoap.org/soap/envelope/'><x/></b:Body></e:Envelope>",
        id="mixed-versions",
    ),
    pytest.param(f"<e:Envelop {ENV11}><e:Body><x/></e:Body></e:Envelop>", id="not-envelope"),
    pytest.param("<Envelope><Body><x/></Body></Envelope>", id="no-namespace"),
    pytest.param("<e:Envelope xmlns:e='urn:other'><e:Body><x/></e:Body></e:Envelope>", id="other-namespace"),
]


@pytest.mark.parametrize("text", ENVELOPES)
def test_split_matches_the_find_based_reference(text: str) -> None:
    """The one-pass envelope split returns what QName and find returned, or the same fault."""
    root = etree.fromstring(text)
    try:
        expected: Any = split_by_find(root)
    except SOAPFault as fault:
        expected = str(fault)
    try:
        got: Any = split(root)
    except SOAPFault as fault:
        got = str(fault)
    assert got == expected
