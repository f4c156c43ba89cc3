"""The generic driver on SpiffWorkflow: the YAML definition becomes BPMN, Spiff runs it, we persist it.

What SpiffWorkflow gives: a BPMN interpreter (parser, task tree, gateways, timer and message events)
and a JSON serializer. Everything durable is ours, in this file: the ``spiff_instances`` table (the
serialized workflow, status, next timer, a lease), saving after every task, the timer poller, the
lease that keeps two workers off one instance, delivering replies, and compensation (Spiff 3.2.0 has
no BPMN compensation events: the driver undoes the completed call tasks in reverse order).

Translation: a ``call`` is a script task ``call(endpoint, step)``; an ``await`` an event-based gateway
between a message catch event (the reply) and a timer catch event (the deadline) followed by a script
task that fails; ``parallel`` a parallel gateway split and join (join ``all`` only: Spiff has no
complex gateway, so ``any`` and counts are refused).

Run as a worker process (kill / restart experiments):

    python spiff_driver.py URL [--start N] [--prefix p] [--deadline S] [--hold S]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import sqlalchemy as sa
from common import Endpoints, load_definition
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.task import TaskState

NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
INSTANCES = sa.Table(
    "spiff_instances",
    sa.MetaData(),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(100), nullable=False, unique=True),
    sa.Column("process", sa.String(100), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("wake_at", sa.Float),
    sa.Column("owner", sa.String(60)),
    sa.Column("lease_until", sa.Float),
    sa.Column("alert", sa.Text),
)
SERIALIZER = BpmnWorkflowSerializer()
LEASE_S = float(os.environ.get("ESB_EVAL_LEASE", "30"))


class UnsupportedError(ValueError):
    """The definition asks for something the BPMN translation cannot express on SpiffWorkflow."""


def to_bpmn(definition: dict[str, Any]) -> tuple[str, str]:
    """Return (process id, BPMN XML) for ``definition``."""
    pid = f"{definition['process']}_v{definition['version']}"
    nodes: list[str] = ['<bpmn:startEvent id="start"/>']
    flows: list[tuple[str, str]] = []
    messages: set[str] = set()

    def sequence(steps: list[dict[str, Any]], prev: str) -> str:
        for step in steps:
            sid = step["id"]
            if "parallel" in step:
                spec = step["parallel"]
                if spec.get("join", "all") != "all":
                    raise UnsupportedError(
                        f"step {sid}: join {spec['join']!r} (SpiffWorkflow has no complex gateway)"
                    )
                nodes.append(f'<bpmn:parallelGateway id="{sid}_split"/>')
                nodes.append(f'<bpmn:parallelGateway id="{sid}_join"/>')
                flows.append((prev, f"{sid}_split"))
                for branch in spec["branches"]:
                    flows.append((sequence(branch, f"{sid}_split"), f"{sid}_join"))
                prev = f"{sid}_join"
                continue
            script = escape(f"call({step['call']!r}, {sid!r})")
            nodes.append(f'<bpmn:scriptTask id="{sid}"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>')
            flows.append((prev, sid))
            prev = sid
            if "await" in step:
                reply, deadline = step["await"]["reply"], float(step["await"]["deadline_s"])
                messages.add(reply)
                fail = escape(f"fail('step {sid}: no {reply} before the {deadline} s deadline')")
                nodes.extend(
                    [
                        f'<bpmn:eventBasedGateway id="{sid}_wait"/>',
                        f'<bpmn:intermediateCatchEvent id="{sid}_reply"><bpmn:messageEventDefinition'
                        f' messageRef="msg_{reply}"/></bpmn:intermediateCatchEvent>',
                        f'<bpmn:intermediateCatchEvent id="{sid}_deadline">'
                        f'<bpmn:timerEventDefinition><bpmn:timeDuration>"PT{deadline}S"</bpmn:timeDuration>'
                        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>",
                        f'<bpmn:scriptTask id="{sid}_timeout">'
                        f"<bpmn:script>{fail}</bpmn:script></bpmn:scriptTask>",
                        f'<bpmn:endEvent id="{sid}_timeout_end"/>',
                    ]
                )
                flows.extend([
                    (sid, f"{sid}_wait"), (f"{sid}_wait", f"{sid}_reply"), (f"{sid}_wait", f"{sid}_deadline"),
                    (f"{sid}_deadline", f"{sid}_timeout"), (f"{sid}_timeout", f"{sid}_timeout_end"),
                ])  # fmt: skip
                prev = f"{sid}_reply"
        return prev

    last = sequence(definition["steps"], "start")
    nodes.append('<bpmn:endEvent id="end"/>')
    flows.append((last, "end"))
    body = (
        "\n".join(nodes)
        + "\n"
        + "\n".join(
            f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
            for i, (a, b) in enumerate(flows)
        )
    )
    msgs = "".join(f'<bpmn:message id="msg_{m}" name="{m}"/>' for m in sorted(messages))
    xml = (
        f'<bpmn:definitions xmlns:bpmn="{NS}" id="defs" targetNamespace="esb">{msgs}'
        f'<bpmn:process id="{pid}" isExecutable="true">{body}</bpmn:process></bpmn:definitions>'
    )
    return pid, xml


def undo_map(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Return step id -> undo endpoint for every step (branches included) that names one."""
    out: dict[str, str] = {}
    for step in steps:
        if "parallel" in step:
            for branch in step["parallel"]["branches"]:
                out.update(undo_map(branch))
        elif "undo" in step:
            out[step["id"]] = step["undo"]
    return out


class Driver:
    """Instances of one definition on one database: start, advance, deliver, poll timers, compensate."""

    def __init__(
        self, url: str, definition: dict[str, Any], *, owner: str | None = None, save_each_task: bool = True
    ) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        INSTANCES.metadata.create_all(self.engine)
        self.endpoints = Endpoints(url)
        self.definition = definition
        self.undo = undo_map(definition["steps"])
        self.pid, self.xml = to_bpmn(definition)
        parser = BpmnParser()
        parser.add_bpmn_str(self.xml.encode())
        self.spec = parser.get_spec(self.pid)
        self.owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.save_each_task = save_each_task
        self.current: str | None = None

    # -- the script engine: what a script task may call
    def _engine(self, instance: str) -> PythonScriptEngine:
        def call(endpoint: str, step: str) -> str:
            return self.endpoints.call(endpoint, instance, step)

        def fail(reason: str) -> None:
            raise RuntimeError(reason)

        return PythonScriptEngine(environment=TaskDataEnvironment({"call": call, "fail": fail}))

    # -- persistence and the lease (ours: Spiff has neither)
    def _claim(self, iid: str) -> bool:
        """Take the instance's lease. The status condition was added after the two-worker experiment:
        without it a worker that had selected a due instance claimed it after the other one ended it,
        found nothing to run, and saved it back as ``waiting`` (16 of 30 instances lost their end state).
        """
        now = time.time()
        with self.engine.begin() as conn:
            done = conn.execute(
                INSTANCES.update()
                .where(INSTANCES.c.id == iid)
                .where(
                    INSTANCES.c.status.in_(["new", "running", "waiting"])
                )  # never an ended one (see below)
                .where(
                    sa.or_(
                        INSTANCES.c.owner.is_(None),
                        INSTANCES.c.lease_until < now,
                        INSTANCES.c.owner == self.owner,
                    )
                )
                .values(owner=self.owner, lease_until=now + LEASE_S)
            )
        return done.rowcount == 1

    def _save(
        self, iid: str, wf: BpmnWorkflow, status: str, *, release: bool = False, alert: str | None = None
    ) -> None:
        values: dict[str, Any] = {
            "state": SERIALIZER.serialize_json(wf),
            "status": status,
            "wake_at": self._wake_at(wf),
        }
        if release:
            values.update(owner=None, lease_until=None)
        if alert is not None:
            values["alert"] = alert
        with self.engine.begin() as conn:
            conn.execute(
                INSTANCES.update()
                .where(INSTANCES.c.id == iid)
                .where(INSTANCES.c.owner == self.owner)
                .values(**values)
            )

    @staticmethod
    def _wake_at(wf: BpmnWorkflow) -> float | None:
        """Return the earliest due time of a waiting timer (Spiff keeps it in the task's internal data).

        ``waiting_events()`` does not show it for an event-based gateway (a MultipleEventDefinition on
        the gateway task, value None), so the driver reads ``event_value`` from the waiting tasks.
        """
        dues = [t.internal_data.get("event_value") for t in wf.get_tasks(state=TaskState.WAITING)]
        stamps = [datetime.fromisoformat(d).timestamp() for d in dues if isinstance(d, str)]
        return min(stamps) if stamps else None

    def _load(self, iid: str) -> BpmnWorkflow:
        with self.engine.connect() as conn:
            state = conn.execute(sa.select(INSTANCES.c.state).where(INSTANCES.c.id == iid)).scalar_one()
        wf = SERIALIZER.deserialize_json(state)
        wf.script_engine = self._engine(iid)
        return wf

    def instance_id(self, key: str) -> str:
        """Return the instance id of business key ``key``."""
        return f"order-{key}"

    def start(self, key: str) -> str:
        """Create the instance for ``key`` and run it until it waits or ends; return its id."""
        iid = self.instance_id(key)
        wf = BpmnWorkflow(self.spec, script_engine=self._engine(iid))
        with self.engine.begin() as conn:
            conn.execute(INSTANCES.insert().values(id=iid, key=key, process=self.pid, status="new",
                                                   state=SERIALIZER.serialize_json(wf), owner=self.owner,
                                                   lease_until=time.time() + LEASE_S))  # fmt: skip
        self._run(iid, wf)
        return iid

    def advance(self, iid: str, event: BpmnEvent | None = None) -> str:
        """Claim, load, deliver ``event`` if any, run ready tasks and timers, save; return the outcome."""
        if not self._claim(iid):
            return "busy"
        wf = self._load(iid)
        wf.refresh_timers()  # before the event: a deadline that passed must win over a late reply
        if event is not None:
            try:
                wf.send_event(event)
            except Exception as error:
                self._save(iid, wf, self.status(iid) or "waiting", release=True)
                return f"dead-letter: {error}"
        self._run(iid, wf)
        return "applied"

    def _run(self, iid: str, wf: BpmnWorkflow) -> None:
        def saved(task: Any) -> None:
            if self.save_each_task:
                self._save(iid, wf, "running")

        try:
            wf.refresh_timers()
            wf.do_engine_steps(did_complete_task=saved)
        except Exception as error:
            self._compensate(iid, wf, str(error))
            return
        self._save(iid, wf, "completed" if wf.completed else "waiting", release=True)

    def _compensate(self, iid: str, wf: BpmnWorkflow, reason: str) -> None:
        done = sorted(
            (t for t in wf.get_tasks(state=TaskState.COMPLETED) if t.task_spec.name in self.undo),
            key=lambda t: t.last_state_change,
        )
        failed = []
        for task in reversed(done):
            for attempt in range(3):
                try:
                    self.endpoints.call(self.undo[task.task_spec.name], iid, f"undo:{task.task_spec.name}")
                    break
                except Exception as error:
                    if attempt == 2:
                        failed.append(f"{self.undo[task.task_spec.name]} for {task.task_spec.name}: {error}")
                    time.sleep(0.2)
        status = "compensation_failed" if failed else "failed"
        self._save(iid, wf, status, release=True, alert=json.dumps(failed) if failed else None)

    def deliver(self, key: str, message: str, payload: dict[str, Any]) -> str:
        """Deliver a correlated reply to the instance of ``key``: ``applied`` or ``dead-letter: why``."""
        iid = self.instance_id(key)
        status = self.status(iid)
        if status is None:
            return "dead-letter: no instance"
        if status not in ("waiting", "running", "new"):
            return f"dead-letter: instance {status}"
        return self.advance(iid, BpmnEvent(MessageEventDefinition(message), payload))

    def status(self, iid: str) -> str | None:
        """Return the instance's status (None if there is no such instance)."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(INSTANCES.c.status).where(INSTANCES.c.id == iid)
            ).scalar_one_or_none()

    def row(self, iid: str) -> sa.Row[Any]:
        """Return the instance's row."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(INSTANCES).where(INSTANCES.c.id == iid)).one()

    def poll(self) -> int:
        """Advance every instance whose timer is due or whose lease expired; return how many."""
        now = time.time()
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    sa.select(INSTANCES.c.id).where(
                        sa.or_(
                            sa.and_(INSTANCES.c.status == "waiting", INSTANCES.c.wake_at <= now),
                            sa.and_(
                                INSTANCES.c.status.in_(["new", "running"]), INSTANCES.c.lease_until < now
                            ),
                        )
                    )
                )
                .scalars()
                .all()
            )
        for iid in due:
            self.advance(iid)
        return len(due)


def main() -> int:
    """Worker process: start instances, then poll timers until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--prefix", default="s")
    parser.add_argument("--deadline", type=float, default=0.0)
    parser.add_argument("--definition", default="order_process.yaml")
    parser.add_argument("--hold", type=float, default=3600.0)
    args = parser.parse_args()
    definition = load_definition(args.definition)
    if args.deadline:
        for step in definition["steps"]:
            if "await" in step:
                step["await"]["deadline_s"] = args.deadline
    driver = Driver(args.url, definition)
    for i in range(args.start):
        driver.start(f"{args.prefix}{i}")
    print(json.dumps({"ready": os.getpid()}), flush=True)
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        try:
            driver.poll()
        except Exception as error:  # the database is down: keep polling, as a hub worker would
            print(f"poll failed: {type(error).__name__}: {str(error)[:200]}", flush=True)
            time.sleep(1.0)
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
