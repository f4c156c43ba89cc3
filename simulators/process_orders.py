"""The order processes driven by the simulated CRM: a planned mix of orders, each with the end it must have.

The simulated CRM sends 好E家 bundles and single products (offerings of config/catalog.yaml) as
SiebelMessage orders on ``crm.orders_out``; route ``crm-order-to-iom`` hands each to the
``order_to_activation`` process. Every order is planned with a **scenario** that fixes its expected end:

- ``completed``: nothing goes wrong;
- ``rim-refusal``: RIM refuses every reservation of the order (``RIM-1001``): the components that need
  RIM fail, and the order ends ``failed``: a single product has nothing left, and a bundle's failed
  member is mandatory or its policy all_or_nothing (``foreach.fatal``), so every member is undone (a
  bundle ending ``partial`` after an optional member failed is proven by tests/e2e/test_process_crash.py);
- ``oss-timeout``: OSS never sends the order's activation results: every component times out (the
  deadline, two re-sends), is compensated, and the order ends ``failed``;
- ``cancelled``: the CRM cancels the order (a cancel SiebelMessage on ``crm.order_cancellations``) while
  it waits for OSS (whose results for it are held back): what was done is undone, it ends ``cancelled``;
- ``cancel-refused``: the CRM cancels the order after it completed: the cancel is refused (past the
  point of no return) and the order stays ``completed``.

The injected failures are **decided per order when it is planned** (a seeded draw by quota, so every
scenario with a rate above zero appears at least once) and handed to the simulators by order id
(``rim.refuse_orders``, ``oss.silent_orders``): nothing random happens at run time, so the expected
state is known before the order is sent. :class:`ProcessOrderScenario` sends the orders and the cancels
and checks each order's end through the process store (``esb.ops.processes``), the CRM's status receiver
(:class:`CRMStatusReceiver`, reading ``crm.order_status``) and the simulators' state.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esb.message import Message
from esb.xmlsafe import parse_xml
from simulators.crm import ADDRESSES, BILLING_ACCOUNTS, CRMSimulator
from simulators.receiver import QueueReceiver
from simulators.siebel import LineItem, SiebelOrder, siebel_order_xml

if TYPE_CHECKING:
    from esb.project import Project
    from simulators.process_systems import ProcessSystems

ORDERS_OUT = "crm.orders_out"
CANCELLATIONS = "crm.order_cancellations"
STATUS = "crm.order_status"
PROCESS = "order_to_activation"
CANCEL_TYPE = "order.cancel_requested"
SCENARIOS = ("completed", "rim-refusal", "oss-timeout", "cancelled", "cancel-refused")
#: The CRM's Status for each end an order_to_activation tells it (code list product_order_state, siebel):
#: completed and partial by its last step (tell_crm), failed and cancelled once every undo is done
#: (after_undo: tell_crm_undone).
CRM_STATUS = {
    "completed": "Complete",
    "partial": "Partially Complete",
    "cancelled": "Cancelled",
    "failed": "Failed",
}
#: Offerings the CRM sells in the mix: (id, name, price, what its components need from RIM, per component).
BUNDLES = [("PO-HB-299", "好E家融合套餐299元", "299.00"), ("PO-HEJ-199", "好E家 199元融合套餐", "199.00")]
SINGLES = [
    ("PO-5G-129", "5G畅享套餐129元", "129.00"),
    ("PO-5G-199", "5G畅享套餐199元", "199.00"),
    ("PO-BB-100M", "宽带100M", "50.00"),
    ("PO-FTTH-300", "300M光纤宽带", "99.00"),
    ("PO-IPTV", "天翼高清IPTV", "20.00"),
]
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄晓明", "周杰", "吴桐"]


@dataclass(frozen=True)
class Rates:
    """The share of orders per injected scenario (the issue's mix by default)."""

    rim_refusal: float = 0.05
    oss_timeout: float = 0.05
    cancellation: float = 0.02

    def __post_init__(self) -> None:
        shares = (self.rim_refusal, self.oss_timeout, self.cancellation)
        if any(not 0 <= s <= 1 for s in shares) or sum(shares) > 1:
            raise ValueError(f"expected rates between 0 and 1 adding up to at most 1, got {shares}")


@dataclass
class ProcessOrder:
    """One planned order: its message, its scenario, and the end its scenario expects."""

    order_id: str
    scenario: str
    offering: str
    message: Message
    billing_account: str
    expected_state: str
    cancel: Message | None = None

    @property
    def expected_status(self) -> str | None:
        """The CRM's last Status for the order once it ended."""
        return CRM_STATUS[self.expected_state]


def _quotas(count: int, rates: Rates, late_first: bool = False) -> list[str]:
    """One scenario per order: each injected one ``round(rate * count)`` times, at least once if its rate
    is above zero (as far as ``count`` allows); the rest completed. Cancels alternate between in flight
    and too late, starting with the late one when ``late_first`` (so small plans get both in turn)."""
    wanted = [
        ("rim-refusal", rates.rim_refusal),
        ("oss-timeout", rates.oss_timeout),
        ("cancellation", rates.cancellation),
    ]
    out: list[str] = []
    for name, rate in wanted:
        n = max(round(rate * count), 1) if rate > 0 else 0
        if name == "cancellation":  # in flight, then refused past the point of no return, in turn
            out.extend("cancelled" if (i + late_first) % 2 == 0 else "cancel-refused" for i in range(n))
        else:
            out.extend([name] * n)
    out = out[:count]
    return out + ["completed"] * (count - len(out))


def _needs_rim(offering: str) -> bool:
    return offering != "PO-IPTV"


def _expected_state(scenario: str, offering: str) -> str:
    if scenario in ("completed", "cancel-refused"):
        return "completed"
    if scenario == "cancelled":
        return "cancelled"
    return "failed"  # rim-refusal (a bundle's refused members are mandatory: fatal), oss-timeout


def plan_orders(count: int, run: str, rates: Rates = Rates(), seed: int = 20261206) -> list[ProcessOrder]:
    """Return ``count`` planned orders for run ``run`` (order numbers ``SO-<run>-<n>``), deterministic."""
    rng = random.Random(f"{seed}:{run}")  # noqa: S311 - test data, not cryptography
    scenarios = _quotas(count, rates, late_first=rng.random() < 0.5)
    rng.shuffle(scenarios)
    planned = []
    for index, scenario in enumerate(scenarios):
        choices = BUNDLES + SINGLES
        if scenario == "rim-refusal":
            choices = [c for c in choices if _needs_rim(c[0])]
        offering, name, price = rng.choice(choices)
        order_id = f"SO-{run}-{index:05d}"
        account = f"1-PBA{index:05d}"
        line = LineItem(1, "Add", offering, name, price, service_address=rng.choice(ADDRESSES))
        order = SiebelOrder(
            row_id=f"1-P{run}{index:05d}",
            number=order_id,
            account_id=f"1-PAC{index:05d}",
            account_name=rng.choice(NAMES),
            billing_account_id=account,
            channel=rng.choice(["Store", "Web", "Call Center"]),
            items=[line],
        )
        message = Message(
            body=siebel_order_xml(order),
            id=f"{run}-po-{index:05d}",
            source="crm",
            headers={"SiebelIntObject": "Order Entry (Sales)"},
        )
        cancel = None
        if scenario in ("cancelled", "cancel-refused"):
            cancel = Message(
                body=cancel_xml(order.row_id, order_id, order.account_id),
                id=f"{run}-pc-{index:05d}",
                source="crm",
                type=CANCEL_TYPE,
                headers={"SiebelIntObject": "Order Entry (Sales)"},
            )
        planned.append(
            ProcessOrder(
                order_id, scenario, offering, message, account, _expected_state(scenario, offering), cancel
            )
        )
    return planned


def cancel_xml(row_id: str, order_number: str, account_id: str) -> bytes:
    """The CRM's cancel request: an order update with Status Cancel Requested and a reason."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<SiebelMessage MessageType="Integration Object" IntObjectName="Order Entry (Sales)" '
        'IntObjectFormat="Siebel Hierarchical"><ListOfOrder_spcEntry_spc_lprSales_rpr>'
        f"<Order_spcEntry_spc-_spcOrders><Id>{row_id}</Id><Order_spcNumber>{order_number}</Order_spcNumber>"
        f"<Status>Cancel Requested</Status><Account_spcId>{account_id}</Account_spcId>"
        "<Cancel_spcReason>客户改变主意，取消订单</Cancel_spcReason>"
        "</Order_spcEntry_spc-_spcOrders></ListOfOrder_spcEntry_spc_lprSales_rpr></SiebelMessage>\n"
    ).encode()


@dataclass
class StatusUpdate:
    """One order update the CRM received: its Status (absent on a refused cancel) and Comments."""

    status: str | None
    comments: str | None


class CRMStatusReceiver(QueueReceiver):
    """The CRM's status receiver: reads ``crm.order_status`` and keeps each order's updates in order."""

    def __init__(
        self, project: Project, on_update: Callable[[str, StatusUpdate], None] | None = None
    ) -> None:
        super().__init__(project, STATUS, accept=self._parse)
        self.updates: dict[str, list[StatusUpdate]] = {}
        self.on_update = on_update

    def _parse(self, body: bytes) -> str | None:
        try:
            root = parse_xml(body)
        except Exception as exc:  # a malformed update is the receiver's finding, never a crash
            return f"not a SiebelMessage: {exc}"
        number = root.findtext(".//Order_spcNumber")
        if not number:
            return "an order update without Order_spcNumber"
        update = StatusUpdate(root.findtext(".//Status"), root.findtext(".//Comments"))
        with self._lock:
            self.updates.setdefault(number, []).append(update)
        if self.on_update is not None:
            self.on_update(number, update)
        return None

    def last_status(self, order_id: str) -> str | None:
        """The last Status the CRM was told for ``order_id`` (a refused cancel's answer has none)."""
        with self._lock:
            statuses = [u.status for u in self.updates.get(order_id, []) if u.status]
        return statuses[-1] if statuses else None

    def cancel_answer(self, order_id: str) -> str | None:
        """``accepted`` or ``refused`` for the order's cancel, None before the CRM got an answer."""
        with self._lock:
            for update in self.updates.get(order_id, []):
                if update.status == "Cancelled":
                    return "accepted"
                if (update.comments or "").startswith("cancel refused"):
                    return "refused"
        return None


@dataclass
class ScenarioReport:
    """How the orders of one scenario ended, against what they should have."""

    scenario: str
    orders: int = 0
    as_expected: int = 0
    ends: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every order of the scenario ended as expected."""
        return self.as_expected == self.orders and not self.mismatches


class ProcessOrderScenario:
    """Sends the planned orders (and their cancels) through the CRM's queues; checks how they ended."""

    def __init__(
        self,
        project: Project,
        systems: ProcessSystems,
        on_update: Callable[[str, StatusUpdate], None] | None = None,
    ) -> None:
        self.project = project
        self.systems = systems
        self.status = CRMStatusReceiver(project, on_update)
        self.orders: list[ProcessOrder] = []
        self._cancels_sent: set[str] = set()
        self._lock = threading.Lock()
        #: status queries answered as expected / not, by the CRM's and the hotline's clients (flow 3)
        self.queries = 0
        self.query_failures = 0

    def start(self) -> None:
        """Start the CRM's status receiver; give Billing the accounts of the CRM's customers (the route
        scenario's orders start processes too: their subscribers are created on these accounts)."""
        if self.systems.billing is not None:
            for account in BILLING_ACCOUNTS:
                self.systems.billing.add_account(account)
        self.status.start()
        self.status.ready.wait(10)

    def send(self, orders: list[ProcessOrder]) -> None:
        """Tell the simulators each order's injected fate, then publish the orders on the CRM's queue."""
        rim, oss, billing = self.systems.rim, self.systems.oss, self.systems.billing
        if rim is None or oss is None or billing is None:
            raise RuntimeError("the process orders need the simulated RIM, OSS and Billing: start them first")
        for order in orders:
            billing.add_account(order.billing_account)  # the customer's account, as Billing holds it
            if order.scenario == "rim-refusal":
                rim.refuse_orders.add(order.order_id)
            elif order.scenario in ("oss-timeout", "cancelled"):
                oss.silent_orders.add(order.order_id)
        with self._lock:
            self.orders.extend(orders)
        with CRMSimulator(self.project, ORDERS_OUT) as crm:
            for order in orders:
                crm.send(order.message)

    def send_due_cancels(self) -> int:
        """Send each planned cancel whose moment came: in flight once OSS holds the order's activation,
        past the point of no return once the CRM was told the order completed. Return how many wait."""
        oss = self.systems.oss
        due, waiting = [], 0
        with self._lock:
            for order in self.orders:
                if order.cancel is None or order.order_id in self._cancels_sent:
                    continue
                if order.scenario == "cancelled":
                    ready = oss is not None and bool(oss.tickets_of(order.order_id))
                else:
                    ready = self.status.last_status(order.order_id) == CRM_STATUS["completed"]
                if ready:
                    due.append(order)
                    self._cancels_sent.add(order.order_id)
                else:
                    waiting += 1
        if due:
            with CRMSimulator(self.project, CANCELLATIONS) as crm:
                for order in due:
                    assert order.cancel is not None
                    crm.send(order.cancel)
        return waiting

    def stop(self) -> None:
        """Stop the status receiver."""
        self.status.stop()
        if self.status.is_alive():  # never started when the hub failed to start
            self.status.join(5)

    def check(self, states: dict[str, tuple[str, str]]) -> list[ScenarioReport]:
        """Compare each order's end with its scenario's: ``states`` maps order id -> (state, status) of
        its order_to_activation instance. Also: the CRM's last status and cancel answer, no reservation
        left in RIM for an order that did not complete, no service activated twice."""
        reports = {name: ScenarioReport(name) for name in SCENARIOS}
        rim, oss = self.systems.rim, self.systems.oss
        for order in self.orders:
            report = reports[order.scenario]
            report.orders += 1
            state, status = states.get(order.order_id, ("(no instance)", ""))
            shown = state if status == "ended" or state == "(no instance)" else f"{state} ({status})"
            report.ends[shown] = report.ends.get(shown, 0) + 1
            problems = []
            if state != order.expected_state or status != "ended":
                problems.append(f"ended {shown}, expected {order.expected_state}")
            told = self.status.last_status(order.order_id)
            if told != order.expected_status:
                problems.append(f"the CRM was last told {told!r}, expected {order.expected_status!r}")
            if order.cancel is not None:
                answer = self.status.cancel_answer(order.order_id)
                wanted = "accepted" if order.scenario == "cancelled" else "refused"
                if answer != wanted:
                    problems.append(f"the CRM's cancel was answered {answer or 'nothing'}, expected {wanted}")
            if rim is not None and state not in ("completed", "partial"):
                held = rim.inventory.live_reservations(order.order_id)
                if held:
                    problems.append(f"RIM still holds {', '.join(r.reservation_id for r in held)}")
            if problems:
                report.mismatches.append(f"{order.order_id} ({order.offering}): {'; '.join(problems)}")
            else:
                report.as_expected += 1
        self._check_queries(reports)
        doubles = oss.activated_twice() if oss is not None else []
        if doubles:
            reports["completed"].mismatches.append(f"OSS activated services twice: {doubles[:10]}")
        return [r for r in reports.values() if r.orders or r.mismatches]

    def _check_queries(self, reports: dict[str, ScenarioReport]) -> None:
        """Flow 3: the CRM's and the 10000 hotline's status query clients ask the hub for each order by
        its number; each must find it in the state it ended in (the CRM in its codes, the hotline in
        TMF's names). Skipped when the project serves neither listener."""
        from simulators.status_query import (
            CRM_ENDPOINT,
            HOTLINE_ENDPOINT,
            QueryRefused,
            StatusQueryClient,
            client_for,
            orders,
        )

        for endpoint in (CRM_ENDPOINT, HOTLINE_ENDPOINT):
            if endpoint not in self.project.endpoints:
                continue
            client = client_for(self.project, endpoint, kind=StatusQueryClient)
            client.connect()
            try:
                for order in self.orders:
                    wanted = order.expected_status if endpoint == CRM_ENDPOINT else order.expected_state
                    try:
                        seen = orders(client.query(order_id=order.order_id))
                    except (QueryRefused, OSError) as exc:
                        problem = f"{endpoint} refused the status query: {exc}"
                    else:
                        states = [o.state for o in seen]
                        problem = (
                            ""
                            if states == [wanted]
                            else f"{endpoint} answered {states}, expected [{wanted!r}]"
                        )
                    if problem:
                        reports[order.scenario].mismatches.append(f"{order.order_id}: {problem}")
                        self.query_failures += 1
                    else:
                        self.queries += 1
            finally:
                client.close()


def runs_processes(project: Project) -> bool:
    """True when the project runs order_to_activation and declares the CRM queues the mix uses."""
    from esb.process.loader import load_processes  # late: as in instance_states

    wanted = (ORDERS_OUT, CANCELLATIONS, STATUS)
    return PROCESS in load_processes(project.root).names() and all(e in project.endpoints for e in wanted)


def instance_states(store: Any, order_ids: set[str]) -> dict[str, tuple[str, str]]:
    """Order id -> (state, status) of its order_to_activation instance, from the process store."""
    return keyed_states(store, PROCESS, "order_id", order_ids)


def keyed_states(store: Any, process: str, key: str, values: set[str]) -> dict[str, tuple[str, str]]:
    """Business key value -> (state, status: ``ended`` once it ended) of the instance of ``process``
    whose key ``key`` has that value, for each of ``values`` that has one."""
    from esb.ops.processes import find  # late: the simulators import no process code unless used
    from esb.process.engine.store import ENDED

    found: dict[str, tuple[str, str]] = {}
    offset = 0
    while True:
        page = find(store, process=process, limit=500, offset=offset)
        for summary in page:
            value = summary.keys.get(key)
            if value in values and value not in found:
                found[value] = (summary.state, "ended" if summary.status in ENDED else summary.status)
        if len(page) < 500:
            return found
        offset += 500
