"""Compiling a contract's request schema (adapters/soap/schema.py): complete whichever libxml2 loader
reads its documents, checked to declare every operation's request element, recompiled when it does not,
and refused (ConfigError naming operation and element) when it never does; the listener compiles it at
connect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.soap import schema
from adapters.soap.contractset import contract_files
from adapters.soap.nonces import MemoryNonceStore
from adapters.soap.schema import RequestValidator, undeclared
from adapters.soap.server import LISTENERS
from adapters.soap.service import SOAPService
from adapters.soap.wsdl import Contract, load_contract
from esb.exceptions import ConfigError
from esb.testing import captured_logs
from tests.integration.soap_project import siebel_account
from tests.unit.test_soap_service import binding

ROOT = Path(__file__).resolve().parents[2]
CRM = ROOT / "config" / "contracts" / "crm" / "esb-crm.wsdl"
SUBMIT = "{http://esb.telecom.example/crm/v1}SubmitBillingAccount"
QUERY = "{http://esb.telecom.example/crm/v1}QueryOrderStatus_Input"
ELEMENTS = {SUBMIT: "SubmitBillingAccount", QUERY: "QueryOrderStatus"}
EMPTY = b'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="%s"/>'


def _contract() -> Contract:
    return load_contract(CRM, root=ROOT / "config" / "contracts")


def _request() -> etree._Element:
    return etree.fromstring(siebel_account("1-OK").encode())


def _inline_served_empty(monkeypatch: pytest.MonkeyPatch, times: int) -> list[str]:
    """The first ``times`` reads of an inline schema get an empty schema of its namespace instead (what a
    compile that skipped the inline import ends up with); returns the names served so."""
    served: list[str] = []
    resolve = schema._ContractResolver.resolve

    def skipping(self: Any, system_url: str, public_id: str, context: Any) -> Any:
        if Path(system_url).name.startswith("inline-") and len(served) < times:
            served.append(system_url)
            return self.resolve_string(EMPTY % b"http://esb.telecom.example/crm/v1", context)
        return resolve(self, system_url, public_id, context)

    monkeypatch.setattr(schema._ContractResolver, "resolve", skipping)
    return served


def test_schema_is_complete_when_libxml2s_own_loader_reads_the_documents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compile whose imports bypass the resolver (a concurrent parse put libxml2's loader back) is whole."""
    asked: list[str] = []

    def declining(self: Any, system_url: str, public_id: str, context: Any) -> Any:
        asked.append(system_url)
        return None  # lxml then hands the load to libxml2's own loader

    monkeypatch.setattr(schema._ContractResolver, "resolve", declining)
    contract = _contract()
    validator = RequestValidator(contract.files, contract.root)
    assert asked  # the imports went past the resolver, to libxml2's loader
    assert undeclared(validator._compiled, ELEMENTS) == []
    assert validator.errors(_request()) == []


def test_undeclared_names_only_the_elements_the_schema_lacks() -> None:
    """The self-check finds an element the schema does not declare, and not one it declares but rejects."""
    compiled = etree.XMLSchema(etree.fromstring(EMPTY % b"urn:x"))
    contract = _contract()
    whole = RequestValidator(contract.files, contract.root)._compiled
    assert undeclared(compiled, [SUBMIT]) == [SUBMIT]
    assert undeclared(whole, [SUBMIT, QUERY]) == []  # declared, though an empty one is invalid


def test_incomplete_compile_is_compiled_again_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compile lacking an operation's element is logged and redone; the validator serves a whole schema."""
    served = _inline_served_empty(monkeypatch, times=1)
    contract = _contract()
    with captured_logs() as logs:
        validator = RequestValidator(contract.files, contract.root, ELEMENTS)
    assert len(served) == 1
    assert validator.errors(_request()) == []
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert (warning["attempt"], warning["then"]) == (1, "compiling again")
    assert f"SubmitBillingAccount: {SUBMIT}" in warning["missing"]


def test_schema_that_stays_incomplete_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """COMPILE_ATTEMPTS incomplete compiles end in a ConfigError naming the operation and its element."""
    served = _inline_served_empty(monkeypatch, times=10_000)
    contract = _contract()
    with captured_logs() as logs, pytest.raises(ConfigError) as caught:
        RequestValidator(contract.files, contract.root, ELEMENTS)
    assert len(served) == schema.COMPILE_ATTEMPTS
    assert f"without the element {SUBMIT} of operation SubmitBillingAccount" in str(caught.value)
    assert len([e for e in logs if e["log_level"] == "warning"]) == schema.COMPILE_ATTEMPTS


def test_service_checks_every_operations_request_element(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener's validator is checked against each operation's input element the WSDL names."""
    _inline_served_empty(monkeypatch, times=10_000)
    service = SOAPService("/soap/crm", _contract(), MemoryNonceStore())
    with pytest.raises(ConfigError, match=r"of operation SubmitBillingAccount \(and 1 more\)"):
        _ = service.validator


def test_documents_are_gone_after_the_compile() -> None:
    """The inline schemas written for a compile are removed once it is done."""
    contract = _contract()
    folders: list[Path] = []
    resolve = schema._ContractResolver.resolve

    def noting(self: Any, system_url: str, public_id: str, context: Any) -> Any:
        if Path(system_url).name.startswith("inline-"):
            folders.append(Path(system_url).parent)
        return resolve(self, system_url, public_id, context)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema._ContractResolver, "resolve", noting)
        RequestValidator(contract.files, contract.root)
    assert len(folders) == 2  # one per compile
    assert not any(folder.exists() for folder in folders)


def test_listener_compiles_the_schema_when_a_binding_attaches() -> None:
    """The validator exists once the listener serves the path: no server thread ever compiles it."""
    listener, bound = LISTENERS.attach(binding(_contract(), "SubmitBillingAccount", "siebel"), _contract())
    try:
        assert listener.services["/soap/crm"]._validator is not None
    finally:
        LISTENERS.detach(listener, bound)
        listener.stop()


def test_attach_that_cannot_compile_leaves_nothing_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema that never compiles whole fails the attach, and no listener is left started or counted."""
    _inline_served_empty(monkeypatch, times=10_000)
    before = (dict(LISTENERS.listeners), dict(LISTENERS.counts))
    with pytest.raises(ConfigError, match="without the element"):
        LISTENERS.attach(binding(_contract(), "SubmitBillingAccount", "siebel"), _contract())
    assert (LISTENERS.listeners, LISTENERS.counts) == before


SEVERAL = """<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:a="urn:a" xmlns:b="urn:b" targetNamespace="urn:a">
  <wsdl:types>
    <xsd:schema targetNamespace="urn:a" elementFormDefault="qualified">
      <xsd:import namespace="urn:c" schemaLocation="xsd/c.xsd"/>
      <xsd:element name="Order" type="a:OrderType"/>
    </xsd:schema>
    <xsd:schema targetNamespace="urn:a" elementFormDefault="qualified" xmlns:c="urn:c">
      <xsd:import namespace="urn:c"/>
      <xsd:complexType name="OrderType"><xsd:sequence>
        <xsd:element ref="c:Code"/></xsd:sequence></xsd:complexType>
    </xsd:schema>
    <xsd:schema targetNamespace="urn:b" elementFormDefault="qualified">
      <xsd:import namespace="urn:a"/>
      <xsd:element name="Wrapper"><xsd:complexType><xsd:sequence>
        <xsd:element ref="a:Order"/></xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </wsdl:types>
</wsdl:definitions>"""
CODES = """<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:c">
  <xsd:element name="Code"><xsd:simpleType><xsd:restriction base="xsd:string">
    <xsd:enumeration value="ok"/></xsd:restriction></xsd:simpleType></xsd:element>
</xsd:schema>"""


def test_inline_schemas_of_one_namespace_and_a_relative_import_compile_as_files(tmp_path: Path) -> None:
    """Two inline schemas of one namespace, a third importing it, one importing a sibling folder's file."""
    (tmp_path / "xsd").mkdir()
    (tmp_path / "xsd" / "c.xsd").write_text(CODES, encoding="utf-8")
    (tmp_path / "several.wsdl").write_text(SEVERAL, encoding="utf-8")
    files = contract_files(tmp_path / "several.wsdl", tmp_path)
    validator = RequestValidator(files, tmp_path, {"{urn:b}Wrapper": "Wrap", "{urn:a}Order": "Order"})
    good = (
        '<b:Wrapper xmlns:b="urn:b" xmlns:a="urn:a" xmlns:c="urn:c">'
        "<a:Order><c:Code>ok</c:Code></a:Order></b:Wrapper>"
    )
    assert validator.errors(etree.fromstring(good)) == []
    (error,) = validator.errors(etree.fromstring(good.replace(">ok<", ">no<")))
    assert "'no' is not an element of the set {'ok'}" in error


def test_an_unwritable_temporary_folder_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compile whose documents cannot be written (TMPDIR full or read-only) fails as a ConfigError
    naming the contract and TMPDIR, not as a bare OSError."""
    contract = _contract()

    def refuse(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(ConfigError, match="TMPDIR"):
        RequestValidator(contract.files, contract.root)
