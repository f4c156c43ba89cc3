"""Credit control (停机 / 复机) simulated: Billing's arrears feed, OSS's barring, the CRM's subscriber status.

:func:`plan_credit_events` makes Billing's events for a handful of subscribers: stops (one-way, two-way),
resumes, reminders, some sent **late** (after a newer event of the same subscriber) and some **twice**
(Billing sends them again under a new message id), with the outcome the hub must give each (applied and
delivered to the CRM, or filtered: a reminder, a stale or a repeated event) and each subscriber's final
state: the state its **last** stop or resume asks for, whatever the arrival order. One subscriber's number
is unknown to OSS (dead-lettered at once), one's switch never answers (retried, then dead-lettered).

:class:`CreditControlScenario` drives route ``billing-credit-control`` for `esb demo` and `make run`: it
serves OSS's credit-control service on the port ``oss.credit_control`` names, consumes the CRM's
``crm.subscriber_status`` queue, and its :meth:`~CreditControlScenario.problems` lists every subscriber
whose OSS or CRM state is not its last event's.
"""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esb.message import Message
from simulators.crm import CRMSimulator, PlannedMessage
from simulators.oss_credit import ACTIVE, OSSCreditControlSimulator
from simulators.receiver import QueueReceiver

if TYPE_CHECKING:
    from esb.project import Project

OSS_ENDPOINT = "oss.credit_control"
CRM_ENDPOINT = "crm.subscriber_status"
ID_MARK = "-cc-"
#: OSS's state after each command, and the status the CRM shows for it
OSS_STATE = {("STOP", "1"): "ONE_WAY_BARRED", ("STOP", "2"): "TWO_WAY_BARRED", ("RESUME", ""): ACTIVE}
CRM_STATUS = {ACTIVE: "Active", "ONE_WAY_BARRED": "Suspended-OneWay", "TWO_WAY_BARRED": "Suspended-TwoWay"}
#: the commands a subscriber's history is drawn from (REMIND is no OSS command: filtered)
COMMANDS = [("STOP", "1"), ("STOP", "2"), ("RESUME", ""), ("REMIND", "")]
REASONS = {"STOP": "01", "RESUME": "11", "REMIND": "01"}


@dataclass
class CreditEvent:
    """One event Billing sends, and how the hub must end it."""

    message: Message
    kind: str
    expected: str
    msisdn: str
    serial: int
    command: tuple[str, str]

    @property
    def planned(self) -> PlannedMessage:
        """The event as the demo's generic per-route accounting sees it."""
        return PlannedMessage(self.message, self.kind, self.expected)


@dataclass
class CreditPlan:
    """Events in sending order, each subscriber's expected final state, and the numbers OSS fails."""

    events: list[CreditEvent] = field(default_factory=list)
    #: msisdn -> OSS's state after the subscriber's last stop or resume (ACTIVE if none was applied)
    final: dict[str, str] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    down: set[str] = field(default_factory=set)


def billing_event(serial: int, msisdn: str, command: tuple[str, str], when: float) -> dict[str, Any]:
    """Billing's own JSON for one credit-control event (amounts in fen, Beijing time)."""
    op, stop_type = command
    owe = 0 if op == "RESUME" else 100 * (serial % 300 + 1)
    body: dict[str, Any] = {
        "serialNo": str(serial),
        "acctId": f"1-BA{int(msisdn[-5:]) % 997:05d}",
        "subsId": f"SUB-{msisdn}",
        "accNbr": msisdn,
        "opType": op,
        "reasonCode": REASONS[op],
        "oweAmount": owe,
        "balance": -owe,
        "creditLimit": 0,
        "eventTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when + 8 * 3600)),
    }
    if stop_type:
        body["stopType"] = stop_type
    return body


def _judge(state: dict[str, tuple[int, tuple[str, str], bool]], event: CreditEvent, failing: set[str]) -> str:
    """The outcome the route gives ``event`` after ``state`` (the sync step's rules, for this feed).

    ``state`` holds per number the version, the barring the target holds, and whether the message that
    set it was dead-lettered (then the same barring is sent again, docs/sync.md).
    """
    if event.command[0] not in ("STOP", "RESUME"):
        return "filtered"  # the route's filter: not an OSS command
    known = state.get(event.msisdn)
    if known is not None and (
        event.serial < known[0] or (event.serial == known[0] and event.command != known[1])
    ):
        return "filtered"  # stale: older than what the target holds
    if known is not None and event.command == known[1] and not known[2]:
        state[event.msisdn] = (event.serial, event.command, False)
        return "filtered"  # unchanged: the same event again, or OSS already has this barring
    dead = event.msisdn in failing
    state[event.msisdn] = (event.serial, event.command, dead)
    return "dead_lettered" if dead else "delivered"


def plan_credit_events(count: int, run: str, *, serial_base: int | None = None) -> CreditPlan:
    """Plan about ``count`` events of Billing's arrears feed for ``run`` (see the module's docstring).

    Serial numbers start at ``serial_base`` (default: from the clock, so a later run's events are newer
    than an earlier run's). Subscribers' numbers come from ``run``.
    """
    rng = random.Random(zlib.crc32(run.encode()))  # noqa: S311 - test data
    base = serial_base if serial_base is not None else int(time.time() * 1000) * 1000
    block = f"{zlib.crc32(run.encode()) % 100_000:05d}"
    plan = CreditPlan()
    subscribers = max(1, count // 6)
    commands: dict[str, list[tuple[str, str]]] = {}
    for index in range(subscribers):
        history = [rng.choice(COMMANDS[:2])]  # every subscriber is stopped at least once
        history += [rng.choice(COMMANDS) for _ in range(rng.randint(2, 6))]
        commands[f"133{block}{index:03d}"] = history
    if subscribers >= 4:  # one number OSS does not know, one whose switch never answers: one stop each
        plan.refused.add(f"133{block}{subscribers - 1:03d}")
        plan.down.add(f"133{block}{subscribers - 2:03d}")
        for msisdn in plan.refused | plan.down:
            commands[msisdn] = commands[msisdn][:1]
    histories = _interleaved(commands, base, rng)
    order = _sending_order(histories, rng)
    state: dict[str, tuple[int, tuple[str, str], bool]] = {}
    start = time.time() - 3600
    for number, (msisdn, serial_no, command, kind) in enumerate(order):
        body = billing_event(serial_no, msisdn, command, start + (serial_no - base))
        message = Message(
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            id=f"{run}{ID_MARK}{number:05d}",
            source="billing",
        )
        event = CreditEvent(message, kind, "", msisdn, serial_no, command)
        event.expected = _judge(state, event, plan.refused | plan.down)
        plan.events.append(event)
    for msisdn, numbered in histories.items():
        asked = [c for _, c in numbered if c[0] in ("STOP", "RESUME")]
        applied = msisdn not in plan.refused and msisdn not in plan.down
        plan.final[msisdn] = OSS_STATE[asked[-1]] if asked and applied else ACTIVE
    return plan


def _interleaved(
    commands: dict[str, list[tuple[str, str]]], base: int, rng: random.Random
) -> dict[str, list[tuple[int, tuple[str, str]]]]:
    """Give the subscribers' commands increasing serial numbers, the subscribers' turns shuffled."""
    turns = [msisdn for msisdn, history in commands.items() for _ in history]
    rng.shuffle(turns)
    histories: dict[str, list[tuple[int, tuple[str, str]]]] = {msisdn: [] for msisdn in commands}
    serial = base
    for msisdn in turns:
        serial += rng.randint(1, 5)
        histories[msisdn].append((serial, commands[msisdn][len(histories[msisdn])]))
    return histories


def _sending_order(
    histories: dict[str, list[tuple[int, tuple[str, str]]]], rng: random.Random
) -> list[tuple[str, int, tuple[str, str], str]]:
    """Interleave the subscribers' events in serial order, then delay some (late) and repeat some."""
    events = sorted(
        ((serial, msisdn, command) for msisdn, history in histories.items() for serial, command in history),
    )
    order: list[tuple[str, int, tuple[str, str], str]] = [
        (msisdn, serial, command, _kind(command)) for serial, msisdn, command in events
    ]
    for position in range(len(order) - 2, -1, -1):
        draw = rng.random()
        msisdn, serial, command, kind = order[position]
        newer = next((i for i in range(position + 1, len(order)) if order[i][0] == msisdn), None)
        if draw < 0.15 and newer is not None:  # late: sent after the subscriber's next (newer) event
            order.insert(newer + 1, (msisdn, serial, command, f"late-{kind}"))
            del order[position]
        elif draw < 0.30:  # Billing sends it again a little later
            again = min(position + 1 + rng.randint(0, 3), len(order))
            order.insert(again, (msisdn, serial, command, f"repeat-{kind}"))
    return order


def _kind(command: tuple[str, str]) -> str:
    op, stop_type = command
    if op == "STOP":
        return {"1": "stop-one-way", "2": "stop-two-way"}.get(stop_type, "stop")
    return op.lower()


class SubscriberStatusReceiver(QueueReceiver):
    """The CRM's side of ``crm.subscriber_status``: each subscriber's status, as last told."""

    def __init__(self, project: Project, show: Callable[[str, str], None] | None = None) -> None:
        super().__init__(project, CRM_ENDPOINT, accept=_status_problem)
        self.show = show
        self.status: dict[str, str] = {}
        #: msisdn -> the Credit Event Ids of the updates it got, in arrival order
        self.events: dict[str, list[str]] = {}
        self._status_lock = threading.Lock()

    def take(self, message: Message) -> None:
        """Record the update and apply it to the subscriber's status (once per message id)."""
        first = message.id not in self.received
        super().take(message)
        if not first or message.id not in self.received:
            return
        update = json.loads(message.body_bytes())
        with self._status_lock:
            self.status[update["Serial Number"]] = update["Status"]
            self.events.setdefault(update["Serial Number"], []).append(str(update.get("Credit Event Id")))
        if self.show is not None:
            self.show(update["Serial Number"], update["Status"])

    def status_of(self, msisdn: str) -> str | None:
        """The subscriber's status in the CRM (None: never told)."""
        with self._status_lock:
            return self.status.get(msisdn)


def _status_problem(body: bytes) -> str | None:
    """Why the CRM refuses a status update (None: it is fine)."""
    try:
        update = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(update, dict) or not update.get("Serial Number"):
        return "no Serial Number"
    if update.get("Status") not in CRM_STATUS.values():
        return f"unknown Status {update.get('Status')!r}"
    return None


def final_state_problems(
    plan: CreditPlan, oss: OSSCreditControlSimulator, crm: SubscriberStatusReceiver
) -> list[str]:
    """A line per subscriber whose OSS state or CRM status is not what its last event asks for."""
    problems = []
    for msisdn, expected in sorted(plan.final.items()):
        seen = oss.state_of(msisdn)
        if seen != expected:
            problems.append(f"{msisdn}: OSS {seen}, last event asks {expected}")
        told = crm.status_of(msisdn)
        wanted = None if msisdn in plan.refused | plan.down else CRM_STATUS[expected]
        if told != wanted:
            problems.append(f"{msisdn}: CRM shows {told}, expected {wanted}")
    return problems


class CreditControlScenario:
    """Billing's arrears feed through route billing-credit-control, with OSS and the CRM simulated."""

    def __init__(
        self, project: Project, route_id: str, show: Callable[[str, str], None] | None = None
    ) -> None:
        self.project = project
        self.route_id = route_id
        self.source = project.route(route_id).from_
        self.oss: OSSCreditControlSimulator | None = None
        self.crm = SubscriberStatusReceiver(project, show)
        self.plans: list[CreditPlan] = []
        self.prefixes: list[str] = []

    def start(self) -> None:
        """Serve OSS's credit-control service and start the CRM's status receiver (once)."""
        if self.oss is not None:
            return
        from simulators.process_systems import soap_service_config  # late: it imports every process system

        user, secret, port = soap_service_config(self.project, OSS_ENDPOINT)
        self.oss = OSSCreditControlSimulator(user, secret)
        self.oss.serve(port=port)
        self.oss.busy_next(1)  # OSS's first answer is "busy": the route retries it
        self.crm.start()
        self.crm.ready.wait(10)

    def plan(self, count: int, run: str) -> list[PlannedMessage]:
        """Plan about ``count`` events; tell OSS which numbers it fails."""
        plan = plan_credit_events(count, run)
        assert self.oss is not None, "start() first"
        self.oss.refused |= plan.refused
        self.oss.down |= plan.down
        self.plans.append(plan)
        self.prefixes.append(f"{run}{ID_MARK}")
        return [event.planned for event in plan.events]

    def send(self, planned: list[PlannedMessage]) -> None:
        """Publish Billing's events on its queue through the real adapter, in the planned order."""
        with CRMSimulator(self.project, self.source) as publisher:  # a generic queue publisher
            for item in planned:
                publisher.send(item.message)

    def received(self) -> int:
        """The status updates the CRM got for this scenario's events."""
        return sum(self.crm.count(prefix) for prefix in self.prefixes)

    def problems(self) -> list[str]:
        """Malformed updates the CRM saw, and every subscriber whose final state is not its last event's."""
        problems = [f"CRM refused a status update: {line}" for line in self.crm.malformed]
        if self.oss is not None:
            for plan in self.plans:
                problems += final_state_problems(plan, self.oss, self.crm)
        return problems

    def stop(self) -> None:
        """Stop OSS and the CRM's receiver (may be called twice)."""
        self.crm.stop()
        oss, self.oss = self.oss, None
        if oss is not None:
            oss.stop()
