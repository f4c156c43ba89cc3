"""A pool of three simulated OSS instances over real SOAP on loopback, one killed mid-run and restarted:
no message lost, traffic moves off it, its breaker opens and closes again, sticky keys come back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from adapters.pool import PoolAdapter, PoolEndpoint, PoolRequester
from adapters.pool.breaker import CLOSED, HALF_OPEN, OPEN
from adapters.soap.config import SOAPEndpoint
from esb.config.settings import Settings
from esb.context import AdapterContext
from esb.message import Message
from simulators.oss import OSSSimulator
from tests.integration.proxy import CuttingProxy
from tests.integration.sim_clients import PASSWORD, PASSWORD_ENV
from tests.integration.soap_project import REPO

pytestmark = pytest.mark.integration

WSDL = "config/contracts/oss/oss.wsdl"
NAMES = ["oss.activate_a", "oss.activate_b", "oss.activate_c"]
POOL = "oss.activate"


class Instances:
    """Three simulated OSS instances, each on its own loopback port; one can be killed and restarted."""

    def __init__(self) -> None:
        self.sims: dict[str, OSSSimulator] = {}
        self.urls: dict[str, str] = {}
        self.ports: dict[str, int] = {}
        self.history: list[OSSSimulator] = []
        for name in NAMES:
            self.start(name)

    def start(self, name: str) -> None:
        """Serve ``name`` (on its old port when it ran before)."""
        sim = OSSSimulator("esb", PASSWORD, publish=lambda message: None)
        url = sim.serve(port=self.ports.get(name, 0))
        self.ports[name] = sim.server.effective_port
        self.sims[name], self.urls[name] = sim, url
        self.history.append(sim)

    def kill(self, name: str) -> None:
        """Stop ``name``: its port refuses connections."""
        self.sims.pop(name).stop()

    def stop(self) -> None:
        """Stop every instance."""
        for sim in self.sims.values():
            sim.stop()


@pytest.fixture
def instances(monkeypatch: pytest.MonkeyPatch) -> Iterator[Instances]:
    """Three OSS instances on loopback."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    running = Instances()
    yield running
    running.stop()


class Metrics:
    """Engine services with a registry of the test's own (the counters start at zero)."""

    def __init__(self) -> None:
        self.metrics = CollectorRegistry()


def metric(sink: PoolRequester, family: str, **labels: str) -> float:
    """A sample of the pool's metrics."""
    return float(sink.context.services.metrics.get_sample_value(family, {"pool": POOL, **labels}) or 0)


def pool_sink(instances: Instances, tmp_path: Path, **options: Any) -> PoolRequester:
    """The hub's pool over the three instances (SOAP clients with short timeouts)."""
    endpoints: dict[str, Any] = {
        name: SOAPEndpoint.model_validate(
            {
                "adapter": "soap",
                "wsdl": WSDL,
                "operation": "ActivateService",
                "address": instances.urls[name],
                "timeout": "3s",
                "connect_timeout": "1s",
                "auth": {"username": "esb", "password_env": PASSWORD_ENV, "mode": "wsse-digest"},
            }
        )
        for name in NAMES
    }
    config = PoolEndpoint.model_validate({"adapter": "pool", "members": NAMES, **options})
    endpoints[POOL] = config
    context = AdapterContext(
        Settings(data_dir=tmp_path),
        REPO,
        POOL,
        services=Metrics(),
        endpoints=endpoints,  # type: ignore[arg-type]
    )
    sink = PoolAdapter().sink(config, context)
    assert isinstance(sink, PoolRequester)
    return sink


def activate(sink: PoolRequester, order: str, key: str) -> str:
    """Activate ``order``'s broadband through the pool; return the ticket id."""
    body = {
        "idempotencyKey": key,
        "orderId": order,
        "componentId": "broadband",
        "serviceType": "BROADBAND",
        "portId": "HZ-XH-1/1/1",
    }
    reply = sink.request(Message(body), 5.0).body
    assert reply["status"] == "ACCEPTED"
    return str(reply["ticketId"])


def served_by(instances: Instances, key: str) -> str:
    """The one running instance that accepted ``key``."""
    found = [name for name, sim in instances.sims.items() if key in sim.by_key]
    assert len(found) == 1, f"{key} accepted by {found}"
    return found[0]


def state(sink: PoolRequester, name: str) -> str:
    """The breaker state of member ``name``."""
    return next(m.state for m in sink.shared.breakers.snapshot() if m.name == name)


def wait_for(condition: Callable[[], bool], wait: float = 10.0) -> bool:
    """Wait until ``condition()`` holds (at most ``wait`` seconds); return whether it did."""
    deadline = time.monotonic() + wait
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_killed_instance_loses_nothing_and_its_sticky_keys_come_back(
    instances: Instances, tmp_path: Path
) -> None:
    """Sticky by order: kill one instance mid-run, every order still activated once; it comes back."""
    sink = pool_sink(
        instances, tmp_path, strategy="sticky", sticky_key="body.orderId",
        health={"failures": 1, "base_ejection": "500ms", "trial_timeout": "2s"},
    )  # fmt: skip
    orders = [f"O-{i}" for i in range(30)]
    home = {}
    for order in orders:
        activate(sink, order, f"{order}:1")
        home[order] = served_by(instances, f"{order}:1")
    assert set(home.values()) == set(NAMES)
    victim = "oss.activate_b"
    moved = [o for o in orders if home[o] == victim]

    # round 2: the victim dies a third of the way in
    for n, order in enumerate(orders):
        if n == 10:
            instances.kill(victim)
        activate(sink, order, f"{order}:2")
        now = served_by(instances, f"{order}:2")
        if n >= 10 and home[order] == victim:
            assert now != victim
        elif home[order] != victim:
            assert now == home[order], f"{order} left its healthy instance"
    assert state(sink, victim) in (OPEN, HALF_OPEN)
    assert metric(sink, "esb_pool_calls_total", member=victim, outcome="failed") == 1, (
        "one failed call ejected the dead instance; no more traffic went to it"
    )
    status, detail = PoolAdapter().health(sink.endpoint, sink.context)
    assert status == "degraded"
    assert f"{victim} EJECTED" in detail

    # round 3: the victim is back on its port; once its ejection is over one trial closes it
    instances.start(victim)
    assert wait_for(lambda: state(sink, victim) == HALF_OPEN)
    for order in orders:
        activate(sink, order, f"{order}:3")
        assert served_by(instances, f"{order}:3") == home[order], f"{order} did not return to {home[order]}"
    assert state(sink, victim) == CLOSED
    assert PoolAdapter().health(sink.endpoint, sink.context)[0] == "ok"
    assert moved, "the victim had keys of its own"

    # nothing lost, nothing twice: every key of every round accepted by exactly one instance
    for order in orders:
        for round_ in (1, 2, 3):
            key = f"{order}:{round_}"
            holders = [sim for sim in instances.history if key in sim.by_key]
            assert len(holders) == 1, f"{key} accepted {len(holders)} times"
    sink.close()


def test_round_robin_moves_traffic_off_a_killed_instance(instances: Instances, tmp_path: Path) -> None:
    """Round robin: after the kill every call goes to the two others; none fails, none is lost."""
    sink = pool_sink(instances, tmp_path, health={"failures": 2, "base_ejection": "30s"})
    taken = []
    for n in range(30):
        if n == 9:
            instances.kill("oss.activate_c")
        activate(sink, f"R-{n}", f"R-{n}")
        taken.append(served_by(instances, f"R-{n}"))
    assert set(taken[:9]) == set(NAMES)
    assert set(taken[9:]) == {"oss.activate_a", "oss.activate_b"}
    assert state(sink, "oss.activate_c") == OPEN
    assert metric(sink, "esb_pool_moves_total") == 2
    sink.close()


def test_an_instance_dying_mid_call_loses_nothing_and_the_retry_keeps_the_key(
    instances: Instances, tmp_path: Path
) -> None:
    """The connection to an instance dies while it holds a call: the message goes on to the next
    instance with the same idempotency key (the dead one may have acted on it: receivers dedupe)."""
    victim = "oss.activate_a"
    slow = instances.sims[victim]
    slow.latency = 1.0  # the call stays in hand long enough to cut it
    proxy = CuttingProxy(instances.ports[victim])
    instances.urls[victim] = instances.urls[victim].replace(f":{instances.ports[victim]}/", f":{proxy.port}/")
    sink = pool_sink(instances, tmp_path, strategy="failover", health={"failures": 1, "base_ejection": "30s"})
    result: dict[str, str] = {}
    calls_before = len(slow.calls)
    caller = threading.Thread(target=lambda: result.update(ticket=activate(sink, "M-1", "M-1:key")))
    caller.start()
    # cut only once the instance has read the call (a connection through the proxy is not enough: under
    # load the request may still be on its way, and an instance that never read it cannot act on it)
    assert wait_for(lambda: len(proxy._live) >= 2 and len(slow.calls) > calls_before), (
        "the call reached the instance"
    )
    proxy.close()
    proxy.cut()
    caller.join(10)
    assert result.get("ticket"), "the message was delivered through another instance"
    assert "M-1:key" in instances.sims["oss.activate_b"].by_key
    assert wait_for(lambda: "M-1:key" in slow.by_key), "the dead connection's call was acted on too"
    assert state(sink, victim) == OPEN
    sink.close()
