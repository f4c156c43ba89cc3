"""Issue 16's e2e: `esb run` with a route to a pool of three simulated OSS instances (real SOAP on
loopback); one instance is killed mid-run and restarted. Nothing is lost or taken twice, its traffic
moves at once (one failed call), `esb health` shows it ejected and why, its breaker closes again when
it is back, and its sticky keys return to it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from esb.message import Message
from esb.project import Project
from simulators.oss import OSSSimulator
from tests.e2e.hub_process import ROOT, hub_environ

NAMES = ["activate_a", "activate_b", "activate_c"]
VICTIM = "activate_b"
PASSWORD_ENV, PASSWORD = "TEST_OSS_PASSWORD", "oss-secret"
ROUTE = "pool-activate"
ORDERS = [f"O-{i}" for i in range(24)]
#: The queue's JSON to the SOAP client's request dict.
PASS_THROUGH = """kind: jmespath
description: the activation request as it came
input: json
output: json
rules:
  idempotencyKey: idempotencyKey
  orderId: orderId
  componentId: componentId
  serviceType: serviceType
  portId: portId
"""


class Instances:
    """Three simulated OSS instances on loopback; one can be killed and started again on its port."""

    def __init__(self) -> None:
        self.sims: dict[str, OSSSimulator] = {}
        self.ports: dict[str, int] = {}
        self.every: list[OSSSimulator] = []
        for name in NAMES:
            self.start(name)

    def start(self, name: str) -> None:
        """Serve ``name`` (on its old port when it ran before)."""
        sim = OSSSimulator("esb", PASSWORD, publish=lambda message: None)
        sim.serve(port=self.ports.get(name, 0))
        self.ports[name] = sim.server.effective_port
        self.sims[name] = sim
        self.every.append(sim)

    def kill(self, name: str) -> None:
        """Stop ``name``: its port refuses connections."""
        self.sims.pop(name).stop()

    def accepted(self, key: str) -> list[str]:
        """The running instances that accepted ``key``."""
        return [name for name, sim in self.sims.items() if key in sim.by_key]

    def accepted_anywhere(self, key: str) -> int:
        """How many instances, of every run, accepted ``key``."""
        return sum(1 for sim in self.every if key in sim.by_key)

    def stop(self) -> None:
        """Stop every running instance."""
        for sim in self.sims.values():
            sim.stop()


def make_project(tmp: Path, ports: dict[str, int]) -> Path:
    """A project: queue ``orders.in`` -> pool ``oss.activate`` (sticky by order) over three OSS clients."""
    (tmp / "config").mkdir(parents=True)
    (tmp / "config" / "contracts").symlink_to(ROOT / "config" / "contracts")
    (tmp / "config" / "settings.yaml").write_text(
        f"data_dir: {tmp / 'var'}\nmonitoring: {{enabled: false}}\n", encoding="utf-8"
    )
    client = {
        "adapter": "soap",
        "wsdl": "config/contracts/oss/oss.wsdl",
        "operation": "ActivateService",
        "timeout": "3s",
        "connect_timeout": "1s",
        "auth": {"username": "esb", "password_env": PASSWORD_ENV, "mode": "wsse-digest"},
    }
    endpoints: dict[str, Any] = {
        name: {**client, "address": f"http://127.0.0.1:{ports[name]}/services/OSSActivation"}
        for name in NAMES
    }
    endpoints["activate"] = {
        "adapter": "pool",
        "members": [f"oss.{name}" for name in NAMES],
        "strategy": "sticky",
        "sticky_key": "body.orderId",
        "health": {"failures": 1, "base_ejection": "1s", "trial_timeout": "2s"},
    }
    systems = {
        "systems": {
            "orders": {"name": "Orders", "endpoints": {"in": {"adapter": "queue", "queue": "pool.orders"}}},
            "dlq": {"name": "DLQ", "endpoints": {"pool": {"adapter": "queue", "queue": "pool.dlq"}}},
            "oss": {"name": "OSS", "endpoints": endpoints},
        }
    }
    (tmp / "config" / "systems.yaml").write_text(yaml.safe_dump(systems, sort_keys=False), encoding="utf-8")
    (tmp / "transforms" / "t").mkdir(parents=True)
    (tmp / "transforms" / "t" / "activate.yaml").write_text(PASS_THROUGH, encoding="utf-8")
    route = {
        "id": ROUTE,
        "from": "orders.in",
        "steps": [{"transform": "t/activate"}],
        "to": "oss.activate",
        "on_error": {"redeliver": {"max": 3, "initial": "100ms"}, "dead_letter": "dlq.pool"},
    }
    (tmp / "routes.yaml").write_text(yaml.safe_dump({"routes": [route]}, sort_keys=False), encoding="utf-8")
    return tmp


def esb(project: Path, *args: str) -> str:
    """Run an esb command on the project; return its output."""
    result = subprocess.run(
        [sys.executable, "-m", "esb.cli", "--project", str(project), *args],
        env=hub_environ(project / "var", **{PASSWORD_ENV: PASSWORD}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


def wait_for(condition: Callable[[], bool], wait: float = 30.0) -> bool:
    """Wait until ``condition()`` holds (at most ``wait`` seconds); return whether it did."""
    deadline = time.monotonic() + wait
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def instances() -> Iterator[Instances]:
    """Three OSS instances on loopback."""
    running = Instances()
    yield running
    running.stop()


def test_a_killed_oss_instance_loses_nothing_and_comes_back(instances: Instances, tmp_path: Path) -> None:
    """Kill one of three OSS instances mid-run, then restart it: every order once, traffic moves, the
    breaker opens (esb health says why) and closes, sticky keys return."""
    project_dir = make_project(tmp_path / "project", instances.ports)
    project = Project.load(project_dir, environ={PASSWORD_ENV: PASSWORD})
    inlet = project.adapter_for("orders.in").sink(project.endpoint("orders.in"), project.context("orders.in"))
    inlet.connect()
    log = tmp_path / "hub.log"
    with log.open("ab") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "esb.cli", "--project", str(project_dir), "run", "--route", ROUTE],
            env=hub_environ(project_dir / "var", **{PASSWORD_ENV: PASSWORD}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def publish(round_: int, orders: list[str]) -> None:
        for order in orders:
            body = {
                "idempotencyKey": f"{order}:{round_}", "orderId": order, "componentId": "broadband",
                "serviceType": "BROADBAND", "portId": "HZ-XH-1/1/1",
            }  # fmt: skip
            inlet.write(Message(orjson.dumps(body), id=f"{order}:{round_}"))

    def all_accepted(round_: int) -> bool:
        return all(instances.accepted_anywhere(f"{o}:{round_}") for o in ORDERS)

    try:
        publish(1, ORDERS)
        assert wait_for(lambda: all_accepted(1)), log.read_text()
        home = {o: instances.accepted(f"{o}:1")[0] for o in ORDERS}
        assert set(home.values()) == set(NAMES)

        # round 2: the victim is killed a third of the way in
        publish(2, ORDERS[:8])
        assert wait_for(lambda: all(instances.accepted_anywhere(f"{o}:2") for o in ORDERS[:8]))
        instances.kill(VICTIM)
        publish(2, ORDERS[8:])
        assert wait_for(lambda: all_accepted(2)), log.read_text()
        for order in ORDERS[8:]:
            now = instances.accepted(f"{order}:2")
            assert now == ([home[order]] if home[order] != VICTIM else now), order
            assert VICTIM not in now
        failed = [line for line in log.read_text().splitlines() if '"pool member failed"' in line]
        assert len(failed) == 1, "one failed call ejected the dead instance; no later message went to it"
        assert f"oss.{VICTIM}" in failed[0]
        health = esb(project_dir, "health")
        assert f"oss.{VICTIM} EJECTED" in health, health
        assert "Connection refused" in health or "connection refused" in health.lower(), health

        # round 3: the victim is back on its port; once its ejection is over its keys return to it
        instances.start(VICTIM)
        assert wait_for(lambda: "trial call due" in esb(project_dir, "health"), wait=15)
        publish(3, ORDERS)
        assert wait_for(lambda: all_accepted(3)), log.read_text()
        for order in ORDERS:
            assert instances.accepted(f"{order}:3") == [home[order]], (
                f"{order} did not return to {home[order]}"
            )
        health = esb(project_dir, "health")
        assert f"oss.{VICTIM} ok" in health, health
    finally:
        hub.terminate()
        hub.wait(30)
        inlet.close()

    # nothing lost, nothing taken twice
    for order in ORDERS:
        for round_ in (1, 2, 3):
            assert instances.accepted_anywhere(f"{order}:{round_}") == 1, f"{order}:{round_}"
