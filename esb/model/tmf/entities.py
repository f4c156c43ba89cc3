"""The table of canonical entities that have a TM Forum Open API v4 counterpart."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StateField:
    """A state field to normalise on input: ``field`` of the root (``within`` None) or of every object
    found under the key ``within`` at any depth (nested order items, or the one object there: an order
    item's product); values come from ``machine``."""

    field: str
    machine: str
    within: str | None = None
    #: False where the TMF schema has no enumeration for the field (any string is TMF-valid there): an
    #: unknown value is then dropped with a warning instead of refused
    tmf_enum: bool = True


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
    #: other TMF names of a top-level field, read on input with a warning (SID ``orderItem`` for the
    #: TMF641 API's ``serviceOrderItem``); the output always uses the canonical name
    read_as: dict[str, str] = field(default_factory=dict)

    @property
    def canonical_schema(self) -> str:
        """Schema name of the canonical entity (``product_order.v1``)."""
        return f"{self.entity}.v1"


def _e(entity: str, api: str, files: dict[str, str | None], **kw: object) -> TMFEntity:
    return TMFEntity(entity, api, tuple(files), files, **kw)  # type: ignore[arg-type]


_ORDER_STATES = (
    StateField("state", "product_order"),
    StateField("state", "product_order_item", within="productOrderItem"),
    StateField("status", "product", within="product"),
)

#: machine -> {canonical state: TMF's published spelling}, where TMF's enumeration spells a state
#: differently (ProductStatusType ``"aborted "`` with a space, IndividualStateType ``"deceaded"``, the
#: SID TaskStateType ``"accepted"`` for the API's ``acknowledged``):
#: read silently (it is TMF's own value) and written back the TMF way.
TMF_SPELLINGS: dict[str, dict[str, str]] = {
    "product": {"aborted": "aborted "},
    "party": {"deceased": "deceaded"},
    "cancel_product_order": {"acknowledged": "accepted"},  # TMF622 API: acknowledged; SID: accepted
}

ENTITIES: dict[str, TMFEntity] = {
    e.entity: e
    for e in (
        _e("product_order", "TMF622", {"ProductOrder": "Customer/ProductOrder"}, states=_ORDER_STATES),
        _e(
            "cancel_product_order",
            "TMF622",
            {"CancelProductOrder": "Product/CancelProductOrder"},
            states=(StateField("state", "cancel_product_order"),),
        ),
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
            states=(StateField("state", "account", tmf_enum=False),),
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
                StateField("state", "service", within="service"),
            ),
            read_as={"orderItem": "serviceOrderItem"},
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
           "reservation": "resource_reservation", "cancel_order": "cancel_product_order"}  # fmt: skip
