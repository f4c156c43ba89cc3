"""esb lint on mappings: targets, required fields, enumerations and sources, each with its file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esb.config.findings import is_warning
from esb.exceptions import ConfigError
from esb.lint import lint_project
from esb.transforms.coverage import project_coverage
from esb.transforms.mapcheck import check_mappings
from tests.unit.mapping_fixture import make_mapping_project

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
kind: jmespath
input: json
output: json
input_schema: order.v1
output_schema: thing.v1
rules:
  id: {from: ref, required: true}
  kind: {from: type, fn: [{codelist: order_kind, system: crm}]}
  note: {value: hello}
  extra.anything.at.all: ref
  choice.x: ref
  choice.y: ref
  line:
    foreach: lines
    rules:
      sku: sku
      qty: count
"""


def findings(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) of a project whose one mapping is ``m/x`` with ``text``."""
    return check_mappings(make_mapping_project(tmp_path, {"m/x": text}, files))


def replace(old: str, new: str) -> str:
    """Return GOOD with ``old`` replaced by ``new`` (which must be there)."""
    assert old in GOOD
    return GOOD.replace(old, new)


def test_correct_mapping_has_no_findings(tmp_path: Path) -> None:
    """$ref, oneOf branches, open objects, arrays and foreach all resolve: nothing to report."""
    assert findings(tmp_path, GOOD) == ([], [])


def test_target_missing_from_output_schema(tmp_path: Path) -> None:
    """A target the closed output schema refuses is an error at the rule's line, with a suggestion."""
    errors, _ = findings(tmp_path, replace("  note: {value: hello}", "  note: {value: hello}\n  noet: ref"))
    assert errors == [
        "transforms/m/x.yaml:10: rules.noet: target 'noet': (top level) has no field 'noet' (did you mean "
        "'note'?) of output schema thing.v1: fix the target path or the schema"
    ]


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        pytest.param(
            "  choice.y: ref", "  choice.z: ref", "transforms/m/x.yaml:12: rules.choice.z", id="oneOf"
        ),
        pytest.param(
            "      qty: count",
            "      qty: count\n      price: count",
            "transforms/m/x.yaml:18: rules.line.rules.price",
            id="foreach-item",
        ),
        pytest.param(
            "  note: {value: hello}",
            "  note.text: {value: hello}",
            "transforms/m/x.yaml:9: rules.note.text",
            id="into-a-string",
        ),
    ],
)
def test_target_missing_in_nested_schemas(tmp_path: Path, old: str, new: str, where: str) -> None:
    """A target that exists in no oneOf branch, no item schema, or goes below a string is an error."""
    errors, _ = findings(tmp_path, replace(old, new))
    assert len(errors) == 1
    assert errors[0].startswith(where + ": target ")


@pytest.mark.parametrize(
    ("key", "line"),
    [pytest.param("input_schema", 4, id="input"), pytest.param("output_schema", 5, id="output")],
)
def test_unknown_schema_names(tmp_path: Path, key: str, line: int) -> None:
    """A misspelt input or output schema is an error at its line, with a suggestion."""
    text = replace(f"{key}: {'order' if key == 'input_schema' else 'thing'}.v1", f"{key}: thingy.v1")
    errors, _ = findings(tmp_path, text)
    assert (
        f"transforms/m/x.yaml:{line}: {key}: unknown canonical schema 'thingy.v1' (did you mean " in errors[0]
    )
    assert errors[0].endswith(": fix the name")


def test_unknown_output_schema_of_a_python_mapping(tmp_path: Path) -> None:
    """Mappings that are code still name a schema that must exist."""
    text = "kind: python\ninput: json\noutput: json\noutput_schema: thingy.v1\nfunction: json:loads\n"
    errors, warnings = findings(tmp_path, text)
    assert errors == [
        "transforms/m/x.yaml:4: output_schema: unknown canonical schema 'thingy.v1' (did you mean "
        "'thing.v1'?): fix the name"
    ]
    assert warnings == []


def test_required_field_not_written(tmp_path: Path) -> None:
    """A required field no rule writes is an error at the block that builds the object."""
    errors, _ = findings(tmp_path, replace("  id: {from: ref, required: true}\n", ""))
    assert errors == [
        "transforms/m/x.yaml:6: rules: required field 'id' of thing.v1 is never written: add a rule for it "
        "(from, value or default)"
    ]


def test_required_field_of_a_foreach_item(tmp_path: Path) -> None:
    """A required field of a list item is checked where the foreach is."""
    errors, _ = findings(tmp_path, replace("      sku: sku\n", ""))
    assert errors == [
        "transforms/m/x.yaml:13: rules.line: required field 'line[].sku' of thing.v1 is never written: add a "
        "rule for it (from, value or default)"
    ]


def test_code_list_outside_the_enumeration(tmp_path: Path) -> None:
    """A code list whose values the target's enum (through $ref) refuses is an error at its fn."""
    errors, _ = findings(tmp_path, replace("order_kind", "thing_kind"))
    assert errors == [
        "transforms/m/x.yaml:8: rules.kind.fn: code list 'thing_kind' (crm) gives 'c', not allowed at kind "
        "of "
        "thing.v1 (allowed: a, b): map to an allowed value, or add the value to the schema"
    ]


@pytest.mark.parametrize(
    ("rule", "what"),
    [
        pytest.param(
            "{from: type, fn: [trim, {lookup: {table: {A: a, Z: z}}}]}",
            "the lookup table gives 'z'",
            id="lookup",
        ),
        pytest.param("{value: q}", "the value gives 'q'", id="value"),
        pytest.param("{from: type, default: d}", "the default gives 'd'", id="default"),
    ],
)
def test_lookup_and_constants_outside_the_enumeration(tmp_path: Path, rule: str, what: str) -> None:
    """Lookup tables, constant values and defaults are checked against the enumeration too."""
    errors, _ = findings(tmp_path, replace("{from: type, fn: [{codelist: order_kind, system: crm}]}", rule))
    assert len(errors) == 1
    assert errors[0].startswith("transforms/m/x.yaml:8: rules.kind.")
    assert what in errors[0]


def test_source_missing_from_input_schema_is_an_error(tmp_path: Path) -> None:
    """A source path the input schema does not have is an error, nested ones included."""
    errors, warnings = findings(tmp_path, replace("qty: count", "qty: cuont"))
    assert errors == [
        "transforms/m/x.yaml:17: rules.line.rules.qty.from: source 'cuont': lines[] has no field 'cuont' "
        "(did "
        "you mean 'count'?) of the input schema: fix the expression or input_schema"
    ]
    assert warnings == []


def test_filter_sources_are_checked(tmp_path: Path) -> None:
    """The fields a filter compares are source paths too."""
    errors, _ = findings(tmp_path, replace("  choice.x: ref", "  choice.x: \"lines[?skew=='1'].sku | [0]\""))
    assert len(errors) == 1
    assert "source \"lines[?skew=='1'].sku | [0]\": lines[] has no field 'skew'" in errors[0]


def test_missing_foreach_is_reported_once(tmp_path: Path) -> None:
    """The rules under a foreach whose list does not exist are not reported again."""
    errors, _ = findings(tmp_path, replace("foreach: lines", "foreach: lignes"))
    assert [e.split(": ")[1] for e in errors] == ["rules.line.foreach"]


SAMPLE_TEST = """\
cases:
  - name: one line
    input_inline: {ref: R1, type: A, lines: [{sku: S1, count: 2}]}
  - name: refused input is not a sample
    input_inline: {ref: R2, type: A, wrong: 1}
    error: {type: MappingError}
"""


def test_source_missing_from_samples_is_a_warning(tmp_path: Path) -> None:
    """Without an input schema, a source no sample has is a warning naming the samples."""
    text = replace("input_schema: order.v1\n", "").replace("  choice.y: ref", "  choice.y: wrong")
    errors, warnings = findings(tmp_path, text, {"transforms/m/x_test.yaml": SAMPLE_TEST})
    assert errors == []
    assert warnings == [
        "transforms/m/x.yaml:11: warning: rules.choice.y.from: source 'wrong': wrong is in none of the "
        "samples "
        "(1 sample(s)): fix the name, or add a test case whose input holds it"
    ]
    assert is_warning(warnings[0])


def test_json_context_is_checked(tmp_path: Path) -> None:
    """A context list the input schema does not have is an error at the context line."""
    text = GOOD.replace("\nrules:\n", "\ncontext: ordrs\nrules:\n", 1)
    errors, _ = findings(tmp_path, text)
    assert [e.split(": ")[:2] for e in errors] == [["transforms/m/x.yaml:6", "context"]]


def test_a_test_file_for_another_mapping_gives_no_samples(tmp_path: Path) -> None:
    """Cases of a test file that names another transform are not this mapping's samples."""
    text = replace("input_schema: order.v1\n", "")
    errors, warnings = findings(
        tmp_path, text, {"transforms/m/x_test.yaml": "transform: m/other\n" + SAMPLE_TEST}
    )
    assert errors == []
    assert [w.split(": ")[2] for w in warnings] == ["input"]


def test_no_schema_and_no_sample_is_one_warning(tmp_path: Path) -> None:
    """A mapping with nothing to check its sources against says so once, at its input line."""
    errors, warnings = findings(tmp_path, replace("input_schema: order.v1\n", ""))
    assert errors == []
    assert len(warnings) == 1
    assert warnings[0].startswith("transforms/m/x.yaml:2: warning: input: source paths not checked")


SIEBEL = """\
kind: xpath-to-json
input: xml
output: json
output_schema: thing.v1
tag_escape: siebel
context: "ListOf{Thing Entry}/{Thing Entry}"
rules:
  id: {field: Order Number, required: true}
  kind: {field: Kind Code, fn: [{codelist: order_kind, system: crm}]}
  note: "concat({Note Text}, ' ', @Missing_spcAttr)"
  line:
    foreach: "ListOf{Line Item}/{Line Item}"
    rules:
      sku: {field: Product Id}
      qty: {field: Quantity}
"""
SIEBEL_TEST = """\
cases:
  - name: fields as elements and attributes
    input_inline: |
      <SiebelMessage><ListOfThing_spcEntry><Thing_spcEntry Order_spcNumber="1">
        <Kind_spcCode>A</Kind_spcCode><Note_spcText>n</Note_spcText>
        <ListOfLine_spcItem><Line_spcItem Product_spcId="P1"><Quantity>1</Quantity></Line_spcItem>
          </ListOfLine_spcItem>
      </Thing_spcEntry></ListOfThing_spcEntry></SiebelMessage>
"""


def test_xml_sources_compare_siebel_names_as_the_dialect_does(tmp_path: Path) -> None:
    """Siebel fields as elements or attributes are found; the one no sample has is a warning."""
    errors, warnings = findings(tmp_path, SIEBEL, {"transforms/m/x_test.yaml": SIEBEL_TEST})
    assert errors == []
    assert warnings == [
        "transforms/m/x.yaml:10: warning: rules.note.from: source "
        "\"concat({Note Text}, ' ', @Missing_spcAttr)\": '@Missing_spcAttr' selects nothing in any sample "
        "(1 sample(s)): fix the name, or add a test case whose input holds it"
    ]


def test_xml_context_selecting_nothing_is_found(tmp_path: Path) -> None:
    """A context that selects nothing in any sample is reported (the rules under it were never tried)."""
    text = SIEBEL.replace("ListOf{Thing Entry}/{Thing Entry}", "ListOf{Thing Entry}/{Thing Entries}")
    _, warnings = findings(tmp_path, text, {"transforms/m/x_test.yaml": SIEBEL_TEST})
    assert [w.split(": ")[:3] for w in warnings] == [["transforms/m/x.yaml:6", "warning", "context"]]


def test_xml_misspelt_field_is_found(tmp_path: Path) -> None:
    """A field whose escaped name is in no sample is reported at its rule."""
    text = SIEBEL.replace("{field: Product Id}", "{field: Product ID}")
    _, warnings = findings(tmp_path, text, {"transforms/m/x_test.yaml": SIEBEL_TEST})
    assert any(
        w.startswith(
            "transforms/m/x.yaml:14: warning: rules.line.rules.sku.from: source "
            "'Product_spcID|@Product_spcID': selects nothing"
        )
        for w in warnings
    )


def test_ignore_must_be_a_list_of_paths(tmp_path: Path) -> None:
    """A malformed ignore entry is a compile finding with its line."""
    project = make_mapping_project(tmp_path, {"m/x": GOOD + "ignore:\n  - {path: ref, why: x}\n"})
    with pytest.raises(ConfigError, match=r"transforms/m/x.yaml:19: ignore\[0\]: expected a path"):
        project.transforms.get("m/x")


def test_code_list_targets_are_checked(tmp_path: Path) -> None:
    """A code list's declared target must exist and allow every canonical value of the list."""
    codelists = """\
thing_kind:
  canonical: [a, b, c]
  targets: ["thing.v1:kind", "thing.v1:line[].kind"]
  systems: {crm: {A: a, B: b, C: c}}
"""
    make_mapping_project(tmp_path, {}, {"canonical_model/codelists.yaml": codelists})
    found = [f for f in lint_project(tmp_path) if f.startswith("canonical_model/codelists.yaml")]
    assert found == [
        "canonical_model/codelists.yaml:3: thing_kind.targets[0]: code list 'thing_kind' gives 'c', which "
        "kind "
        "of thing.v1 does not allow (allowed: a, b): map those codes to allowed values, or add the values to "
        "the schema",
        "canonical_model/codelists.yaml:3: thing_kind.targets[1]: target 'thing.v1:line[].kind': line[] "
        "has no "
        "field 'kind' of thing.v1: fix the field path",
    ]


def test_shipped_project_has_no_mapping_errors() -> None:
    """The project's own transforms and code lists pass every mapping check."""
    assert [f for f in lint_project(ROOT) if not is_warning(f)] == []


SIEBEL_DECLARATION = """\
thing:
  components: [thing, line]
  integration_objects:
    Thing Entry (Sales):
      thing: Thing Entry
      line: Line Item
    Other Thing:
      thing: Thing Header
      line: Thing Line
"""
SIEBEL_OBJECTS = """\
kind: xpath-to-json
input: xml
output: json
output_schema: thing.v1
siebel: thing
context: "ListOf{{io}}/{{thing}}"
rules:
  id: {field: Order Number, required: true}
  kind: {value: a}
  line:
    foreach: "ListOf{{line}}/{{line}}"
    rules:
      sku: {field: Product Id}
"""
SIEBEL_OBJECTS_TEST = """\
cases:
  - name: escaped names, bare SiebelMessage
    input_inline: |
      <SiebelMessage IntObjectName="Thing Entry (Sales)"><ListOfThing_spcEntry_spc_lprSales_rpr>
        <Thing_spcEntry Order_spcNumber="1"><ListOfLine_spcItem><Line_spcItem Product_spcId="P1"/>
        </ListOfLine_spcItem></Thing_spcEntry></ListOfThing_spcEntry_spc_lprSales_rpr></SiebelMessage>
  - name: stripped names inside a PropertySet, another integration object
    input_inline: |
      <PropertySet><SiebelMessage IntObjectName="Other Thing"><ListOfOtherThing><ThingHeader>
        <OrderNumber>2</OrderNumber><ListOfThingLine><ThingLine><ProductId>P2</ProductId></ThingLine>
        </ListOfThingLine></ThingHeader></ListOfOtherThing></SiebelMessage></PropertySet>
"""


def siebel_project(tmp_path: Path, mapping: str) -> Any:
    """A project with a `siebel: thing` mapping, its declaration and two samples (both naming styles)."""
    files = {"config/siebel.yaml": SIEBEL_DECLARATION, "transforms/m/x_test.yaml": SIEBEL_OBJECTS_TEST}
    return make_mapping_project(tmp_path, {"m/x": mapping}, files)


def test_siebel_object_mappings_are_checked_in_each_sample_s_own_names(tmp_path: Path) -> None:
    """A `siebel:` mapping's samples run through the rules of their own object and naming style."""
    project = siebel_project(tmp_path, SIEBEL_OBJECTS)
    assert check_mappings(project) == ([], [])
    [report] = project_coverage(project)
    assert report.mapped == [
        "ListOfOtherThing/ThingHeader/ListOfThingLine/ThingLine/ProductId",
        "ListOfOtherThing/ThingHeader/OrderNumber",
        "ListOfThing Entry (Sales)/Thing Entry/ListOfLine Item/Line Item/Product Id",
        "ListOfThing Entry (Sales)/Thing Entry/Order Number",
    ]
    assert report.unmapped == ["IntObjectName"]


def test_siebel_object_mapping_findings(tmp_path: Path) -> None:
    """Targets and sources of a `siebel:` mapping are checked like any rule mapping's."""
    text = SIEBEL_OBJECTS.replace("kind: {value: a}", "kind: {value: z}").replace("Product Id", "Product ID")
    errors, warnings = check_mappings(siebel_project(tmp_path, text))
    assert [e.split(": ")[:2] for e in errors] == [["transforms/m/x.yaml:9", "rules.kind.value"]]
    assert [w.split(": ")[:3] for w in warnings] == [
        ["transforms/m/x.yaml:13", "warning", "rules.line.rules.sku.from"]
    ]
