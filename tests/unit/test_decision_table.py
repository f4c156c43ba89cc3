"""Decision tables: loading from YAML and CSV with file:line errors, hit policies, index against a scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from esb.decision.cells import parse_cell
from esb.decision.registry import TableRegistry
from esb.decision.table import Column, Rule, Table
from esb.exceptions import ConfigError, DecisionError

SIMPLE_INPUTS = [{"name": "region", "type": "string"}, {"name": "amount", "type": "number"}]


def write_table(root: Path, name: str, spec: dict[str, Any], csv: str | None = None) -> Table:
    """Write ``transforms/tables/<name>.yaml`` (and its CSV) under ``root`` and load it."""
    folder = root / "transforms" / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    if csv is not None:
        (folder / f"{name}.csv").write_text(csv, encoding="utf-8")
    return TableRegistry(root).get(name)


def table(
    policy: str, rules: list[Any], outputs: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    """A table declaration over region (string) and amount (number)."""
    return {
        "hit_policy": policy,
        **extra,
        "inputs": SIMPLE_INPUTS,
        "outputs": outputs or [{"name": "team", "type": "string"}],
        "rules": rules,
    }


def test_first_takes_the_first_matching_rule_in_order(tmp_path: Path) -> None:
    """Under first, the earliest matching rule decides, and the decision names its file:line."""
    t = write_table(tmp_path, "t", table("first", [["hz", "[1..5]", "a"], ["hz", "-", "b"], ["-", "-", "c"]]))
    decision = t.decide({"region": "hz", "amount": 3})
    assert decision.value == {"team": "a"}
    assert [r.where for r in decision.rules] == ["transforms/tables/t.yaml:11"]
    assert t.decide({"region": "hz", "amount": "9"}).value == {"team": "b"}
    assert t.decide({"region": "nb"}).value == {"team": "c"}


def test_rules_by_column_name_leave_out_wildcards(tmp_path: Path) -> None:
    """A rule written as a mapping by column treats a left-out input as '-'."""
    t = write_table(tmp_path, "t", table("first", [{"region": "hz", "team": "a"}, {"team": "z"}]))
    assert t.decide({"region": "hz", "amount": 1000}).value == {"team": "a"}
    assert t.decide({"region": "sx", "amount": 1}).value == {"team": "z"}


def test_no_match_is_no_decision(tmp_path: Path) -> None:
    """When no rule matches under first or unique, the decision is null."""
    t = write_table(tmp_path, "t", table("unique", [["hz", ">=10", "a"]]))
    assert t.decide({"region": "hz", "amount": 9}).value is None


def test_unique_refuses_two_matching_rules(tmp_path: Path) -> None:
    """Under unique, an input two rules match is a DecisionError naming both rules and their lines."""
    t = write_table(tmp_path, "t", table("unique", [["hz", "[1..5]", "a"], ["hz", ">=5", "b"]]))
    assert t.decide({"region": "hz", "amount": 4}).value == {"team": "a"}
    with pytest.raises(
        DecisionError,
        match=r"2 rules match .*rule 1 \(transforms/tables/t\.yaml:11\); "
        r"rule 2 \(transforms/tables/t\.yaml:14\)",
    ):
        t.decide({"region": "hz", "amount": 5})


def test_priority_picks_the_highest_ranked_output(tmp_path: Path) -> None:
    """Under priority, the matching rule whose output comes first in the output's values wins."""
    outputs = [{"name": "level", "type": "string", "values": ["gold", "silver", "bronze"]}]
    rules = [["-", "-", "bronze"], ["hz", "-", "gold"], ["-", ">=100", "silver"]]
    t = write_table(tmp_path, "t", table("priority", rules, outputs))
    assert t.decide({"region": "hz", "amount": 500}).value == {"level": "gold"}
    assert t.decide({"region": "nb", "amount": 500}).value == {"level": "silver"}
    assert t.decide({"region": "nb", "amount": 5}).value == {"level": "bronze"}


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        pytest.param(None, [{"fee": 5}, {"fee": 20}, {"fee": 1}], id="list-in-rule-order"),
        pytest.param("sum", 26, id="sum"),
        pytest.param("min", 1, id="min"),
        pytest.param("max", 20, id="max"),
        pytest.param("count", 3, id="count"),
    ],
)
def test_collect_and_its_aggregations(tmp_path: Path, aggregation: str | None, expected: Any) -> None:
    """Collect gathers every matching rule's outputs in rule order, or aggregates the one output."""
    extra = {} if aggregation is None else {"aggregation": aggregation}
    rules = [["hz", "-", 5], ["-", ">10", 20], ["nb", "-", 99], ["-", "-", 1]]
    t = write_table(tmp_path, "t", table("collect", rules, [{"name": "fee", "type": "integer"}], **extra))
    assert t.decide({"region": "hz", "amount": 11}).value == expected


def test_collect_with_no_match(tmp_path: Path) -> None:
    """Collect with nothing matching is an empty list, a count of 0 and a sum of 0."""
    rules = [["hz", "-", 5]]
    assert (
        write_table(tmp_path, "a", table("collect", rules, [{"name": "fee", "type": "integer"}]))
        .decide({"region": "nb"})
        .value
        == []
    )
    counted = table("collect", rules, [{"name": "fee", "type": "integer"}], aggregation="count")
    assert write_table(tmp_path, "b", counted).decide({"region": "nb"}).value == 0


def test_bad_inputs_are_refused_with_what_was_expected(tmp_path: Path) -> None:
    """An unknown input name or a value of the wrong type is a DecisionError saying what was expected."""
    t = write_table(tmp_path, "t", table("first", [["-", "-", "a"]]))
    with pytest.raises(DecisionError, match=r"unknown input.*regoin; the inputs are region, amount"):
        t.decide({"regoin": "hz"})
    with pytest.raises(DecisionError, match="input 'amount': expected a number, got 'lots'"):
        t.decide({"region": "hz", "amount": "lots"})
    with pytest.raises(DecisionError, match="expected the inputs as an object, got list"):
        t.decide(["hz"])  # type: ignore[arg-type]


def test_csv_rules_with_comments_and_quoted_lists(tmp_path: Path) -> None:
    """Rules may live in a CSV file beside the table: a header row, # comments, quoted lists."""
    csv = 'region,amount,team\n# the big cities\n"hz, nb",>=10,big\n-,-,rest\n'
    t = write_table(tmp_path, "t", table("first", "t.csv"), csv)  # type: ignore[arg-type]
    decision = t.decide({"region": "nb", "amount": 10})
    assert decision.value == {"team": "big"}
    assert decision.rules[0].where == "transforms/tables/t.csv:3"


@pytest.mark.parametrize(
    ("csv", "finding"),
    [
        pytest.param(
            "region,amount,teem\n",
            "t.csv:1: header: unknown column 'teem' (did you mean 'team'?)",
            id="misspelt-header",
        ),
        pytest.param(
            "region,amount,team\nhz,[1..x],a\n",
            "t.csv:2: rule 1: input amount: expected a number",
            id="bad-range",
        ),
        pytest.param(
            "region,amount,team\nhz,1\n",
            "t.csv:2: expected 3 cells (region, amount, team), got 2",
            id="short-row",
        ),
        pytest.param("", "t.csv:1: empty: a header row naming region, amount, team", id="empty"),
    ],
)
def test_csv_mistakes_are_findings_with_file_and_line(tmp_path: Path, csv: str, finding: str) -> None:
    """A broken CSV row is a ConfigError finding at the CSV file's line."""
    with pytest.raises(ConfigError) as caught:
        write_table(tmp_path, "t", table("first", "t.csv"), csv)  # type: ignore[arg-type]
    assert any(finding in f for f in caught.value.findings), caught.value.findings


@pytest.mark.parametrize(
    ("spec", "finding"),
    [
        pytest.param(
            table("firts", [["-", "-", "a"]]),
            "t.yaml:1: hit_policy: unknown hit policy 'firts'",
            id="hit-policy",
        ),
        pytest.param(
            table("first", [["-", "-", "a"]], aggregation="sum"),
            "aggregation is for hit_policy collect, not first",
            id="aggregation-without-collect",
        ),
        pytest.param(
            table("collect", [["-", "-", "a"]], aggregation="sum"),
            "sum needs an integer or number output, not string",
            id="sum-of-strings",
        ),
        pytest.param(table("first", [["-", "-"]]), "t.yaml:11: rules[0]: expected 3 cells", id="short-row"),
        pytest.param(
            table("first", [["-", "-", "a"]], [{"name": "team", "type": "text"}]),
            "unknown type 'text'",
            id="type",
        ),
        pytest.param(
            {**table("first", [["-", "-", "a"]]), "hitpolicy": "x"},
            "unknown key 'hitpolicy' (did you mean 'hit_policy'?)",
            id="unknown-key",
        ),
        pytest.param(
            table("first", [{"regoin": "hz", "team": "a"}]),
            "rule 1: unknown column 'regoin' (did you mean 'region'?)",
            id="unknown-column",
        ),
        pytest.param(
            table("first", [["-", "-", "a"]], [{"name": "team", "type": "string", "values": "a, b"}]),
            "values: a list of the allowed values, got 'a, b'",
            id="values-not-a-list",
        ),
        pytest.param(
            table("first", [["-", "-", "a"]], [{"name": "n", "type": "integer"}]),
            "rule 1: output n: expected an integer, got 'a'",
            id="output-type",
        ),
    ],
)
def test_yaml_mistakes_are_findings_with_file_and_line(
    tmp_path: Path, spec: dict[str, Any], finding: str
) -> None:
    """A broken declaration or inline rule is a ConfigError finding at its YAML line."""
    with pytest.raises(ConfigError) as caught:
        write_table(tmp_path, "t", spec)
    assert any(finding in f for f in caught.value.findings), caught.value.findings


def test_unknown_table_suggests_the_close_one(tmp_path: Path) -> None:
    """Asking for a table that does not exist names the close one and where tables live."""
    write_table(tmp_path, "dispatch", table("first", [["-", "-", "a"]]))
    with pytest.raises(ConfigError, match=r"unknown decision table 'dispach' \(did you mean 'dispatch'\?\)"):
        TableRegistry(tmp_path).get("dispach")


REGIONS = ["hz", "nb", "wz"]
STRING_CELLS = st.sampled_from(["-", "hz", "nb", "hz, wz", "nb, wz, hz"])
NUMBER_CELLS = st.sampled_from(
    ["-", "3", "[1..5]", "(1..5)", "]2..4]", ">=4", ">4", "<2", "<=2", "1, [6..8)", "2, >7"]
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(STRING_CELLS, NUMBER_CELLS), min_size=1, max_size=25),
    policy=st.sampled_from(["first", "collect", "priority"]),
    probes=st.lists(
        st.tuples(
            st.sampled_from([*REGIONS, "sx", None]),
            st.one_of(st.none(), st.integers(0, 9), st.sampled_from([1.5, 4.5, 5.0, 7.99])),
        ),
        min_size=1,
        max_size=10,
    ),
)
def test_the_index_agrees_with_a_scan(
    rows: list[tuple[str, str]], policy: str, probes: list[tuple[str | None, Any]]
) -> None:
    """For any rules and any input, the index finds exactly the rules a scan of every cell finds."""
    rules = tuple(
        Rule(i + 1, (parse_cell(r, "string"), parse_cell(a, "number")), {"n": i}, f"t:{i}")
        for i, (r, a) in enumerate(rows)
    )
    inputs = (Column("region", "string"), Column("amount", "number"))
    t = Table("t", "t", inputs, (Column("n", "integer", values=tuple(range(25))[::-1]),), rules, policy)
    for region, amount in probes:
        data = {"region": region, "amount": amount}
        expected = [
            i
            for i, rule in enumerate(rules)
            if all(c.matches(v) for c, v in zip(rule.cells, t.read_inputs(data), strict=True))
        ]
        assert [i for i in range(len(rules)) if t.matches(data) >> i & 1] == expected
        assert t.decide(data).value == t.decide(data, indexed=False).value
