"""Order-to-activation processes end to end: a project copy that runs them, a planned mix of orders, the
simulated RIM, OSS and Billing with per-order behaviour, and the instances' end states read back.

Used by tests/e2e/test_process_crash.py (SIGKILLs and a database restart) and
bench/process_e2e_bench.py (completed orders per second). The orders are canonical ProductOrders put
straight on ``hub.product_orders`` (the trigger of ``order_to_activation``), the cancels are Siebel cancel
requests on ``crm.order_cancellations`` (the route crm-cancel-to-hub makes them the canonical cancels that
start ``order_cancellation``).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from esb.message import Message
from esb.process.engine.tables import process_instances, process_keys, process_steps
from esb.project import Project
from simulators.devenv import choose_free_ports
from simulators.oss import OSSSimulator, QueuePublisher
from simulators.process_systems import OSS_ENDPOINT, OSS_RESULTS, RIM_ENDPOINT, soap_service_config
from simulators.rim import RIMSimulator
from simulators.rim_inventory import fault
from simulators.soap_scenarios import SharedBilling
from simulators.soap_service import Fields
from tests.e2e.hub_process import ROOT, HubProcess, hub_environ
from tests.e2e.ops_hub import copy_project

ORDER_PROCESS = "order_to_activation"
CANCEL_PROCESS = "order_cancellation"
#: Where the CRM's cancel requests arrive (read by the route crm-cancel-to-hub).
CANCELS = "crm.order_cancellations"
ENDED = ("completed", "partial", "failed", "cancelled")
BILLING_ENDPOINT = "billing.create_subscriber"
#: The await deadline of OSS's result in the project copy (30m in the shipped definition).
DEADLINE = "5s"
#: An address RIM's default inventory serves (exchange HZ-XH), split as the canonical model holds it.
ADDRESS = {
    "province": "浙江省",
    "city": "杭州市",
    "district": "西湖区",
    "street": "文三路",
    "streetNr": "90号",
}
BUNDLE_SAMPLE = ROOT / "canonical_model/examples/product_order.v1/valid/home_bundle_new.json"
CANCEL_SAMPLE = ROOT / "transforms/crm/samples/order_cancel.xml"


def definition_file(name: str) -> Path:
    """The repository's definition ``name``: in processes/ once deployed, else the example."""
    deployed = ROOT / "processes" / f"{name}.yaml"
    return deployed if deployed.exists() else ROOT / "processes" / "examples" / f"{name}.yaml"


def process_project(target: Path, deadline: str = DEADLINE) -> Path:
    """Copy the repository's project into ``target`` with both order processes in its processes/ (the OSS
    result's deadline set to ``deadline``) and one route: the CRM's cancels to the cancellation process's
    trigger (crm-cancel-to-hub); the orders go straight to their trigger."""
    copy_project(target)
    routes = yaml.safe_load((ROOT / "routes.yaml").read_text(encoding="utf-8"))["routes"]
    kept = [r for r in routes if r["from"] == CANCELS]
    text = yaml.safe_dump({"routes": kept}, allow_unicode=True)
    (target / "routes.yaml").write_text(text, encoding="utf-8")
    (target / "processes").mkdir(exist_ok=True)
    text = definition_file(ORDER_PROCESS).read_text(encoding="utf-8")
    shortened = text.replace("deadline: 30m", f"deadline: {deadline}")
    if shortened == text:
        raise AssertionError(f"{definition_file(ORDER_PROCESS)}: expected 'deadline: 30m' to shorten")
    (target / "processes" / f"{ORDER_PROCESS}.yaml").write_text(shortened, encoding="utf-8")
    shutil.copy2(definition_file(CANCEL_PROCESS), target / "processes" / f"{CANCEL_PROCESS}.yaml")
    return target


# -- the orders -----------------------------------------------------------------------------------------
@dataclass
class PlannedOrder:
    """One canonical order, what the simulators do with it, and the end state it must reach."""

    order_id: str
    body: dict[str, Any]
    account: str
    expected: str
    refused: set[str] = field(default_factory=set)  # component ids RIM refuses to reserve
    silent: bool = False  # OSS never sends its activation results
    cancel: bool = False  # the CRM cancels it while it waits for OSS

    def message(self) -> Message:
        """The order as the trigger endpoint gets it."""
        return Message(body=self.body, id=f"trigger-{self.order_id}", schema="product_order.v1")

    def cancel_message(self) -> Message:
        """The CRM's cancel request for the order (a Siebel order update with Status Cancel Requested)."""
        xml = CANCEL_SAMPLE.read_text(encoding="utf-8").replace("SO20261125000123", self.order_id)
        return Message(body=xml.encode(), id=f"cancel-{self.order_id}", type="order.cancel_requested")


def _item(item_id: str, offering: str, kind: str) -> dict[str, Any]:
    product: dict[str, Any] = {}
    if kind in ("mobile", "fixedLine"):
        product = {"productCharacteristic": [{"name": "areaCode", "value": "571"}]}
    elif kind == "broadband":
        product = {"place": [{"role": "installationAddress", "address": dict(ADDRESS)}]}
    return {"id": item_id, "action": "add", "productOffering": {"id": offering}, "product": product}


def order_body(order_id: str, account: str, bundle: bool, single: str = "mobile") -> dict[str, Any]:
    """A canonical ProductOrder: a 好E家 199 bundle (mobile and broadband, mandatory; a fixed line,
    optional) or one single product."""
    body = json.loads(BUNDLE_SAMPLE.read_text(encoding="utf-8"))
    body["id"] = order_id
    body["href"] = f"/productOrder/{order_id}"
    body["billingAccount"]["id"] = account
    if bundle:
        top = body["productOrderItem"][0]
        top["productOrderItem"] = [
            _item("01.1", "PO-MOB-HEJ", "mobile"),
            _item("01.2", "PO-BB-300M", "broadband"),
            _item("01.3", "PO-FIX-HEJ", "fixedLine"),
        ]
    else:
        offering = "PO-5G-129" if single == "mobile" else "PO-BB-100M"
        body["productOrderItem"] = [_item("01", offering, single)]
    return copy.deepcopy(body)


def plan_orders(count: int, run: str, *, faults: bool = True) -> list[PlannedOrder]:
    """``count`` orders: 30% bundles, 60% single mobiles, 10% single broadbands. With ``faults``, by index
    (i mod 20, i mod 50): a bundle whose optional fixed line RIM refuses (partial: the bundle's policy is
    partial_allowed, 5%), a bundle whose mandatory mobile RIM refuses (failed, every member undone, 5%), a
    single RIM refuses (failed, 5%), a single whose OSS result never comes (failed at the deadline, 5%),
    a single cancelled by the CRM while it waits for OSS (cancelled, 2%); the rest complete."""
    planned = []
    for i in range(count):
        order_id, account = f"PO-{run}-{i:05d}", f"2{i:09d}"
        shape = i % 10
        bundle = shape < 3
        body = order_body(order_id, account, bundle, "broadband" if shape == 9 else "mobile")
        order = PlannedOrder(order_id, body, account, "completed")
        if faults and not bundle and shape != 9 and i % 50 == 17:
            order.silent, order.cancel, order.expected = True, True, "cancelled"
        elif faults and bundle and i % 20 == 1:
            order.refused, order.expected = {f"{order_id}-3"}, "partial"
        elif faults and (i % 20 == 5 or (bundle and i % 20 == 2)):  # a single, or a bundle's mandatory mobile
            order.refused, order.expected = {f"{order_id}-1"}, "failed"
        elif faults and i % 20 == 7:
            order.silent, order.expected = True, "failed"
        planned.append(order)
    return planned


# -- the simulated systems --------------------------------------------------------------------------------
class ScriptedRIM(RIMSimulator):
    """RIM refusing the reservation of chosen components (``RIM-1001``, not retryable)."""

    def __init__(self, username: str, password: str, refused: set[str]) -> None:
        super().__init__(username, password)
        self.refused_components = refused

    def _reserve(self, f: Fields) -> dict[str, Any]:
        component, key = f.get("componentId"), f.get("idempotencyKey")
        if component in self.refused_components and key not in self.inventory.by_key:
            raise fault("RIM-1001", f"no number for {component} (scripted)")
        return super()._reserve(f)


class SilentFilter:
    """Publishes OSS's results except the activation results of the silent orders (they never come in
    time: ``held`` keeps each one by message id, for a test to deliver after its order ended)."""

    def __init__(self, publish: Callable[[Message], None], silent: set[str]) -> None:
        self.publish, self.silent = publish, silent
        self.dropped = 0
        self.held: dict[str, Message] = {}

    def __call__(self, message: Message) -> None:
        """Publish ``message`` unless it is an activation result of a silent order."""
        body = message.body if isinstance(message.body, dict) else {}
        if body.get("action") == "activate" and body.get("orderId") in self.silent:
            self.dropped += 1
            self.held[message.id] = message
            return
        self.publish(message)


class OrderSystems:
    """The simulated RIM, OSS and Billing on the ports the project's endpoints name, scripted per order."""

    def __init__(
        self, project: Project, orders: Iterable[PlannedOrder], *, result_delay: float = 0.0
    ) -> None:
        orders = list(orders)
        self.project = project
        user, secret, port = soap_service_config(project, RIM_ENDPOINT)
        self.rim = ScriptedRIM(user, secret, {c for o in orders for c in o.refused})
        self.rim_port = port
        self.publisher = QueuePublisher(project, OSS_RESULTS)
        self.filter = SilentFilter(self.publisher, {o.order_id for o in orders if o.silent})
        user, secret, self.oss_port = soap_service_config(project, OSS_ENDPOINT)
        self.oss = OSSSimulator(user, secret, publish=self.filter, result_delay=result_delay)
        self.billing = SharedBilling.acquire(project, BILLING_ENDPOINT)
        for order in orders:
            self.billing.add_account(order.account)

    def start(self) -> None:
        """Serve RIM and OSS (Billing is serving since it was acquired)."""
        self.rim.serve(port=self.rim_port)
        self.oss.serve(port=self.oss_port)

    def stop(self) -> None:
        """Stop the three services and the result publisher."""
        self.rim.stop()
        self.oss.stop()
        self.publisher.close()
        SharedBilling.release()

    def problems(self, orders: Iterable[PlannedOrder]) -> list[str]:
        """What the systems hold that they must not: a live reservation of an order that did not complete,
        a service activated twice, a subscriber created twice, a subscriber or active service of an order
        that failed or was cancelled."""
        found = []
        for order in orders:
            if order.expected == "completed":
                continue
            # a partial order keeps what its completed components hold; the failed one holds nothing
            live = self.rim.inventory.live_reservations(order.order_id)
            found += [
                f"RIM holds {r.reservation_id} ({r.state}) of {r.component_id}"
                for r in live
                if order.expected != "partial" or r.component_id in order.refused
            ]
            if order.expected != "partial":
                subs = self.billing.active_subscribers(order.order_id)
                found += [f"Billing has subscriber {s.subscriber_id} of {order.order_id}" for s in subs]
                active = [c for o, c in self.oss.active if o == order.order_id]
                found += [f"OSS still has {component} active" for component in active]
        found += [f"OSS activated {service} twice" for service in self.oss.activated_twice()]
        found += [f"RIM reserved twice under {key}" for key, n in self.rim.inventory.made.items() if n > 1]
        found += [f"Billing created {key} {n} times" for key, n in self.billing.creations.items() if n > 1]
        return found


# -- the environment, the hub and the orders' way in -----------------------------------------------------
def order_environ(data_dir: Path, ports: dict[str, str], **extra: str) -> dict[str, str]:
    """The hub's environment: the data dir, the simulators' ports, fast process runners, short leases."""
    return hub_environ(
        data_dir,
        **ports,
        ESB_MONITORING__ENABLED="false",
        ESB_RUNTIME__WATCH_PROJECT="false",
        ESB_PROCESSES__RUNNERS="4",
        ESB_PROCESSES__POLL="0.1s",
        ESB_PROCESSES__LEASE="5s",
        **extra,
    )


class ProcessHub(HubProcess):
    """`esb run` on a project copy with its own environment, SIGKILLable and restartable."""

    def __init__(self, root: Path, environ: dict[str, str], log: Path) -> None:
        super().__init__(Path(environ["ESB_DATA_DIR"]), log, routes=())
        self.root, self.environ = root, environ

    def start(self) -> None:
        """Start the hub on the project copy."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "esb.cli", "--project", str(self.root), "run"],
                env={**self.environ, "PYTHONPATH": str(ROOT)},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(ROOT),
            )


def put(project: Project, endpoint: str, messages: Iterable[Message]) -> int:
    """Write ``messages`` to ``endpoint`` through its adapter; return how many."""
    sent = 0
    with project.adapter_for(endpoint).sink(project.endpoint(endpoint), project.context(endpoint)) as sink:
        for message in messages:
            sink.write(message)
            sent += 1
    return sent


# -- reading the instances back -------------------------------------------------------------------------
class Instances:
    """The order processes' instances in the journal's database."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True)

    def close(self) -> None:
        """Dispose of the connections."""
        self.engine.dispose()

    def by_order(self, process: str = ORDER_PROCESS) -> dict[str, tuple[str, str, str]]:
        """order id -> (instance id, status, state) of ``process``'s instances."""
        i, k = process_instances.c, process_keys.c
        query = (
            sa.select(k.value, i.id, i.status, i.state)
            .join(process_instances, i.id == k.instance_id)
            .where(k.process == process, k.name == "order_id")
        )
        with self.engine.connect() as conn:
            return {r.value: (r.id, r.status, r.state) for r in conn.execute(query)}

    def waiting_for_oss(self, instance_ids: Iterable[str]) -> set[str]:
        """Those of ``instance_ids`` with an activation_result await waiting or timed out."""
        s = process_steps.c
        wanted = list(instance_ids)
        if not wanted:
            return set()
        query = sa.select(s.instance_id).where(
            s.instance_id.in_(wanted),
            s.path.like("components[%].activation_result"),
            s.state.in_(["waiting", "timed_out"]),
        )
        with self.engine.connect() as conn:
            return {r.instance_id for r in conn.execute(query)}

    def timeouts(self, instance_id: str) -> dict[str, int]:
        """Await path -> how many times its deadline fired, for one instance."""
        s = process_steps.c
        query = (
            sa.select(s.path, sa.func.count())
            .where(s.instance_id == instance_id, s.state == "timed_out")
            .group_by(s.path)
        )
        with self.engine.connect() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(query)}

    def ended(self, order_ids: Iterable[str]) -> int:
        """How many of ``order_ids`` have an instance that ended."""
        states = self.by_order()
        return sum(1 for o in order_ids if o in states and states[o][1] in ENDED)


def free_ports() -> dict[str, str]:
    """Free loopback ports for every port variable the project's endpoints read (RIM, OSS, Billing...)."""
    ports: dict[str, str] = {}
    choose_free_ports(ports)
    return ports
