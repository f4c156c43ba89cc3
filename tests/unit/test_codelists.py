"""The project's code lists: every mapping lands on a canonical value, round trips, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from esb.exceptions import ConfigError
from esb.model.codelists import CodeLists, UnknownCode, load_codelists, parse_codelists
from esb.model.money import MINOR_UNITS
from esb.model.states import MACHINES

ROOT = Path(__file__).resolve().parents[2]
LISTS = load_codelists(ROOT)
PAIRS = [(name, system) for name, cl in sorted(LISTS.lists.items()) for system in sorted(cl.systems)]

#: code lists whose canonical values are exactly a state machine's states
STATE_LISTS = {
    "product_order_state": "product_order",
    "subscriber_status": "subscriber",
    "trouble_ticket_status": "trouble_ticket",
}


def test_expected_lists_exist() -> None:
    """The lists the transforms rely on are all defined."""
    expected = {"order_item_action", "product_order_state", "subscriber_status", "number_status",
                "id_document_type", "trouble_ticket_severity", "trouble_ticket_status", "channel_type",
                "currency"}  # fmt: skip
    assert expected <= set(LISTS.lists)


@pytest.mark.parametrize(("name", "system"), PAIRS, ids=[f"{n}-{s}" for n, s in PAIRS])
def test_every_code_maps_onto_a_canonical_value(name: str, system: str) -> None:
    """Every system code of every list maps to one of the list's canonical values."""
    cl = LISTS.get(name)
    for code in cl.systems[system]:
        assert cl.to_canonical(system, code) in cl.canonical


@pytest.mark.parametrize(("name", "system"), PAIRS, ids=[f"{n}-{s}" for n, s in PAIRS])
def test_round_trips(name: str, system: str) -> None:
    """canonical -> code -> canonical is the identity; code -> canonical -> code gives a synonym."""
    cl = LISTS.get(name)
    for value in set(cl.systems[system].values()):
        assert cl.to_canonical(system, cl.from_canonical(system, value)) == value
    for code in cl.systems[system]:
        preferred = cl.from_canonical(system, cl.to_canonical(system, code))
        assert cl.to_canonical(system, preferred) == cl.to_canonical(system, code)


@pytest.mark.parametrize("name", sorted(LISTS.lists))
def test_internal_systems_cover_every_canonical_value(name: str) -> None:
    """Siebel and the Chinese names have a code for every canonical value (nothing stranded outbound)."""
    cl = LISTS.get(name)
    for system in {"siebel", "zh"} & set(cl.systems):
        assert set(cl.systems[system].values()) == set(cl.canonical), f"{name}.{system}"


@pytest.mark.parametrize(("list_name", "machine"), sorted(STATE_LISTS.items()))
def test_state_lists_match_state_machines(list_name: str, machine: str) -> None:
    """A state code list has exactly the states of its canonical state machine."""
    assert set(LISTS.get(list_name).canonical) == set(MACHINES[machine].states)


def test_currency_list_is_iso_4217_with_minor_units() -> None:
    """Every canonical currency is known to Money (so its minor unit is defined)."""
    assert set(LISTS.get("currency").canonical) <= set(MINOR_UNITS)
    assert LISTS.to_canonical("currency", "billing", 156) == "CNY"
    assert LISTS.to_canonical("currency", "legacy", "RMB") == "CNY"


@pytest.mark.parametrize(
    ("name", "system", "code", "canonical"),
    [
        pytest.param("subscriber_status", "zh", "停机", "suspended", id="停机"),
        pytest.param("subscriber_status", "zh", "欠费停机", "stopped", id="欠费停机"),
        pytest.param("subscriber_status", "zh", "销号", "terminated", id="销号"),
        pytest.param("subscriber_status", "zh", "在用", "active", id="在用"),
        pytest.param("number_status", "rim", "G", "free", id="G-free"),
        pytest.param("number_status", "rim", "O", "preReserved", id="O-预占"),
        pytest.param("number_status", "zh", "预占", "preReserved", id="预占"),
        pytest.param("id_document_type", "zh", "身份证", "residentIdCard", id="身份证"),
        pytest.param("id_document_type", "zh", "户口簿", "householdRegister", id="户口簿"),
        pytest.param("id_document_type", "zh", "护照", "passport", id="护照"),
        pytest.param("product_order_state", "siebel", "Complete", "completed", id="siebel-complete"),
        pytest.param("product_order_state", "zh", "已竣工", "completed", id="已竣工"),
        pytest.param("channel_type", "zh", "10000号", "hotline", id="10000号"),
        pytest.param("trouble_ticket_severity", "fault112", "1", "critical", id="112-critical"),
    ],
)
def test_known_codes(name: str, system: str, code: str, canonical: str) -> None:
    """Siebel, BSS and Chinese codes resolve to their canonical values."""
    assert LISTS.to_canonical(name, system, code) == canonical


def test_outbound_uses_first_listed_code() -> None:
    """A canonical value with synonyms goes out as the first code listed (在用, not 正常)."""
    assert LISTS.from_canonical("subscriber_status", "zh", "active") == "在用"
    assert LISTS.from_canonical("subscriber_status", "bss", "stopped") == "13"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(("product_order_state", "siebel", "Completed"), "did you mean 'Complete'", id="code"),
        pytest.param(
            ("product_order_stat", "siebel", "Open"), "did you mean 'product_order_state'", id="list"
        ),
        pytest.param(("product_order_state", "sieble", "Open"), "did you mean 'siebel'", id="system"),
        pytest.param(("subscriber_status", "zh", "停 机X"), "known: ", id="chinese-unknown"),
    ],
)
def test_unknown_code_errors_with_suggestion(call: tuple[str, str, str], message: str) -> None:
    """An unknown list, system or code is an error with a suggestion and the known codes."""
    with pytest.raises(UnknownCode, match=message):
        LISTS.to_canonical(*call)


def test_unknown_canonical_value_outbound_is_an_error() -> None:
    """Sending a value the list does not know is refused, never passed through."""
    with pytest.raises(UnknownCode, match="has no siebel code"):
        LISTS.from_canonical("product_order_state", "siebel", "done")


def test_mapping_to_non_canonical_value_is_a_config_error() -> None:
    """A list mapping a code to a value outside its canonical list is refused at load."""
    with pytest.raises(ConfigError, match="non-canonical"):
        parse_codelists({"x": {"canonical": ["a"], "systems": {"s": {"A": "b"}}}}, "codelists.yaml")


def test_missing_file_gives_empty_lists(tmp_path: Path) -> None:
    """A project without codelists.yaml has no lists (and says so on lookup)."""
    lists: CodeLists = load_codelists(tmp_path)
    with pytest.raises(UnknownCode, match="no code list"):
        lists.get("currency")
