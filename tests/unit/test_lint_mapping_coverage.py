"""esb lint --coverage: per mapping, the source fields mapped, ignored (with reasons) and unmapped."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from esb.cli.main import cli
from esb.transforms.coverage import mapping_coverage, project_coverage, render
from esb.transforms.mapcheck import check_mappings
from tests.unit.mapping_fixture import make_mapping_project

MAPPING = """\
kind: jmespath
input: json
output: json
rules:
  id: ref
  note: "customer.name"
  line:
    foreach: lines
    rules:
      sku: sku
ignore:
  - {path: audit, reason: kept by the CRM only}
  - lines[].count
"""
TESTS = """\
cases:
  - name: a full order
    input_inline:
      ref: R1
      customer: {name: N, phone: "1"}
      audit: {by: u1, at: "2026-01-01"}
      lines: [{sku: S1, count: 2, colour: red}]
"""


def test_coverage_lists_mapped_ignored_and_unmapped(tmp_path: Path) -> None:
    """Fields read are mapped, fields under an ignore entry ignored with its reason, the rest unmapped."""
    project = make_mapping_project(tmp_path, {"m/x": MAPPING}, {"transforms/m/x_test.yaml": TESTS})
    [report] = project_coverage(project)
    assert report.mapping == "m/x"
    assert report.basis == "1 sample(s)"
    assert report.mapped == ["customer.name", "lines[].sku", "ref"]
    assert report.ignored == {
        "audit.at": "kept by the CRM only",
        "audit.by": "kept by the CRM only",
        "lines[].count": "",
    }
    assert report.unmapped == ["customer.phone", "lines[].colour"]


def test_ignore_entry_matching_nothing_is_a_warning(tmp_path: Path) -> None:
    """An ignore entry that names no field of the samples is reported at its line (a typo hides nothing)."""
    text = MAPPING.replace("  - lines[].count", "  - lines[].cuont")
    project = make_mapping_project(tmp_path, {"m/x": text}, {"transforms/m/x_test.yaml": TESTS})
    _, warnings = check_mappings(project)
    assert warnings == [
        "transforms/m/x.yaml:13: warning: ignore[1]: ignored field 'lines[].cuont' is in none of "
        "the 1 sample(s): fix the path (as esb lint --coverage shows it) or remove the entry"
    ]


def test_coverage_of_a_whole_object_read(tmp_path: Path) -> None:
    """Reading an object maps every field under it."""
    text = MAPPING.replace('note: "customer.name"', "note: customer")
    project = make_mapping_project(tmp_path, {"m/x": text}, {"transforms/m/x_test.yaml": TESTS})
    [report] = project_coverage(project)
    assert "customer.phone" in report.mapped


def test_coverage_from_the_input_schema_without_samples(tmp_path: Path) -> None:
    """Without samples, the input schema's fields are the source fields."""
    text = MAPPING.replace("input: json\n", "input: json\ninput_schema: order.v1\n").replace(
        'note: "customer.name"', "note: type"
    )
    project = make_mapping_project(tmp_path, {"m/x": text})
    report = mapping_coverage(project, "m/x", project.transforms.get("m/x"))
    assert report.basis == "input schema order.v1"
    assert report.mapped == ["lines[].sku", "ref", "type"]
    assert report.ignored == {"lines[].count": ""}
    assert report.unmapped == []


SIEBEL = """\
kind: xpath-to-json
input: xml
output: json
tag_escape: siebel
rules:
  id: {field: Order Number}
  lines:
    foreach: "ListOf{Line Item}/{Line Item}"
    rules:
      sku: {field: Product Id}
ignore:
  - {path: IntObjectName, reason: checked by accepts}
"""
SIEBEL_TEST = """\
cases:
  - name: one order
    input_inline: |
      <SiebelMessage IntObjectName="X" Order_spcNumber="1"><Comments>c</Comments><Empty_spcField/>
        <ListOfLine_spcItem><Line_spcItem Product_spcId="P1"><Unit_spcPrice>3</Unit_spcPrice></Line_spcItem>
          </ListOfLine_spcItem>
      </SiebelMessage>
"""


def test_xml_coverage_shows_siebel_names(tmp_path: Path) -> None:
    """XML fields are shown with Siebel's names unescaped; empty elements carry nothing and are not listed."""
    project = make_mapping_project(tmp_path, {"m/s": SIEBEL}, {"transforms/m/s_test.yaml": SIEBEL_TEST})
    [report] = project_coverage(project)
    assert report.mapped == ["ListOfLine Item/Line Item/Product Id", "Order Number"]
    assert report.ignored == {"IntObjectName": "checked by accepts"}
    assert report.unmapped == ["Comments", "ListOfLine Item/Line Item/Unit Price"]


def test_render_reads_per_mapping(tmp_path: Path) -> None:
    """The text report gives a summary line, then unmapped, ignored (with reason) and mapped fields."""
    project = make_mapping_project(tmp_path, {"m/x": MAPPING}, {"transforms/m/x_test.yaml": TESTS})
    lines = render(project_coverage(project))
    assert lines[0] == "m/x (1 sample(s)): 3 mapped, 3 ignored, 2 unmapped"
    assert "  unmapped  customer.phone" in lines
    assert "  ignored   audit.at  (kept by the CRM only)" in lines
    assert "  mapped    ref" in lines


def test_cli_coverage_json(tmp_path: Path) -> None:
    """esb lint --coverage --json gives the findings and the coverage per mapping; warnings do not fail."""
    make_mapping_project(
        tmp_path,
        {"m/x": MAPPING, "m/y": MAPPING.replace("  id: ref", "  id: reff")},
        {"transforms/m/x_test.yaml": TESTS, "transforms/m/y_test.yaml": TESTS},
    )
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "lint", "--coverage", "--json"])
    out = json.loads(result.output)
    transforms = [f for f in out["findings"] if f.startswith("transforms/")]
    assert transforms == [
        "transforms/m/y.yaml:5: warning: rules.id.from: source 'reff': reff is in none of "
        "the samples (1 sample(s)): fix the name, or add a test case whose input holds it"
    ]
    assert out["coverage"]["m/x"]["unmapped"] == ["customer.phone", "lines[].colour"]
    assert out["coverage"]["m/y"]["unmapped"] == ["customer.phone", "lines[].colour", "ref"]


def test_cli_warnings_alone_exit_zero(tmp_path: Path) -> None:
    """Lint exits 0 when every finding is a warning, and counts them apart."""
    project_dir = tmp_path / "p"
    make_mapping_project(project_dir, {"m/x": MAPPING})
    # the fixture's schemas have no examples: drop them so the only findings are the mapping's warnings
    for schema in (project_dir / "canonical_model").rglob("*.schema.json"):
        schema.unlink()
    result = CliRunner().invoke(cli, ["--project", str(project_dir), "lint"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "0 error(s), 1 warning(s)"
