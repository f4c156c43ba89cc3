"""The generic driver on DBOS: one workflow function walks a YAML process definition.

Each ``call`` is a DBOS step (checkpointed, retried), an ``await`` is ``DBOS.recv`` on a topic named by the
step with the definition's deadline as its (durable) timeout, ``parallel`` branches are child workflows
that report to the parent with ``DBOS.send`` and the parent joins on ``recv`` (all / any / a count), and a
failure undoes the done steps in reverse order (each undo a retried step; a failed undo is set as the
``alert`` event, never swallowed). The definition travels as the workflow's input, so an instance keeps
the definition it started with. The instance id is derived from the business key (``order-<key>``).

Run as a worker process (the kill / restart / two-worker experiments):

    python dbos_driver.py URL --executor A --app-version v1 [--start N] [--queued] [--recover B] [--hold S]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from common import Endpoints, load_definition
from dbos import DBOS, DBOSClient, DBOSConfig, SetWorkflowID

ENDPOINTS: Endpoints | None = None
QUEUE = "processes"


class ProcessFailedError(Exception):
    """A step failed for good (retries exhausted, deadline passed, join impossible)."""


def configure(
    url: str, *, executor_id: str = "local", app_version: str | None = "eval-1", **extra: Any
) -> None:
    """Create the DBOS instance on ``url`` (not launched yet) and the fake endpoints."""
    global ENDPOINTS
    config: DBOSConfig = {
        "name": "esb_proceval",
        "system_database_url": url,
        "executor_id": executor_id,
        "log_level": os.environ.get("ESB_EVAL_LOG", "ERROR"),
        "notification_listener_polling_interval_sec": 0.1,
    }
    if app_version is not None:
        config["application_version"] = app_version
    config.update(extra)  # type: ignore[typeddict-item]
    DBOS(config=config)
    ENDPOINTS = Endpoints(url)


def launch() -> None:
    """Launch DBOS (runs its recovery of this executor's pending workflows) and declare the queue."""
    DBOS.launch()
    DBOS.register_queue(QUEUE, polling_interval_sec=0.2, worker_concurrency=8)  # 2 workers share 30


def _call(endpoint: str, instance: str, step: str) -> str:
    assert ENDPOINTS is not None
    return ENDPOINTS.call(endpoint, instance, step)


def call_step(step_id: str, endpoint: str, key: str, *, undo: bool = False) -> str:
    """Run one endpoint call as a checkpointed DBOS step with retries (3 attempts, 0.2 s apart)."""
    name = f"{'undo:' if undo else ''}{step_id}"
    instance = DBOS.workflow_id or key
    options: Any = {"name": name, "retries_allowed": True, "max_attempts": 3, "interval_seconds": 0.2}
    return DBOS.run_step(options, _call, endpoint, instance, name)


def await_reply(step: dict[str, Any]) -> Any:
    """Wait for the step's correlated reply until its deadline; close the topic either way."""
    spec = step["await"]
    topic = f"{step['id']}:{spec['reply']}"
    DBOS.set_event(f"await:{topic}", {"deadline_s": spec["deadline_s"]})
    reply = DBOS.recv(topic, timeout_seconds=float(spec["deadline_s"]))
    DBOS.set_event(f"closed:{topic}", "timeout" if reply is None else "received")
    if reply is None:
        raise ProcessFailedError(
            f"step {step['id']}: no {spec['reply']} before the {spec['deadline_s']} s deadline"
        )
    if reply.get("status") != "ok":
        raise ProcessFailedError(f"step {step['id']}: {spec['reply']} says {reply}")
    return reply


def run_steps(steps: list[dict[str, Any]], key: str, done: list[dict[str, Any]]) -> None:
    """Walk ``steps`` in order, appending each done step (for compensation)."""
    for step in steps:
        if "parallel" in step:
            run_parallel(step, key, done)
            continue
        try:
            call_step(step["id"], step["call"], key)
        except Exception as error:
            raise ProcessFailedError(f"step {step['id']}: {error}") from error
        done.append(step)
        DBOS.set_event("step", step["id"])
        if "await" in step:
            await_reply(step)


@DBOS.workflow()
def run_branch(steps: list[dict[str, Any]], key: str, parent: str, topic: str, index: int) -> None:
    """One parallel branch: run its steps and report (ok, done steps) to the parent's join topic."""
    done: list[dict[str, Any]] = []
    ok, reason = True, ""
    try:
        run_steps(steps, key, done)
    except ProcessFailedError as error:
        ok, reason = False, str(error)
    DBOS.send(parent, {"index": index, "ok": ok, "reason": reason, "done": done}, topic)


def run_parallel(step: dict[str, Any], key: str, done: list[dict[str, Any]]) -> None:
    """Start the branches as child workflows and join on their reports by the ``join`` policy.

    The done steps of every branch that reported are added to ``done``; branches still running when an
    ``any`` or count join is met are not waited for (a real driver must join or cancel them).
    """
    spec = step["parallel"]
    branches = spec["branches"]
    join = spec.get("join", "all")
    need = len(branches) if join == "all" else 1 if join == "any" else int(join)
    topic = f"join:{step['id']}"
    parent = DBOS.workflow_id
    assert parent is not None
    for index, branch in enumerate(branches):
        with SetWorkflowID(f"{parent}/{step['id']}/{index}"):
            DBOS.start_workflow(run_branch, branch, key, parent, topic, index)
    oks, failures = 0, 0
    while oks < need:
        report = DBOS.recv(topic, timeout_seconds=float(spec.get("deadline_s", 60)))
        if report is None:
            raise ProcessFailedError(f"step {step['id']}: join {join} not met before the deadline")
        done.extend(report["done"])
        oks += 1 if report["ok"] else 0
        failures += 0 if report["ok"] else 1
        if len(branches) - failures < need:
            raise ProcessFailedError(
                f"step {step['id']}: join {join} impossible, {failures} branch(es) failed"
            )
    DBOS.set_event(f"joined:{step['id']}", oks)


def compensate(done: list[dict[str, Any]], key: str) -> list[str]:
    """Undo the done steps in reverse order; return the undos that failed after their retries."""
    failed = []
    for step in reversed(done):
        if "undo" not in step:
            continue
        try:
            call_step(step["id"], step["undo"], key, undo=True)
        except Exception as error:
            failed.append(f"{step['undo']} for {step['id']}: {error}")
    return failed


@DBOS.workflow()
def run_process(definition: dict[str, Any], key: str) -> dict[str, Any]:
    """The generic process: run the definition's steps; on failure compensate; return the end state."""
    done: list[dict[str, Any]] = []
    DBOS.set_event("definition", f"{definition['process']} v{definition['version']}")
    try:
        run_steps(definition["steps"], key, done)
        state, reason = "completed", ""
    except ProcessFailedError as error:
        state, reason = "failed", str(error)
        failed_undos = compensate(done, key)
        if failed_undos:
            DBOS.set_event("alert", failed_undos)  # visible to operators, not silent
            state = "compensation_failed"
    DBOS.set_event("state", state)
    return {"state": state, "reason": reason, "done": [s["id"] for s in done]}


def instance_id(key: str) -> str:
    """Return the instance id of the order ``key`` (correlation by business key)."""
    return f"order-{key}"


def start(definition: dict[str, Any], key: str, *, queued: bool = False) -> Any:
    """Start (or, with ``queued``, enqueue) the process for ``key``; return its handle."""
    with SetWorkflowID(instance_id(key)):
        if queued:
            queue = DBOS.retrieve_queue(QUEUE)
            assert queue is not None
            return queue.enqueue(run_process, definition, key)
        return DBOS.start_workflow(run_process, definition, key)


def deliver_reply(client: DBOSClient, key: str, topic: str, payload: dict[str, Any]) -> str:
    """Deliver a correlated reply the way the hub would: ``sent``, or ``dead-letter: <why>``.

    DBOS itself accepts a message for a workflow that ended or whose ``recv`` timed out (it is stored
    and never read), so the wrapper checks the instance's status and the step's ``closed`` event first.
    """
    wid = instance_id(key)
    status = client.list_workflows(workflow_ids=[wid], load_input=False, load_output=False)
    if not status:
        return "dead-letter: no instance"
    if status[0].status not in ("PENDING", "ENQUEUED"):
        return f"dead-letter: instance {status[0].status}"
    closed = client.get_event(wid, f"closed:{topic}", timeout_seconds=0)
    if closed is not None:
        return f"dead-letter: step closed ({closed})"
    client.send(wid, payload, topic)
    return "sent"


def main() -> int:
    """Worker process: configure, launch (recovery), optionally start instances, stay up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--executor", default="local")
    parser.add_argument("--app-version", default="eval-1")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--prefix", default="w")
    parser.add_argument("--queued", action="store_true")
    parser.add_argument("--definition", default="order_process.yaml")
    parser.add_argument("--hold", type=float, default=3600.0)
    parser.add_argument("--deadline", type=float, default=0.0)
    parser.add_argument("--recover", default="", help="recover this (dead) executor's instances after launch")
    parser.add_argument("--auto-upgrade", action="store_true", help="DBOS auto_upgrade (1 s interval)")
    args = parser.parse_args()
    extra: dict[str, Any] = (
        {"auto_upgrade": True, "auto_upgrade_interval_sec": 1.0} if args.auto_upgrade else {}
    )
    configure(args.url, executor_id=args.executor, app_version=args.app_version or None, **extra)
    launch()
    if args.recover:
        DBOS._recover_pending_workflows([args.recover])  # the takeover the library leaves to its caller
    definition = load_definition(args.definition)
    if args.deadline:
        for step in definition["steps"]:
            if "await" in step:
                step["await"]["deadline_s"] = args.deadline
    for i in range(args.start):
        start(definition, f"{args.prefix}{i}", queued=args.queued)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    time.sleep(args.hold)
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
