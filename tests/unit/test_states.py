"""The canonical state machines: tables consistent with the schemas, forbidden moves refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esb.exceptions import StateTransitionError
from esb.model.states import MACHINES, allowed, can_transition, check_transition, next_states

ROOT = Path(__file__).resolve().parents[2]
STATES_SCHEMA = ROOT / "canonical_model" / "common" / "states.v1.schema.json"


def _schema_defs() -> dict[str, dict[str, object]]:
    if not STATES_SCHEMA.exists():
        pytest.skip(f"{STATES_SCHEMA} is not written yet (the schemas contributor owns it)")
    defs: dict[str, dict[str, object]] = json.loads(STATES_SCHEMA.read_text(encoding="utf-8"))["$defs"]
    return defs


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_machine_states_equal_schema_enum(name: str) -> None:
    """Each machine has exactly the states its canonical schema enumeration lists."""
    m = MACHINES[name]
    assert m.schema_def, f"{name} names no schema enumeration"
    enum = _schema_defs()[m.schema_def]["enum"]
    assert set(m.states) == set(enum)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_machine_table_is_closed_and_reachable(name: str) -> None:
    """Every target is a known state, every state is reachable from an initial state."""
    m = MACHINES[name]
    assert m.initial <= set(m.states)
    for targets in m.transitions.values():
        assert targets <= set(m.states)
    seen, todo = set(m.initial), list(m.initial)
    while todo:
        for nxt in m.transitions[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(m.states)
    assert m.final, f"{name} has no final state"


@pytest.mark.parametrize(
    ("machine", "source", "target"),
    [
        pytest.param("product_order", "acknowledged", "inProgress", id="order-start"),
        pytest.param("product_order", "inProgress", "completed", id="order-complete"),
        pytest.param("product_order", "inProgress", "partial", id="order-partial"),
        pytest.param("product_order", "assessingCancellation", "pendingCancellation", id="order-cancel"),
        pytest.param("product_order_item", "held", "inProgress", id="item-resume"),
        pytest.param("trouble_ticket", "resolved", "inProgress", id="ticket-reopen"),
        pytest.param("trouble_ticket", "resolved", "closed", id="ticket-close"),
        pytest.param("reservation", "completed", "expired", id="reservation-expire"),
        pytest.param("customer_bill", "sent", "partiallyPaid", id="bill-part-paid"),
        pytest.param("subscriber", "stopped", "active", id="subscriber-reconnect-after-payment"),
        pytest.param("work_order", "inProgress", "completed", id="work-order-done"),
    ],
)
def test_allowed_transitions_pass(machine: str, source: str, target: str) -> None:
    """An allowed move returns quietly and is reported as possible."""
    check_transition(machine, source, target)
    assert can_transition(machine, source, target)
    assert target in allowed(machine, source)


@pytest.mark.parametrize(
    ("machine", "source", "target"),
    [
        pytest.param("product_order", "completed", "inProgress", id="completed-is-final"),
        pytest.param("product_order", "cancelled", "acknowledged", id="cancelled-is-final"),
        pytest.param("product_order", "inProgress", "cancelled", id="cancel-needs-assessment"),
        pytest.param("product_order_item", "completed", "inProgress", id="item-completed-is-final"),
        pytest.param("trouble_ticket", "closed", "inProgress", id="closed-ticket"),
        pytest.param("subscriber", "terminated", "active", id="closed-number-stays-closed"),
        pytest.param("customer_bill", "settled", "sent", id="settled-bill"),
        pytest.param("reservation", "released", "completed", id="released-reservation"),
    ],
)
def test_forbidden_transitions_raise(machine: str, source: str, target: str) -> None:
    """A forbidden move raises StateTransitionError naming both states."""
    with pytest.raises(StateTransitionError, match=f"{source}.*{target}"):
        check_transition(machine, source, target)
    assert not can_transition(machine, source, target)


def test_error_lists_allowed_next_states() -> None:
    """The error message names the states the entity may move to."""
    with pytest.raises(StateTransitionError) as info:
        check_transition("product_order", "pending", "completed")
    assert "allowed next states: assessingCancellation, held, inProgress" in str(info.value)


def test_final_state_error_says_final() -> None:
    """Leaving a final state says the state is final."""
    with pytest.raises(StateTransitionError, match="'completed' is a final state"):
        check_transition("product_order", "completed", "inProgress")


def test_same_state_is_idempotent_unless_forbidden() -> None:
    """A repeated status update passes; with allow_same=False it is refused."""
    check_transition("product_order", "completed", "completed")
    with pytest.raises(StateTransitionError):
        check_transition("product_order", "completed", "completed", allow_same=False)


def test_creation_must_use_an_initial_state() -> None:
    """A new entity (no previous state) may only start in an initial state."""
    check_transition("product_order", None, "acknowledged")
    with pytest.raises(StateTransitionError, match="initial states: acknowledged"):
        check_transition("product_order", None, "completed")


@pytest.mark.parametrize(
    ("machine", "state", "hint"),
    [
        pytest.param("product_ordr", "acknowledged", "did you mean 'product_order'", id="machine"),
        pytest.param("product_order", "InProgres", "did you mean 'inProgress'", id="state"),
    ],
)
def test_unknown_names_raise_with_suggestion(machine: str, state: str, hint: str) -> None:
    """An unknown machine or state is an error with a suggestion, never a pass."""
    with pytest.raises(StateTransitionError, match=hint):
        check_transition(machine, state, "completed")
    assert not can_transition(machine, state, "completed")


def test_next_states_is_a_sorted_list() -> None:
    """The JMESPath-friendly form returns a sorted JSON list."""
    assert next_states("trouble_ticket", "resolved") == ["closed", "inProgress"]


def test_item_has_no_partial_state() -> None:
    """An order item is never partial: the state is unknown to the item machine."""
    with pytest.raises(StateTransitionError, match="unknown state 'partial'"):
        check_transition("product_order_item", "inProgress", "partial")
