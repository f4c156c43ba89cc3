"""The table of canonical entities that have a TM Forum Open API v4 counterpart."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StateField:
    """A state field to normalise on input: ``field`` of the root (``within`` None) or of every object
    found under the key ``within`` at any depth (nested order items); values come from ``machine``."""

    field: str
    machine: str
    within: str | None = None


@dataclass(frozen=True)
class TMFEntity:
    """A canonical entity and its TMF form: API, class name(s), schema file in the SID folder."""

    entity: str
    api: str
    tmf_types: tuple[str, ...]
    #: TMF class name -> "<folder>/<File>.schema.json" in the SID schema folder (None: not published there)
    schema_files: dict[str, str | None]
    states: tuple[StateField, ...] = ()
    #: canonical top-level name -> TMF name, per TMF class (e.g. Individual: name -> fullName)
    renames: dict[str, dict[str, str]] = field(default_factory=dict)
    #: canonical ref field moved into TMF relatedParty with this role (TMF requires relatedParty)
    party_refs: dict[str, str] = field(default_factory=dict)
    #: canonical arrays that TMF holds as one object (TroubleTicket.channel, Resource.place)
    single: tuple[str, ...] = ()

    @property
    def canonical_schema(self) -> str:
        """Schema name of the canonical entity (``product_order.v1``)."""
        return f"{self.entity}.v1"


def _e(entity: str, api: str, files: dict[str, str | None], **kw: object) -> TMFEntity:
    return TMFEntity(entity, api, tuple(files), files, **kw)  # type: ignore[arg-type]


_ORDER_STATES = (
    StateField("state", "product_order"),
    StateField("state", "product_order_item", within="productOrderItem"),
)

ENTITIES: dict[str, TMFEntity] = {
    e.entity: e
    for e in (
        _e("product_order", "TMF622", {"ProductOrder": "Customer/ProductOrder"}, states=_ORDER_STATES),
        _e("customer", "TMF629", {"Customer": "Customer/Customer"}),
        _e(
            "party",
            "TMF632",
            {"Individual": "EngagedParty/Individual", "Organization": "EngagedParty/Organization"},
            states=(StateField("status", "party"),),
            renames={"Individual": {"name": "fullName"}},
        ),
        _e(
            "billing_account",
            "TMF666",
            {"BillingAccount": "Customer/BillingAccount"},
            states=(StateField("state", "account"),),
            party_refs={"customer": "customer"},
        ),
        _e("product", "TMF637", {"Product": "Product/Product"}, states=(StateField("status", "product"),)),
        _e("service", "TMF638", {"Service": "Service/Service"}, states=(StateField("state", "service"),)),
        _e(
            "service_order",
            "TMF641",
            {"ServiceOrder": "Service/ServiceOrder"},
            states=(
                StateField("state", "service_order"),
                StateField("state", "service_order_item", within="serviceOrderItem"),
            ),
        ),
        _e(
            "resource",
            "TMF639",
            {"LogicalResource": "Resource/LogicalResource", "PhysicalResource": "Resource/PhysicalResource"},
            single=("place",),
        ),
        _e(
            "resource_reservation",
            "TMF685",
            {"ResourceReservation": None},
            states=(StateField("reservationState", "reservation"),),
        ),
        _e(
            "trouble_ticket",
            "TMF621",
            {"TroubleTicket": "Common/TroubleTicket"},
            states=(StateField("status", "trouble_ticket"),),
            single=("channel",),
        ),
        _e("work_order", "TMF697", {"WorkOrder": None}, states=(StateField("state", "work_order"),)),
        _e(
            "appointment",
            "TMF646",
            {"Appointment": "Customer/Appointment"},
            states=(StateField("status", "appointment"),),
        ),
        _e(
            "customer_bill",
            "TMF678",
            {"CustomerBill": "Customer/CustomerBill"},
            states=(StateField("state", "customer_bill"),),
        ),
        _e("payment", "TMF676", {"Payment": None}),
    )
}

#: other names accepted on the command line
ALIASES = {"individual": "party", "organization": "party", "logical_resource": "resource",
           "reservation": "resource_reservation"}  # fmt: skip
