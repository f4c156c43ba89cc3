"""The canonical state machines, written down in one place and enforced by :func:`check_transition`.

Each :class:`Machine` lists its states (in the order of the TM Forum enumeration it follows), the states
an entity may be created in, and, for each state, the states it may move to. A route step or a transform
calls ``check_transition("product_order", "completed", "inProgress")`` and gets a
:class:`~esb.exceptions.StateTransitionError` naming the allowed next states; nothing is guessed.

Rules common to every machine:

- moving to the state one is already in is allowed (at-least-once delivery repeats status updates);
  pass ``allow_same=False`` to forbid it;
- a final state (no outgoing transition) is final: a completed order never goes back to inProgress;
- an unknown machine or state is an error with a suggestion, never a pass.

:func:`can_transition` and :func:`next_states` are the plain-value forms for the transforms' JMESPath
function library (they return values instead of raising).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from esb.exceptions import StateTransitionError
from esb.registry import did_you_mean


@dataclass(frozen=True)
class Machine:
    """One state machine: its states, initial states and allowed transitions."""

    name: str
    description: str
    standard: str
    states: tuple[str, ...]
    initial: frozenset[str]
    transitions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: the ``$defs`` name in ``canonical_model/common/states.v1.schema.json`` whose enum equals ``states``
    schema_def: str | None = None

    @property
    def final(self) -> frozenset[str]:
        """States with no way out."""
        return frozenset(s for s in self.states if not self.transitions.get(s))

    def allowed(self, state: str) -> frozenset[str]:
        """Return the states ``state`` may move to (an unknown state is an error)."""
        self._known(state)
        return self.transitions.get(state, frozenset())

    def _known(self, state: str) -> None:
        if state not in self.states:
            raise StateTransitionError(
                f"{self.name}: unknown state {state!r}{did_you_mean(state, self.states)}; "
                f"states: {', '.join(self.states)}"
            )


def _machine(
    name: str,
    description: str,
    standard: str,
    initial: set[str],
    table: dict[str, set[str]],
    schema_def: str | None = None,
) -> Machine:
    return Machine(
        name=name,
        description=description,
        standard=standard,
        states=tuple(table),
        initial=frozenset(initial),
        transitions={s: frozenset(n) for s, n in table.items()},
        schema_def=schema_def,
    )


_CANCEL = {"assessingCancellation"}

#: TMF622 order lifecycle; cancellation goes assessingCancellation -> pendingCancellation -> cancelled.
_ORDER: dict[str, set[str]] = {
    "acknowledged": {"rejected", "pending", "held", "inProgress"} | _CANCEL,
    "rejected": set(),
    "pending": {"inProgress", "held"} | _CANCEL,
    "held": {"inProgress", "pending"} | _CANCEL,
    "inProgress": {"pending", "held", "completed", "failed", "partial"} | _CANCEL,
    "cancelled": set(),
    "completed": set(),
    "failed": set(),
    "partial": set(),
    "assessingCancellation": {"pendingCancellation", "inProgress", "pending", "held"},
    "pendingCancellation": {"cancelled"},
}
#: An order item: the order's lifecycle without ``partial`` (only a whole order is partial).
_ITEM = {s: nxt - {"partial"} for s, nxt in _ORDER.items() if s != "partial"}

#: TMF641 as in the SID schemas: no cancellation sub-states, a cancel request cancels directly.
_SERVICE_ORDER: dict[str, set[str]] = {
    "acknowledged": {"rejected", "pending", "held", "inProgress", "cancelled"},
    "rejected": set(),
    "pending": {"inProgress", "held", "cancelled"},
    "held": {"inProgress", "pending", "cancelled"},
    "inProgress": {"pending", "held", "completed", "failed", "partial", "cancelled"},
    "cancelled": set(),
    "completed": set(),
    "failed": set(),
    "partial": set(),
}
_SERVICE_ITEM = {s: nxt - {"partial"} for s, nxt in _SERVICE_ORDER.items() if s != "partial"}

PRODUCT_ORDER = _machine(
    "product_order",
    "Product order (CRM order to the BSS)",
    "TMF622 ProductOrderStateType",
    {"acknowledged"},
    _ORDER,
    "productOrderState",
)
PRODUCT_ORDER_ITEM = _machine(
    "product_order_item",
    "Product order item (no partial)",
    "TMF622 ProductOrderItemStateType",
    {"acknowledged"},
    _ITEM,
    "productOrderItemState",
)
SERVICE_ORDER = _machine(
    "service_order",
    "Service order (IOM to OSS activation)",
    "TMF641 ServiceOrderStateType",
    {"acknowledged"},
    _SERVICE_ORDER,
    "serviceOrderState",
)
SERVICE_ORDER_ITEM = _machine(
    "service_order_item",
    "Service order item (no partial)",
    "TMF641 ServiceOrderItemStateType",
    {"acknowledged"},
    _SERVICE_ITEM,
    "serviceOrderItemState",
)
WORK_ORDER = _machine(
    "work_order",
    "Work order (装维 field installation and repair)",
    "TMF697 WorkOrderStateType",
    {"acknowledged"},
    _ORDER,
    "workOrderState",
)

#: TMF621 (112 faults, 10000 hotline complaints): resolved is confirmed (closed) or reopened (inProgress).
TROUBLE_TICKET = _machine(
    "trouble_ticket",
    "Trouble ticket (112 fault, 10000 complaint)",
    "TMF621 TroubleTicketStatusType",
    {"acknowledged"},
    {
        "acknowledged": {"rejected", "pending", "held", "inProgress", "cancelled"},
        "rejected": set(),
        "pending": {"inProgress", "held", "cancelled"},
        "held": {"inProgress", "pending", "cancelled"},
        "inProgress": {"pending", "held", "resolved", "cancelled"},
        "cancelled": set(),
        "resolved": {"closed", "inProgress"},
        "closed": set(),
    },
    "troubleTicketStatus",
)

#: TMF685 reservation of numbers and ports (RIM 预占): completed means the resources are held; they end
#: released (after use or abandon, 释放) or expired (超时释放).
RESERVATION = _machine(
    "reservation",
    "Resource reservation (MSISDN 预占, port)",
    "TMF685 reservationState",
    {"inProgress", "completed", "partial", "rejected"},
    {
        "inProgress": {"completed", "partial", "rejected", "cancelled"},
        "completed": {"released", "expired", "cancelled"},
        "partial": {"completed", "released", "expired", "cancelled"},
        "rejected": set(),
        "cancelled": set(),
        "released": set(),
        "expired": set(),
    },
    "reservationState",
)

CUSTOMER_BILL = _machine(
    "customer_bill",
    "Customer bill",
    "TMF678 CustomerBillStateType",
    {"new"},
    {
        "new": {"onHold", "validated", "sent"},
        "onHold": {"new", "validated", "sent"},
        "validated": {"onHold", "sent"},
        "sent": {"onHold", "partiallyPaid", "settled"},
        "settled": set(),
        "partiallyPaid": {"onHold", "settled"},
    },
    "customerBillState",
)

#: The subscriber (用户) in the BSS: 待激活, 在用, 停机 on request (suspended) or for arrears (stopped,
#: 欠费停机; paying restores it, 复机), 销号 (terminated, final: the number goes back to the pool).
SUBSCRIBER = _machine(
    "subscriber",
    "Subscriber (用户): 待激活, 在用, 停机 (request / arrears), 销号",
    "BSS subscriber status",
    {"preActive", "active"},
    {
        "preActive": {"active", "terminated"},
        "active": {"suspended", "stopped", "terminated"},
        "suspended": {"active", "stopped", "terminated"},
        "stopped": {"active", "suspended", "terminated"},
        "terminated": set(),
    },
    "subscriberStatus",
)

#: TMF638 service lifecycle (suspended is the operator's 停机 of the service).
SERVICE = _machine(
    "service",
    "Service (CFS/RFS instance in the inventory)",
    "TMF638 ServiceStateType",
    {"feasibilityChecked", "designed", "reserved", "inactive", "active"},
    {
        "feasibilityChecked": {"designed", "reserved", "terminated"},
        "designed": {"reserved", "inactive", "active", "terminated"},
        "reserved": {"inactive", "active", "terminated"},
        "inactive": {"active", "terminated"},
        "active": {"inactive", "suspended", "terminated"},
        "suspended": {"active", "terminated"},
        "terminated": set(),
    },
    "serviceState",
)

#: TMF637 lifecycle of a subscribed product: created by an order, pendingActive while it is provisioned,
#: active; suspended is the product's 停机; a product migrated from the legacy BSS is first seen active.
PRODUCT = _machine(
    "product",
    "Product (产品实例: the offering a subscriber owns)",
    "TMF637 ProductStatusType",
    {"created", "active"},
    {
        "created": {"pendingActive", "active", "cancelled"},
        "pendingActive": {"active", "aborted", "cancelled"},
        "cancelled": set(),
        "active": {"suspended", "pendingTerminate", "terminated"},
        "pendingTerminate": {"terminated", "active"},
        "terminated": set(),
        "suspended": {"active", "pendingTerminate", "terminated"},
        "aborted": set(),
    },
    "productStatus",
)

APPOINTMENT = _machine(
    "appointment",
    "Appointment (installation visit booked with the customer)",
    "TMF646 AppointmentStateType",
    {"initialized", "confirmed"},
    {
        "initialized": {"confirmed", "cancelled"},
        "confirmed": {"completed", "failed", "cancelled"},
        "cancelled": set(),
        "completed": set(),
        "failed": set(),
    },
    "appointmentState",
)

ACCOUNT = _machine(
    "account",
    "Billing account (账户)",
    "TMF666 account state",
    {"active"},
    {"active": {"suspended", "closed"}, "suspended": {"active", "closed"}, "closed": set()},
    "accountState",
)

PARTY = _machine(
    "party",
    "Individual or organization (客户)",
    "TMF632 IndividualStateType / OrganizationStateType",
    {"initialized", "validated"},
    {
        "initialized": {"validated", "closed", "deceased"},
        "validated": {"closed", "deceased"},
        "closed": set(),
        "deceased": set(),  # TMF632 IndividualStateType spells it "deceaded" (see esb.model.tmf)
    },
    "partyState",
)

#: TMF622 CancelProductOrder (TaskStateType; the SID schema spells acknowledged "accepted").
CANCEL_PRODUCT_ORDER = _machine(
    "cancel_product_order",
    "Request to cancel a product order (撤单)",
    "TMF622 TaskStateType",
    {"acknowledged"},
    {
        "acknowledged": {"inProgress", "terminatedWithError"},
        "inProgress": {"done", "terminatedWithError"},
        "done": set(),
        "terminatedWithError": set(),
    },
    "cancelOrderState",
)

#: Every machine by name.
MACHINES: dict[str, Machine] = {
    m.name: m
    for m in (
        PRODUCT_ORDER,
        PRODUCT_ORDER_ITEM,
        SERVICE_ORDER,
        SERVICE_ORDER_ITEM,
        WORK_ORDER,
        TROUBLE_TICKET,
        RESERVATION,
        CUSTOMER_BILL,
        SUBSCRIBER,
        SERVICE,
        PRODUCT,
        APPOINTMENT,
        ACCOUNT,
        PARTY,
        CANCEL_PRODUCT_ORDER,
    )
}


def machine(name: str) -> Machine:
    """Return the machine called ``name`` (an unknown name is an error with a suggestion)."""
    try:
        return MACHINES[name]
    except KeyError:
        hint, known = did_you_mean(name, list(MACHINES)), ", ".join(MACHINES)
        raise StateTransitionError(f"unknown state machine {name!r}{hint}; known: {known}") from None


def allowed(machine_name: str, state: str) -> set[str]:
    """Return the states ``state`` may move to in machine ``machine_name``."""
    return set(machine(machine_name).allowed(state))


def check_transition(
    machine_name: str, from_state: str | None, to_state: str, *, allow_same: bool = True
) -> None:
    """Raise StateTransitionError unless ``from_state -> to_state`` is allowed.

    ``from_state`` None means the entity is new: ``to_state`` must be one of the machine's initial states.
    """
    m = machine(machine_name)
    m._known(to_state)
    if from_state is None:
        if to_state not in m.initial:
            initial = ", ".join(sorted(m.initial))
            raise StateTransitionError(
                f"{m.name}: cannot be created in state {to_state!r}; initial states: {initial}"
            )
        return
    nxt = m.allowed(from_state)
    if to_state in nxt or (allow_same and to_state == from_state):
        return
    where = f"allowed next states: {', '.join(sorted(nxt))}" if nxt else f"{from_state!r} is a final state"
    raise StateTransitionError(f"{m.name}: transition {from_state!r} -> {to_state!r} is not allowed; {where}")


def can_transition(machine_name: str, from_state: str | None, to_state: str) -> bool:
    """Return whether ``from_state -> to_state`` is allowed (False for unknown states; for JMESPath)."""
    try:
        check_transition(machine_name, from_state, to_state)
    except StateTransitionError:
        return False
    return True


def next_states(machine_name: str, state: str) -> list[str]:
    """Return the sorted allowed next states of ``state`` (a JSON-friendly list, for JMESPath)."""
    return sorted(allowed(machine_name, state))
