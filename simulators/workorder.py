"""The electronic work-order system (电子工单), simulated: technicians, picks, work orders and their events.

The hub's fault_to_resolution process (processes/fault_to_resolution.yaml) asks it for a technician
(``POST {base}/technicianPick``, endpoint ``workorder.pick_technician``), sends it work orders
(``DISPATCH``, ``RECALL``) on ``workorder.orders_in`` and awaits what the technician does on
``workorder.events``: ``ACCEPT`` or ``REJECT``, then ``APPOINT`` (the slot booked with the customer) and
``COMPLETE``, all in the system's own JSON.

:class:`WorkOrderSystem` is the logic, with no thread or socket (a unit test drives it directly):
technicians with a team, skills, an availability and a load (their open work orders); a pick is the
least-loaded available technician of the team with the skill who was not offered the ticket before
(ties by id), and the same pick asked again (its ``requestId`` and ``previousWoNo``: the hub's step
redone after a crash) gets the same work order; the work order is due ``slaHours`` after the pick, an
hour lasting ``hour_seconds`` (3600 in production; a demo shortens it, never the process definition).
What a technician does is scripted per ticket, as the order simulators do (simulators/process_orders.py),
so each fault's end is known before it is sent: ``reject`` (the first technician offered refuses),
``silent`` (the first technician never answers: the process's deadline reassigns), ``late`` (the work is
completed a quarter of its time after its due time: the supervisor is told). :class:`WorkOrderService`
serves it: the pick over HTTP on loopback, the work orders read from the queue, the events published
after their delays.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from esb.message import Message

if TYPE_CHECKING:
    from esb.project import Project

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The teams of transforms/tables/fault112_dispatch with the skill each team's rules give.
TEAMS = {
    "hz-fiber": "fiber", "nb-fiber": "fiber", "wz-fiber": "fiber", "north-fiber": "fiber",
    "south-fiber": "fiber", "hz-onsite": "cpe", "nb-onsite": "cpe", "wz-onsite": "cpe",
    "zj-key-accounts": "dedicated", "zj-iptv": "iptv", "city-copper": "copper", "zj-copper": "copper",
    "zj-wireless": "wireless", "zj-triage": "triage",
}  # fmt: skip
#: Scripted behaviours a ticket may be given (anything else: accepted, booked, completed in time).
SCENARIOS = frozenset({"resolved", "reject", "silent", "late"})
SURNAMES = "王李张刘陈杨赵黄周吴"


class NoTechnician(Exception):  # noqa: N818 - answered to the caller as a 409 with its text
    """No available technician of the team has the skill (or all were offered the ticket already)."""


@dataclass
class Technician:
    """A repair technician (装维人员): team, skills, whether on duty, open work orders."""

    id: str
    name: str
    team: str
    skills: frozenset[str]
    available: bool = True
    load: int = 0


@dataclass
class WorkOrder:
    """A work order offered to one technician for one ticket."""

    wo_no: str
    ticket_no: str
    tech_no: str
    due_at: datetime
    state: str = "offered"  # offered, dispatched, accepted, rejected, recalled, completed
    events: list[str] = field(default_factory=list)


def local(moment: datetime) -> str:
    """The system's time format: local Asia/Shanghai ``YYYY-MM-DD HH:MM:SS``."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def default_technicians(per_team: int = 3) -> list[Technician]:
    """``per_team`` technicians for every team of the dispatch table, each with the team's skill."""
    names = itertools.cycle(SURNAMES)
    return [
        Technician(f"T-{team}-{n}", f"{next(names)}师傅", team, frozenset({skill}))
        for team, skill in TEAMS.items()
        for n in range(1, per_team + 1)
    ]


class WorkOrderSystem:
    """Technicians, picks and work orders; events go to ``publish`` after ``delays`` (0: at once)."""

    def __init__(
        self,
        technicians: list[Technician] | None = None,
        *,
        publish: Callable[[Message, float], None],
        clock: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
        hour_seconds: float = 3600.0,
        answer_delay: float = 0.0,
        work_delay: float = 0.0,
    ) -> None:
        self.technicians = {t.id: t for t in technicians or default_technicians()}
        self.publish = publish
        self.clock = clock
        self.hour_seconds = hour_seconds
        self.answer_delay = answer_delay
        self.work_delay = work_delay
        self.scenarios: dict[str, str] = {}  # ticket number -> scenario
        self.orders: dict[str, WorkOrder] = {}
        self.offered: dict[str, list[str]] = {}  # ticket number -> technicians offered it, in order
        self.duplicates = 0
        self._picks: dict[tuple[str, str], dict[str, Any]] = {}  # (requestId, previousWoNo) -> answer
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    # -- the pick ------------------------------------------------------------------------------------
    def pick(self, request: dict[str, Any]) -> dict[str, Any]:
        """Open a work order for the least-loaded available technician of the team with the skill."""
        for name in ("ticketNo", "team", "skill", "slaHours"):
            if request.get(name) in (None, ""):
                raise ValueError(f"technicianPick: {name} is required, got {request.get(name)!r}")
        ticket, team, skill = str(request["ticketNo"]), str(request["team"]), str(request["skill"])
        once = (str(request.get("requestId") or ""), str(request.get("previousWoNo") or ""))
        with self._lock:
            if once[0] and once in self._picks:
                self.duplicates += 1
                return self._picks[once]
            tried = self.offered.setdefault(ticket, [])
            candidates = [
                t
                for t in self.technicians.values()
                if t.team == team and skill in t.skills and t.available and t.id not in tried
            ]
            if not candidates:
                raise NoTechnician(
                    f"no available technician of team {team!r} with skill {skill!r} "
                    f"(offered ticket {ticket} already: {', '.join(tried) or 'none'})"
                )
            tech = min(candidates, key=lambda t: (t.load, t.id))
            tech.load += 1
            tried.append(tech.id)
            due = self.clock() + timedelta(seconds=float(request["slaHours"]) * self.hour_seconds)
            order = WorkOrder(f"WO-{next(self._numbers):06d}", ticket, tech.id, due)
            self.orders[order.wo_no] = order
            answer = {
                "woNo": order.wo_no,
                "techNo": tech.id,
                "techName": tech.name,
                "team": tech.team,
                "load": tech.load,
                "dueAt": local(due),
            }
            if once[0]:
                self._picks[once] = answer
        return answer

    # -- work orders ---------------------------------------------------------------------------------
    def take(self, body: dict[str, Any]) -> None:
        """Take a DISPATCH or RECALL from the hub; ValueError for anything else."""
        action, wo_no = body.get("action"), body.get("woNo")
        with self._lock:
            order = self.orders.get(str(wo_no))
            if order is None:
                raise ValueError(f"work order {wo_no!r} was never picked (action {action!r})")
            if action == "RECALL":
                if order.state in ("offered", "dispatched"):
                    order.state = "recalled"
                    self.technicians[order.tech_no].load -= 1
                return
            if action != "DISPATCH":
                raise ValueError(f"action {action!r}: expected DISPATCH or RECALL")
            if order.state != "offered":
                self.duplicates += 1  # the same work order again (a redo after a crash): answered once
                return
            order.state = "dispatched"
            first = self.offered[order.ticket_no][0] == order.tech_no
            scenario = self.scenarios.get(order.ticket_no, "resolved")
        if first and scenario == "silent":
            return
        if first and scenario == "reject":
            self._event(order, "REJECT", self.answer_delay, reason="不在服务区域")
            return
        self._event(order, "ACCEPT", self.answer_delay)
        start = self.clock() + timedelta(hours=2)
        self._event(
            order,
            "APPOINT",
            self.answer_delay * 2,
            slotStart=local(start),
            slotEnd=local(start + timedelta(hours=2)),
        )
        late = scenario == "late"  # a quarter of the work order's time past its due time
        finish = (order.due_at - self.clock()).total_seconds() * 1.25 + self.answer_delay * 3 if late else 0.0
        self._event(
            order,
            "COMPLETE",
            max(finish, self.answer_delay * 3 + self.work_delay),
            resultCode="00",
            resultDesc="更换光猫后恢复" if not late else "超时后修复",
        )

    def _event(self, order: WorkOrder, event: str, delay: float, **extra: Any) -> None:
        """Publish one of the technician's events on the work order after ``delay`` seconds."""
        with self._lock:
            if event == "REJECT":
                order.state = "rejected"
                self.technicians[order.tech_no].load -= 1
            elif event == "ACCEPT":
                order.state = "accepted"
            elif event == "COMPLETE":
                order.state = "completed"
                self.technicians[order.tech_no].load -= 1
            order.events.append(event)
        body = {
            "woNo": order.wo_no,
            "ticketNo": order.ticket_no,
            "techNo": order.tech_no,
            "event": event,
            "time": local(self.clock() + timedelta(seconds=delay)),
            **extra,
        }
        self.publish(
            Message(body=body, id=f"{order.wo_no}:{event}", type=f"workorder.{event.lower()}"), delay
        )

    def events_of(self, ticket_no: str) -> list[tuple[str, str, str]]:
        """(work order, technician, event) of a ticket's work orders, in order."""
        with self._lock:
            return [
                (o.wo_no, o.tech_no, e)
                for o in self.orders.values()
                if o.ticket_no == ticket_no
                for e in o.events
            ]


class Delayed(threading.Thread):
    """Publishes messages once their delay has passed (one thread, a heap of due times)."""

    def __init__(self, publish: Callable[[Message], None]) -> None:
        super().__init__(name="sim-workorder-events", daemon=True)
        self.send = publish
        self._heap: list[tuple[float, int, Message]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False

    def __call__(self, message: Message, delay: float) -> None:
        """Queue ``message`` for ``delay`` seconds from now."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), message))
            self._cond.notify()

    def run(self) -> None:
        """Publish each message when due, until stopped."""
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, message = heapq.heappop(self._heap)
            try:
                self.send(message)
            except Exception:  # the queue is away: try again in a second, nothing is dropped
                self(message, 1.0)

    def stop(self) -> None:
        """Stop (messages not yet due are not sent)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()


class WorkOrderService:
    """Serves a :class:`WorkOrderSystem`: the pick on HTTP, orders from the queue, events published."""

    def __init__(
        self,
        project: Project,
        *,
        pick_endpoint: str = "workorder.pick_technician",
        orders_endpoint: str = "workorder.orders_in",
        events_endpoint: str = "workorder.events",
        **options: Any,
    ) -> None:
        from simulators.oss import QueuePublisher

        self.project = project
        self.orders_endpoint = orders_endpoint
        self._publisher = QueuePublisher(project, events_endpoint)
        self._delayed = Delayed(self._publisher)
        self.system = WorkOrderSystem(publish=self._delayed, **options)
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="sim-workorder-orders", daemon=True)
        self._server: ThreadingHTTPServer | None = None
        self.pick_endpoint = pick_endpoint

    def serve(self, port: int) -> str:
        """Start the HTTP pick on 127.0.0.1:``port``, the order reader and the event publisher."""
        system = self.system
        path = "/" + str(self.project.endpoint(self.pick_endpoint).resource)  # type: ignore[attr-defined]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                """Answer a pick: 200 with the work order, 409 when nobody can take it, 400 if malformed."""
                length = int(self.headers.get("Content-Length") or 0)
                if not self.path.endswith(path):
                    self._answer(404, {"error": f"no resource {self.path}: expected POST ...{path}"})
                    return
                try:
                    answer = system.pick(json.loads(self.rfile.read(length) or b"{}"))
                except NoTechnician as exc:
                    self._answer(409, {"error": str(exc)})
                except (ValueError, TypeError) as exc:
                    self._answer(400, {"error": str(exc)})
                else:
                    self._answer(200, answer)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, name="sim-workorder-http", daemon=True).start()
        self._delayed.start()
        self._reader.start()
        return f"work orders on http://127.0.0.1:{self._server.server_address[1]}{path}"

    def _read(self) -> None:
        config = self.project.endpoint(self.orders_endpoint)
        source = self.project.adapter_for(self.orders_endpoint).source(
            config, self.project.context(self.orders_endpoint)
        )
        with source:
            while not self._stop.is_set():
                delivery = source.read(0.2)
                if delivery is None:
                    continue
                body = delivery.message.body
                try:
                    self.system.take(json.loads(body) if isinstance(body, bytes | str) else body)
                except (ValueError, TypeError) as exc:
                    self.refused.append(f"{delivery.message.id}: {exc}")
                delivery.ack()

    def stop(self) -> None:
        """Stop serving (may be called twice)."""
        self._stop.set()
        self._delayed.stop()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        self._publisher.close()
