"""Multi-file WSDL/XSD sets under a contract root: a published layout loads offline whatever its relative
paths; imports outside the root, over http(s) or through links leading out are refused, naming the file
that tried, the import and the root; the cache follows every file of the set; requests validate against
the whole set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from adapters.soap.cache import DocumentCache
from adapters.soap.config import SOAPEndpoint
from adapters.soap.contractset import LOCATIONS
from adapters.soap.publish import Publisher
from adapters.soap.schema import RequestValidator
from adapters.soap.sink import endpoint_contract
from adapters.soap.wsdl import _load, forget_contracts, load_contract
from esb.cli.main import cli
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.exceptions import ConfigError
from esb.xmlsafe import parse_xml

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/contracts/operator"
SERVICE = "wsdl/ProductOrdering/v2/ProductOrderingService.wsdl"
TYPES = "xsd/common/v1/Types.xsd"
SET = [
    SERVICE,
    "wsdl/ProductOrdering/v2/ProductOrderingInterface.wsdl",
    "xsd/productOrder/v2/ProductOrder.xsd",
    TYPES,
    "xsd/common/v1/CodeLists.xsd",
    "xsd/party/v1/Party.xsd",
]
PARTY_IMPORT = 'schemaLocation="../../party/v1/Party.xsd"'
MESSAGES = "http://operator.example/wsdl/ProductOrdering/v2/messages"
ORDER = f"""<m:CreateProductOrderRequest xmlns:m="{MESSAGES}"
    xmlns:po="http://operator.example/xsd/productOrder/v2"
    xmlns:c="http://operator.example/xsd/common/v1" xmlns:p="http://operator.example/xsd/party/v1">
  <po:productOrder>
    <po:externalId>SBL-1-2AB3C</po:externalId>
    <po:priority>high</po:priority>
    <po:relatedParty><c:role>customer</c:role>
      <c:party referredType="CustomerAccount"><p:id>ACC-88</p:id></c:party></po:relatedParty>
    <po:productOrderItem><po:id>1</po:id><po:action>add</po:action>
      <po:productOfferingId>PO-5G-199</po:productOfferingId></po:productOrderItem>
  </po:productOrder>
</m:CreateProductOrderRequest>"""


@pytest.fixture(autouse=True)
def _fresh_contracts() -> None:
    """Every test loads its contracts anew."""
    forget_contracts()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A writable copy of the fixture set, the contract root of the test."""
    copy = tmp_path / "contracts" / "operator"
    shutil.copytree(FIXTURE, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur) by ``new`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def outside(tmp_path: Path) -> Path:
    """A copy of Party.xsd outside the root, under ``tmp_path/elsewhere``."""
    target = tmp_path / "elsewhere" / "Party.xsd"
    target.parent.mkdir()
    shutil.copy(FIXTURE / "xsd/party/v1/Party.xsd", target)
    return target


def test_published_layout_loads_every_file_under_the_root() -> None:
    """The set climbing into sibling folders loads offline, every file of it recorded, WSDL first."""
    contract = load_contract(FIXTURE / SERVICE, root=FIXTURE)
    assert contract.files == [FIXTURE / name for name in SET]
    assert contract.root == FIXTURE
    names = {(o.port, o.name, o.one_way) for o in contract.operations}
    assert names == {
        ("ProductOrderingSoap11Port", "CreateProductOrder", False),
        ("ProductOrderingSoap11Port", "CancelProductOrder", True),
        ("ProductOrderingSoap12Port", "CreateProductOrder", False),
        ("ProductOrderingSoap12Port", "CancelProductOrder", True),
    }
    order = contract.element(f"{{{MESSAGES}}}CreateProductOrderRequest")
    assert "productOrder" in order.type.signature(schema=contract.document.types)


def test_cli_lists_the_operations_of_the_set() -> None:
    """`esb soap operations --root` lists the set's operations and its six files."""
    result = CliRunner().invoke(cli, ["soap", "operations", "--root", str(FIXTURE), str(FIXTURE / SERVICE)])
    assert result.exit_code == 0, result.output
    assert "6 file(s)" in result.output
    assert "CreateProductOrder  (request-reply" in result.output
    assert "CancelProductOrder  (one-way" in result.output
    assert "Party.xsd" in result.output


def test_cli_defaults_to_the_projects_contract_folder(root: Path) -> None:
    """Without --root, a WSDL under the project's config/contracts/ loads with that folder as its root."""
    project = root.parents[1]
    (project / "config").mkdir()
    (project / "contracts").rename(project / "config" / "contracts")
    wsdl = project / "config/contracts/operator" / SERVICE
    result = CliRunner().invoke(cli, ["--project", str(project), "soap", "operations", str(wsdl)])
    assert result.exit_code == 0, result.output
    assert "6 file(s)" in result.output


def test_cli_without_root_outside_the_project_names_the_import(root: Path) -> None:
    """Outside the project's contracts, the WSDL's folder is the root: the climbing import is refused."""
    result = CliRunner().invoke(cli, ["soap", "operations", str(root / SERVICE)])
    assert isinstance(result.exception, ConfigError)
    message = str(result.exception)
    assert (
        "ProductOrderingInterface.wsdl: xsd:import '../../../xsd/productOrder/v2/ProductOrder.xsd'" in message
    )
    assert f"outside the contract root {root / 'wsdl/ProductOrdering/v2'}" in message
    assert "--root" in message


def test_endpoint_reads_its_contract_under_config_contracts_by_default(tmp_path: Path) -> None:
    """An endpoint's contract root defaults to the project's config/contracts/; a narrower one refuses."""
    shutil.copytree(FIXTURE, tmp_path / "config/contracts/operator")
    context = AdapterContext(Settings(data_dir=tmp_path / "data"), tmp_path, "som.create_order")
    wsdl = f"config/contracts/operator/{SERVICE}"
    endpoint = SOAPEndpoint.model_validate({"wsdl": wsdl, "operation": "CreateProductOrder"})
    assert endpoint.contract_root_path(tmp_path) == tmp_path / "config/contracts"
    contract = endpoint_contract(endpoint, context)
    assert contract.root == tmp_path / "config/contracts"
    assert len(contract.files) == len(SET)
    narrow = SOAPEndpoint.model_validate(
        {"wsdl": wsdl, "operation": "CreateProductOrder", "contract_root": "config/contracts/operator/wsdl"}
    )
    with pytest.raises(ConfigError, match="outside the contract root"):
        endpoint_contract(narrow, context)


@pytest.mark.parametrize(
    ("file", "old", "new", "kind"),
    [
        pytest.param(
            TYPES,
            PARTY_IMPORT,
            'schemaLocation="../../../../../elsewhere/Party.xsd"',
            "xsd:import",
            id="xsd-import-climbing-out",
        ),
        pytest.param(
            TYPES,
            '<xsd:include schemaLocation="CodeLists.xsd"/>',
            '<xsd:include schemaLocation="../../../../../elsewhere/Party.xsd"/>',
            "xsd:include",
            id="xsd-include",
        ),
        pytest.param(
            TYPES,
            '<xsd:include schemaLocation="CodeLists.xsd"/>',
            '<xsd:redefine schemaLocation="../../../../../elsewhere/Party.xsd"/>',
            "xsd:redefine",
            id="xsd-redefine",
        ),
        pytest.param(
            SERVICE,
            'location="./ProductOrderingInterface.wsdl"',
            'location="../../../../../elsewhere/Party.xsd"',
            "wsdl:import",
            id="wsdl-import",
        ),
        pytest.param(TYPES, PARTY_IMPORT, 'schemaLocation="{elsewhere}"', "xsd:import", id="absolute-path"),
        pytest.param(TYPES, PARTY_IMPORT, 'schemaLocation="file://{elsewhere}"', "xsd:import", id="file-url"),
    ],
)
def test_import_outside_the_root_is_refused_before_it_is_read(
    root: Path, tmp_path: Path, file: str, old: str, new: str, kind: str
) -> None:
    """A document outside the root is never read: the error names the importer, the import and the root."""
    elsewhere = outside(tmp_path)
    elsewhere.write_text("<not well-formed", encoding="utf-8")  # read, it would fail differently
    location = new.format(elsewhere=elsewhere).split('="', 1)[1].split('"', 1)[0]
    edit(root / file, old, new.format(elsewhere=elsewhere))
    with pytest.raises(ConfigError) as caught:
        load_contract(root / SERVICE, root=root)
    message = str(caught.value)
    assert message.startswith(f"{root / file}: {kind} {location!r}: ")
    assert f"{elsewhere} is outside the contract root {root}" in message


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_remote_import_is_refused(root: Path, scheme: str) -> None:
    """An http(s) schemaLocation deep in the set is refused, naming the importer: nothing is fetched."""
    edit(root / TYPES, PARTY_IMPORT, f'schemaLocation="{scheme}://127.0.0.1:9/xsd/party/v1/Party.xsd"')
    with pytest.raises(ConfigError) as caught:
        load_contract(root / SERVICE, root=root)
    message = str(caught.value)
    assert message.startswith(
        f"{root / TYPES}: xsd:import '{scheme}://127.0.0.1:9/xsd/party/v1/Party.xsd' is remote"
    )
    assert f"contract root {root}" in message


def test_symlinked_file_leading_out_is_refused(root: Path, tmp_path: Path) -> None:
    """A file inside the root that is a link to a file outside it is refused (links resolved first)."""
    party = root / "xsd/party/v1/Party.xsd"
    party.unlink()
    party.symlink_to(outside(tmp_path))
    with pytest.raises(ConfigError) as caught:
        load_contract(root / SERVICE, root=root)
    message = str(caught.value)
    assert message.startswith(f"{root / TYPES}: xsd:import '../../party/v1/Party.xsd': ")
    assert "symbolic link" in message
    assert f"outside the contract root {root}, to {tmp_path / 'elsewhere/Party.xsd'}" in message


def test_symlinked_folder_leading_out_is_refused(root: Path, tmp_path: Path) -> None:
    """A folder inside the root that is a link to a folder outside it is refused too."""
    shutil.move(root / "xsd/party", tmp_path / "party")
    (root / "xsd/party").symlink_to(tmp_path / "party", target_is_directory=True)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_contract(root / SERVICE, root=root)


def test_symlinked_wsdl_leading_out_is_refused(root: Path, tmp_path: Path) -> None:
    """The WSDL itself must lie under the root once its links are resolved."""
    link = root / "Service.wsdl"
    link.symlink_to(tmp_path / "elsewhere.wsdl")
    shutil.copy(root / SERVICE, tmp_path / "elsewhere.wsdl")
    with pytest.raises(ConfigError, match=rf"^WSDL {link}: .*symbolic link"):
        load_contract(link, root=root)


def test_symlink_within_the_root_is_followed(root: Path) -> None:
    """A link from one place under the root to another place under it is fine: the set loads."""
    vendor = root / "vendor/party.xsd"
    vendor.parent.mkdir()
    (root / "xsd/party/v1/Party.xsd").rename(vendor)
    (root / "xsd/party/v1/Party.xsd").symlink_to(vendor)
    contract = load_contract(root / SERVICE, root=root)
    assert contract.files[-1] == vendor


REDEFINE = """<xsd:redefine schemaLocation="./CodeLists.xsd">
    <xsd:simpleType name="PriorityType">
      <xsd:restriction base="cmn:PriorityType">
        <xsd:enumeration value="normal"/><xsd:enumeration value="high"/>
      </xsd:restriction>
    </xsd:simpleType>
    <xsd:complexType name="NoteType">
      <xsd:complexContent>
        <xsd:extension base="cmn:NoteType">
          <xsd:sequence><xsd:element name="author" type="xsd:string"/></xsd:sequence>
        </xsd:extension>
      </xsd:complexContent>
    </xsd:complexType>
  </xsd:redefine>"""
NOTE = """<xsd:complexType name="NoteType">
    <xsd:sequence><xsd:element name="text" type="xsd:string"/></xsd:sequence>
  </xsd:complexType>
</xsd:schema>"""


def test_redefine_under_the_root_loads_and_validates(root: Path) -> None:
    """A set using xsd:redefine loads (zeep sees the redefined types) and requests obey the redefinition."""
    edit(root / "xsd/common/v1/CodeLists.xsd", "</xsd:schema>", NOTE)
    edit(root / TYPES, '<xsd:include schemaLocation="CodeLists.xsd"/>', REDEFINE)
    contract = load_contract(root / SERVICE, root=root)
    assert contract.files == [root / name for name in SET]
    note = contract.document.types.get_type("{http://operator.example/xsd/common/v1}NoteType")
    assert [name for name, _ in note.elements] == ["text", "author"]
    priority = contract.document.types.get_type("{http://operator.example/xsd/common/v1}PriorityType")
    assert priority.name == "PriorityType"
    validator = RequestValidator(contract.files, contract.root)
    assert validator.errors(parse_xml(ORDER.encode())) == []
    (error,) = validator.errors(parse_xml(ORDER.replace(">high<", ">low<").encode()))
    assert "The value 'low' is not an element of the set {'normal', 'high'}" in error


@pytest.mark.parametrize("changed", SET)
def test_cache_is_invalidated_by_a_change_in_any_file_of_the_set(
    root: Path, tmp_path: Path, changed: str
) -> None:
    """The cache keys on every file of the set: changing any one of them, however deep, rebuilds it."""
    wsdl = root / SERVICE
    document, files = _load(wsdl, root, 5.0)
    assert files == [root / name for name in SET]
    cache = DocumentCache(tmp_path / "cache")
    assert cache.put(wsdl, document, files)
    assert cache.get(wsdl) is not None
    with (root / changed).open("a", encoding="utf-8") as handle:
        handle.write("\n<!-- changed -->\n")
    assert cache.get(wsdl) is None


def test_cached_contract_is_still_checked_against_the_root(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache entry never bypasses the root: an import moved out of it after caching is refused."""
    monkeypatch.setattr("adapters.soap.wsdl.CACHE_FROM_SECONDS", 0.0)
    load_contract(root / SERVICE, root=root, cache_dir=tmp_path / "cache")
    forget_contracts()
    edit(root / TYPES, PARTY_IMPORT, 'schemaLocation="../../../../../elsewhere/Party.xsd"')
    outside(tmp_path)
    with pytest.raises(ConfigError, match="outside the contract root"):
        load_contract(root / SERVICE, root=root, cache_dir=tmp_path / "cache")


def test_request_validates_against_the_whole_set() -> None:
    """A request is checked against types from every folder: the included sibling and the third folder."""
    contract = load_contract(FIXTURE / SERVICE, root=FIXTURE)
    validator = RequestValidator(contract.files, contract.root)
    assert validator.errors(parse_xml(ORDER.encode())) == []
    bad = ORDER.replace(">add<", ">upgrade<").replace('"CustomerAccount"', '"Customer"')
    errors = validator.errors(parse_xml(bad.encode()))
    assert len(errors) == 2
    assert "'upgrade' is not an element of the set {'add', 'modify', 'delete', 'noChange'}" in errors[1]
    assert "attribute 'referredType'" in errors[0]
    assert "'Customer'" in errors[0]


def test_validator_serves_only_the_contracts_files(root: Path) -> None:
    """The schema resolver refuses a document that is not one of the walked files of the contract."""
    contract = load_contract(root / SERVICE, root=root)
    with pytest.raises(ConfigError, match=r"Party\.xsd is not one of the contract's local files under"):
        RequestValidator([f for f in contract.files if f.name != "Party.xsd"], root)


def test_published_set_serves_every_climbing_import_by_name() -> None:
    """``?wsdl`` rewrites every import of the set, climbs included, to a name the listener serves."""
    contract = load_contract(FIXTURE / SERVICE, root=FIXTURE)
    publisher = Publisher(contract.path, contract.files)
    url = "http://127.0.0.1:1/soap/po"
    pending, served = [None], set()
    while pending:
        name = pending.pop()
        document = publisher.document(name, url)
        assert document is not None, name
        served.add(name)
        for node in parse_xml(document).iter(*LOCATIONS):
            location = str(node.get(LOCATIONS[str(node.tag)]))
            assert location.startswith(f"{url}?file=")
            target = unquote(location.split("?file=", 1)[1])
            if target not in served:
                pending.append(target)
    assert len(served) == len(SET)
    assert "../../../xsd/productOrder/v2/ProductOrder.xsd" in served


def test_listing_does_not_depend_on_the_working_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The root, not the folder the command runs from, decides what may be read."""
    monkeypatch.chdir(tmp_path)
    contract = load_contract(Path(os.path.relpath(FIXTURE / SERVICE)), root=Path(os.path.relpath(FIXTURE)))
    assert contract.files[0] == FIXTURE / SERVICE
