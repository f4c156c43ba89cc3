"""Siebel EAI XML as Siebel writes it: the escape table, both naming styles, the PropertySet wrapper,
integration objects declared in config/siebel.yaml (standard and custom), and the refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest

from esb.exceptions import ConfigError, UnknownMessageTypeError
from esb.lint import lint_project
from esb.transforms import TransformRegistry
from esb.transforms.siebel import (
    ESCAPES,
    has_escapes,
    siebel_escape,
    siebel_strip,
    siebel_tag,
    siebel_unescape,
)
from esb.transforms.siebelobjects import declaration_findings, load_object

PROJECT = Path(__file__).resolve().parents[2]
ORDER = "crm/siebel_order_to_canonical"

# Oracle, "XML Reference: Siebel Enterprise Application Integration", Element and Attribute Naming, table
# "XML Converter Escape Sequences" (EscapeNames=True), all of its rows.
ORACLE_TABLE = {
    " ": "_spc",
    "_": "_und",
    '"': "_dqt",
    "'": "_sqt",
    ":": "_cln",
    ";": "_scn",
    "(": "_lpr",
    ")": "_rpr",
    "&": "_amp",
    ",": "_cma",
    "#": "_pnd",
    "/": "_slh",
    "?": "_qst",
    "<": "_lst",
    ">": "_grt",
}


@pytest.fixture(scope="module")
def registry() -> TransformRegistry:
    """The real project's transforms (and its config/siebel.yaml)."""
    return TransformRegistry(PROJECT)


def test_escape_table_is_oracles_whole_table() -> None:
    """Every row of Oracle's escape table, and nothing else, is in the table the hub reads and writes."""
    assert ESCAPES == ORACLE_TABLE
    for char, seq in ORACLE_TABLE.items():
        assert siebel_escape(f"A{char}B") == f"A{seq}B"
        assert siebel_unescape(f"A{seq}B") == f"A{char}B"


def test_other_illegal_characters_escape_as_their_code_point() -> None:
    """A character outside the table that XML names refuse becomes _<decimal code>, and reads back."""
    assert siebel_escape("Price+Tax") == "Price_43Tax"
    assert siebel_unescape("Price_43Tax") == "Price+Tax"


def test_stripped_names_drop_illegal_characters_and_keep_underscores() -> None:
    """EscapeNames=False and the wizard's XML Tag drop illegal characters; underscores, dots, hyphens stay."""
    assert siebel_strip("Order Entry (Sales)") == "OrderEntrySales"
    assert siebel_strip("Order Entry - Line Items") == "OrderEntry-LineItems"
    assert siebel_strip("X_Y.Z/W&V") == "X_Y.ZWV"
    assert siebel_tag("A B", "escaped") == "A_spcB"
    assert siebel_tag("A B", "stripped") == "AB"


def test_escape_sequences_are_recognised_but_not_underscores() -> None:
    """A name with _spc is escaped; a stripped name with its own underscore is not taken for one."""
    assert has_escapes("Order_spcNumber")
    assert has_escapes("Account_spc_lprSSE_rpr")
    assert not has_escapes("Order_Number")
    assert not has_escapes("OrderNumber")


# -- one order, written in each of Siebel's forms ------------------------------------------------------

ORDER_FIELDS = {
    "Id": "1-R1",
    "Order Number": "SO-FORM-1",
    "Order Date": "04/01/2027 08:30:00",
    "Account Id": "1-A1",
    "Account": "张伟",
    "Status": "Open",
    "Currency Code": "CNY",
}
LINES = [
    (
        {
            "Line Number": "1",
            "Action Code": "Add",
            "Product Id": "PO-1",
            "Net Price": "10",
            "Price Type": "Recurring",
        },
        [{"Name": "MSISDN", "Value": "13800138000"}],
    ),
    ({"Line Number": "2", "Action Code": "Delete", "Product Id": "PO-2", "Asset Integration Id": "AS-2"}, []),
]
ORDER_IOS = {
    "Order Entry (Sales)": ("Order Entry - Orders", "Order Entry - Line Items", "OrderItemXA"),
    "Siebel Order": ("Orders", "Line Items", "Attributes"),
    "CMCC Order IO": ("CMCC Order Header", "CMCC Order Line", "CMCC Order Line XA"),
}


def component(name: str, fields: dict[str, str], children: str, style: str, attributes: bool) -> str:
    """One component element with its fields as attributes or child elements."""
    tag = siebel_tag(name, style)
    if attributes:
        attrs = "".join(f" {siebel_tag(k, style)}={quoteattr(v)}" for k, v in fields.items())
        return f"<{tag}{attrs}>{children}</{tag}>"
    elements = "".join(f"<{siebel_tag(k, style)}>{v}</{siebel_tag(k, style)}>" for k, v in fields.items())
    return f"<{tag}>{elements}{children}</{tag}>"


def siebel_xml(io: str, style: str, *, attributes: bool, wrapped: bool, instruction: bool) -> bytes:
    """The test order as the integration object ``io`` in one of Siebel's forms."""
    order, line, xa = ORDER_IOS[io]
    lines = ""
    for fields, xas in LINES:
        xa_xml = "".join(component(xa, x, "", style, attributes) for x in xas)
        inner = f"<ListOf{siebel_tag(xa, style)}>{xa_xml}</ListOf{siebel_tag(xa, style)}>" if xas else ""
        lines += component(line, fields, inner, style, attributes)
    items = f"<ListOf{siebel_tag(line, style)}>{lines}</ListOf{siebel_tag(line, style)}>"
    body = component(order, ORDER_FIELDS, items, style, attributes)
    message = (
        f'<SiebelMessage MessageId="1-1" MessageType="Integration Object" IntObjectName={quoteattr(io)} '
        f'IntObjectFormat="Siebel Hierarchical"><ListOf{siebel_tag(io, style)}>{body}'
        f"</ListOf{siebel_tag(io, style)}></SiebelMessage>"
    )
    if wrapped:
        message = f"<PropertySet>{message}</PropertySet>"
    if instruction:
        message = f'<?Siebel-Property-Set EscapeNames="{str(style == "escaped").lower()}"?>{message}'
    return f'<?xml version="1.0" encoding="UTF-8"?>{message}'.encode()


FORMS = [
    pytest.param(
        style,
        attributes,
        wrapped,
        instruction,
        id=f"{style}-{'attrs' if attributes else 'elems'}"
        f"-{'propertyset' if wrapped else 'bare'}-{'pi' if instruction else 'nopi'}",
    )
    for style in ("escaped", "stripped")
    for attributes in (False, True)
    for wrapped in (False, True)
    for instruction in (False, True)
]


@pytest.mark.parametrize("io", list(ORDER_IOS))
@pytest.mark.parametrize(("style", "attributes", "wrapped", "instruction"), FORMS)
def test_every_form_of_every_declared_order_object_maps_alike(
    registry: TransformRegistry, io: str, style: str, attributes: bool, wrapped: bool, instruction: bool
) -> None:
    """The same order gives the same canonical order whatever the integration object and Siebel form."""
    transform = registry.get(ORDER)
    reference = transform.transform_body(
        siebel_xml("Order Entry (Sales)", "escaped", attributes=False, wrapped=False, instruction=False)
    )
    out = transform.transform_body(
        siebel_xml(io, style, attributes=attributes, wrapped=wrapped, instruction=instruction)
    )
    assert out == reference
    assert out["id"] == "SO-FORM-1"
    assert [i["action"] for i in out["productOrderItem"]] == ["add", "delete"]
    assert out["productOrderItem"][0]["product"]["productCharacteristic"] == [
        {"name": "MSISDN", "value": "13800138000"}
    ]


def test_unknown_integration_object_names_the_declared_ones(registry: TransformRegistry) -> None:
    """An undeclared IntObjectName is refused with the accepted names, the declaration, and what came."""
    body = b'<SiebelMessage IntObjectName="Siebel Quote"><ListOfSiebelQuote/></SiebelMessage>'
    with pytest.raises(UnknownMessageTypeError) as err:
        registry.get(ORDER).transform_body(body)
    text = str(err.value)
    assert "'Order Entry (Sales)', 'Siebel Order' or 'CMCC Order IO'" in text
    assert "config/siebel.yaml" in text
    assert 'got <SiebelMessage IntObjectName="Siebel Quote">' in text


# -- a project of its own: standard Account and Contact objects, and every escaped character ---------

EXOTIC_IO = "T&T Order (B2B): v2, #1/\"x\"; 'y' <z>?"
EXOTIC_PARTY = "Party_Main: A&B/C, #1 'q' \"d\" <e>? (f);"

PARTY_DECLARATION = f"""\
party:
  components: [party]
  integration_objects:
    Account: {{party: Account}}
    Contact: {{party: Contact}}
    {json.dumps(EXOTIC_IO)}: {{party: {json.dumps(EXOTIC_PARTY)}}}
"""

PARTY_MAPPING = """\
kind: xpath-to-json
siebel: party
context: "ListOf{{io}}/{{party}} | {{party}}"
rules:
  id: {field: Id, required: true}
  name: {field: Full Name}
  kind: {value: party}
"""


def party_project(tmp_path: Path, declaration: str = PARTY_DECLARATION, mapping: str = PARTY_MAPPING) -> Path:
    """A project with config/siebel.yaml and one party mapping."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "siebel.yaml").write_text(declaration, encoding="utf-8")
    (tmp_path / "transforms" / "crm").mkdir(parents=True)
    (tmp_path / "transforms" / "crm" / "party.yaml").write_text(mapping, encoding="utf-8")
    return tmp_path


def party_xml(io: str, comp: str, style: str) -> bytes:
    """A one-party SiebelMessage of ``io`` whose root component is ``comp``."""
    tag, full = siebel_tag(comp, style), siebel_tag("Full Name", style)
    return (
        f"<SiebelMessage IntObjectName={quoteattr(io)}><ListOf{siebel_tag(io, style)}>"
        f"<{tag} Id='1-P'><{full}>Wang Fang</{full}></{tag}></ListOf{siebel_tag(io, style)}>"
        f"</SiebelMessage>"
    ).encode()


@pytest.mark.parametrize("style", ["escaped", "stripped"])
@pytest.mark.parametrize(
    ("io", "comp"), [("Account", "Account"), ("Contact", "Contact"), (EXOTIC_IO, EXOTIC_PARTY)]
)
def test_standard_and_custom_objects_map_through_one_mapping(
    tmp_path: Path, io: str, comp: str, style: str
) -> None:
    """Account, Contact and an object whose names hold every escaped character map by declaration alone."""
    transform = TransformRegistry(party_project(tmp_path)).get("crm/party")
    assert transform.transform_body(party_xml(io, comp, style)) == {
        "id": "1-P",
        "name": "Wang Fang",
        "kind": "party",
    }


def test_exotic_names_are_written_with_every_escape(tmp_path: Path) -> None:
    """The escaped form of the custom object's names uses the table's sequences, so the test covers them."""
    escaped = siebel_escape(EXOTIC_IO) + siebel_escape(EXOTIC_PARTY)
    assert all(seq in escaped for seq in ORACLE_TABLE.values())


def bad(tmp_path: Path, declaration: str, mapping: str = PARTY_MAPPING) -> str:
    """The ConfigError text of loading the party mapping with a broken declaration or mapping."""
    with pytest.raises(ConfigError) as err:
        TransformRegistry(party_project(tmp_path, declaration, mapping)).get("crm/party")
    return "\n".join(err.value.findings or [str(err.value)])


def test_a_missing_component_name_is_refused_with_file_and_line(tmp_path: Path) -> None:
    """An integration object that does not name every component is a finding at its line."""
    text = bad(
        tmp_path,
        "party:\n  components: [party, address]\n  integration_objects:\n    Account: {party: Account}\n",
    )
    assert text == (
        "config/siebel.yaml:4: party.integration_objects.Account: no name for component "
        "'address': give the repository name 'Account' uses"
    )


def test_an_unknown_component_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    """A component the object does not declare is a finding with a did-you-mean."""
    text = bad(
        tmp_path,
        "party:\n  components: [party]\n  integration_objects:\n"
        "    Account:\n      party: Account\n      partty: X\n",
    )
    assert text.startswith(
        "config/siebel.yaml:6: party.integration_objects.Account.partty: unknown component"
    )
    assert "did you mean 'party'" in text


def test_a_mapping_naming_an_undeclared_object_is_refused(tmp_path: Path) -> None:
    """siebel: with a name config/siebel.yaml lacks names the file, the line and the declared objects."""
    text = bad(tmp_path, PARTY_DECLARATION, PARTY_MAPPING.replace("siebel: party", "siebel: partie"))
    assert text.startswith(
        "transforms/crm/party.yaml:2: siebel: config/siebel.yaml declares no logical object 'partie'"
    )
    assert "declared: party" in text


def test_a_mapping_naming_an_undeclared_component_is_refused(tmp_path: Path) -> None:
    """{{name}} that the object does not declare is a finding at the rule, listing the declared names."""
    text = bad(
        tmp_path,
        PARTY_DECLARATION,
        PARTY_MAPPING + '  items: {foreach: "ListOf{{address}}/{{address}}", rules: {x: {field: X}}}\n',
    )
    assert text.startswith("transforms/crm/party.yaml:8: rules.items.foreach: bad expression")
    assert "unknown component {{address}}: party declares {{io}}, {{party}}" in text


def test_a_mapping_with_siebel_and_accepts_is_refused(tmp_path: Path) -> None:
    """siebel: decides what the mapping accepts: an accepts block beside it is a finding."""
    text = bad(tmp_path, PARTY_DECLARATION, PARTY_MAPPING + "accepts: {root: SiebelMessage}\n")
    assert text.startswith("transforms/crm/party.yaml:8: accepts: siebel: decides what the mapping accepts")


def test_component_names_outside_siebel_mappings_are_refused(tmp_path: Path) -> None:
    """{{name}} in a mapping without siebel: says to declare the object."""
    mapping = 'kind: xpath-to-json\ntag_escape: siebel\nrules:\n  id: {from: "{{party}}/Id"}\n'
    text = bad(tmp_path, PARTY_DECLARATION, mapping)
    assert "declare the mapping's object with siebel:" in text


def test_load_object_returns_the_declared_names(tmp_path: Path) -> None:
    """A declared object gives each integration object's component names plus io."""
    obj = load_object(party_project(tmp_path), "party")
    assert obj.names_for("Contact") == {"io": "Contact", "party": "Contact"}
    assert obj.describe().startswith("'Account', 'Contact' or ")


def test_declaration_findings_are_empty_for_the_shipped_file() -> None:
    """The project's own config/siebel.yaml is clean."""
    assert declaration_findings(PROJECT) == []


def test_lint_reports_a_broken_declaration_once_with_file_and_line(tmp_path: Path) -> None:
    """esb lint names the declaration's file:line, once, even when a mapping that uses it fails too."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("routes.yaml", "config", "transforms", "canonical_model"):
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    path = root / "config" / "siebel.yaml"
    text = path.read_text(encoding="utf-8").replace("      line_attribute: Attributes\n", "", 1)
    path.write_text(text, encoding="utf-8")
    findings: list[Any] = [f for f in lint_project(root) if f.startswith("config/siebel.yaml")]
    line = text.splitlines().index("    Siebel Order:") + 1
    assert findings == [
        f"config/siebel.yaml:{line}: order.integration_objects.Siebel Order: no name for "
        "component 'line_attribute': give the repository name 'Siebel Order' uses"
    ]
