"""A TMF622 order POSTed with a real HTTP client to `esb run` comes back 201, reaches IOM, `esb trace
<order id>` shows it, and a listener registered on the hub's event hub receives its events (the create
event, and the state-change event of `esb send` writing a new state to the endpoint)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from esb.project import Project
from simulators.channel import tmf_order, to_json
from simulators.devenv import free_port
from simulators.iom import IOMSimulator
from tests.e2e.hub_process import ROOT, hub_environ
from tests.integration.test_rest_listener import Listener

ROUTE = "channel-rest-order-to-iom"
SECRET = "channel-e2e-secret"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`esb run --route channel-rest-order-to-iom` in a subprocess, on a free port, until it started."""
    port = free_port()
    env = hub_environ(tmp_path / "data", ESB_REST_PORT=str(port), ESB_REST_CHANNEL_PASSWORD=SECRET)
    log = tmp_path / "hub.log"
    command = [sys.executable, "-m", "esb.cli", "--project", str(ROOT), "run", "--route", ROUTE]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b'"hub started"' not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the hub did not start: see {log}"
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}/tmf-api/productOrderingManagement/v4"
        yield {"base": base, "env": env, "log": log, "tmp": tmp_path}
    finally:
        proc.terminate()
        proc.wait(30)


def esb(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run an `esb` command against the hub's data directory."""
    command = [sys.executable, "-m", "esb.cli", "--project", str(ROOT), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_posted_order_reaches_iom_is_traced_and_announced(hub: dict[str, Any]) -> None:
    """201 with the order; IOM gets its order request; the trace shows the route; the listener gets the
    ProductOrderCreateEvent and, after a state change, the ProductOrderStateChangeEvent."""
    auth = ("channel", SECRET)
    listener = Listener()
    registered = requests.post(f"{hub['base']}/hub", json={"callback": listener.url}, auth=auth, timeout=10)
    assert registered.status_code == 201
    body = to_json(tmf_order(42, random.Random(42)))
    answer = requests.post(
        f"{hub['base']}/productOrder",
        data=body,
        auth=auth,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 201
    ident = answer.json()["id"]
    iom = IOMSimulator(Project.load(ROOT, environ=hub["env"]))
    iom.start()
    try:
        deadline = time.monotonic() + 30
        while ident not in iom.received:
            assert time.monotonic() < deadline, "IOM did not receive the order"
            time.sleep(0.1)
    finally:
        iom.stop()
        iom.join(5)
    assert iom.received[ident]["header"]
    trace = esb(hub["env"], "trace", ident)
    assert trace.returncode == 0, trace.stdout + trace.stderr
    assert ROUTE in trace.stdout
    assert "delivered" in trace.stdout
    change = hub["tmp"] / "state.json"
    change.write_text(json.dumps({"id": ident, "state": "inProgress"}), encoding="utf-8")
    sent = esb(hub["env"], "send", "channel.rest_orders", "--body", str(change))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    events = listener.wait(2, timeout=20)
    assert [e["eventType"] for e in events] == ["ProductOrderCreateEvent", "ProductOrderStateChangeEvent"]
    assert events[1]["event"]["productOrder"]["id"] == ident
    got = requests.get(f"{hub['base']}/productOrder/{ident}", auth=auth, timeout=10).json()
    assert got["state"] == "inProgress"
    assert SECRET not in hub["log"].read_text(encoding="utf-8")
