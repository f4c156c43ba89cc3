"""The cell syntax of decision tables and how values are read with their column's type."""

from __future__ import annotations

from typing import Any

import pytest

from esb.decision.cells import CellError, coerce, parse_cell


@pytest.mark.parametrize(
    ("text", "kind", "value", "matches"),
    [
        pytest.param("-", "string", "anything", True, id="dash-is-a-wildcard"),
        pytest.param("", "integer", 7, True, id="empty-is-a-wildcard"),
        pytest.param("-", "string", None, True, id="wildcard-matches-a-missing-value"),
        pytest.param("hz", "string", None, False, id="a-value-does-not-match-a-missing-value"),
        pytest.param("hz", "string", "hz", True, id="equal"),
        pytest.param("hz", "string", "nb", False, id="not-equal"),
        pytest.param("hz, nb,wz", "string", "nb", True, id="list"),
        pytest.param('"a, b", c', "string", "a, b", True, id="quoted-item-keeps-its-comma"),
        pytest.param("[1..5]", "integer", 5, True, id="range-includes-its-ends"),
        pytest.param("(1..5)", "integer", 5, False, id="round-bracket-leaves-the-end-out"),
        pytest.param("]1..5[", "integer", 1, False, id="outward-bracket-leaves-the-end-out"),
        pytest.param("[1..5)", "number", 4.99, True, id="mixed-brackets"),
        pytest.param(">=3", "integer", 3, True, id="at-least"),
        pytest.param(">3", "integer", 3, False, id="above"),
        pytest.param("<2.5", "number", 2.4, True, id="below"),
        pytest.param("1, [3..5], >9", "integer", 10, True, id="list-of-values-ranges-comparisons"),
        pytest.param("1, [3..5], >9", "integer", 2, False, id="list-misses-between"),
        pytest.param("true", "boolean", True, True, id="boolean"),
    ],
)
def test_cell_matches(text: str, kind: str, value: Any, matches: bool) -> None:
    """Each form of cell admits exactly the values it says."""
    read = None if value is None else coerce(value, kind)
    assert parse_cell(text, kind).matches(read) is matches


def test_an_unquoted_yaml_range_is_explained() -> None:
    """[1..5] unquoted in YAML is a one-item list: the error says to quote it."""
    with pytest.raises(
        CellError, match=r"YAML read \[1\.\.5\] as a list: quote a range in YAML \('\[1\.\.5\]'\)"
    ):
        parse_cell(["1..5"], "integer")


def test_yaml_scalars_and_lists_are_cells() -> None:
    """A YAML number, boolean or list in a cell is read like its text form."""
    assert parse_cell(3, "integer").matches(3)
    assert parse_cell(["hz", "nb"], "string").matches("nb")
    assert parse_cell(None, "string").any


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        pytest.param(
            "[1..5]", "string", "ranges and comparisons are for integer and number", id="range-on-string"
        ),
        pytest.param(">=x", "integer", "expected a number, got 'x'", id="comparison-not-a-number"),
        pytest.param("[5..1]", "integer", "is empty", id="reversed-range"),
        pytest.param("[1..5", "integer", "cannot read range", id="unclosed-range"),
        pytest.param("abc", "integer", "expected an integer, got 'abc'", id="not-an-integer"),
        pytest.param("2.5", "integer", "expected an integer, got '2.5'", id="fraction-for-integer"),
        pytest.param("maybe", "boolean", "expected a boolean", id="not-a-boolean"),
    ],
)
def test_bad_cells_say_what_was_expected(text: str, kind: str, message: str) -> None:
    """A cell that does not fit its column's type or the syntax is refused with what was expected."""
    with pytest.raises(CellError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse_cell(text, kind)


@pytest.mark.parametrize(
    ("value", "kind", "read"),
    [
        pytest.param("3", "integer", 3, id="digits-as-integer"),
        pytest.param(3.0, "integer", 3, id="whole-float-as-integer"),
        pytest.param("2.50", "number", 2.5, id="text-as-number"),
        pytest.param(110, "string", "110", id="integer-as-string"),
        pytest.param("False", "boolean", False, id="text-as-boolean"),
    ],
)
def test_inputs_are_read_with_their_type(value: Any, kind: str, read: Any) -> None:
    """Values from messages (often text from XML) are read as the column's type."""
    assert coerce(value, kind) == read


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param(True, "integer", id="boolean-is-not-an-integer"),
        pytest.param(float("nan"), "number", id="nan"),
        pytest.param({"a": 1}, "string", id="object-as-string"),
        pytest.param(1.5, "string", id="float-as-string"),
    ],
)
def test_values_of_another_type_are_refused(value: Any, kind: str) -> None:
    """A value that is not of the column's type is an error naming what came."""
    with pytest.raises(CellError, match=f"expected an? {kind}, got"):
        coerce(value, kind)
