"""Endpoint pools: strategies, passive health (ejection, growth, max share, panic), breakers' trials,
sticky keys returning after recovery, failover without loss, metrics and health lines."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from adapters.pool import PoolAdapter, PoolEndpoint, PoolRequester, PoolSink
from adapters.pool.breaker import CLOSED, HALF_OPEN, OPEN
from adapters.pool.shared import PoolShared
from adapters.pool.status import read_status, status_dir
from adapters.pool.strategies import Weighted
from esb.config.settings import Settings
from esb.config.systems import EndpointConfig
from esb.context import AdapterContext
from esb.exceptions import ConfigError, MessageError, RemoteError, TransportError
from esb.message import Message
from esb.registry import ADAPTERS
from esb.testing import BROKER, FakeClock, MemoryEndpoint

MEMBERS = ["oss.a", "oss.b", "oss.c"]


class FakeServices:
    """Engine services for tests: only a private metrics registry."""

    def __init__(self) -> None:
        self.metrics = CollectorRegistry()


def context(tmp_path: Path, endpoints: dict[str, Any], name: str = "oss.pool") -> AdapterContext:
    """The adapter context of pool ``name`` in a project with ``endpoints``."""
    return AdapterContext(
        settings=Settings(data_dir=tmp_path),
        project_dir=tmp_path,
        endpoint=name,
        services=FakeServices(),  # type: ignore[arg-type]
        endpoints=endpoints,
    )


class Pool:
    """A pool over memory members with a fake clock."""

    def __init__(self, tmp_path: Path, members: list[Any] | None = None, **options: Any) -> None:
        members = members or list(MEMBERS)
        names = [m if isinstance(m, str) else m["endpoint"] for m in members]
        self.config = PoolEndpoint.model_validate({"adapter": "pool", "members": members, **options})
        endpoints: dict[str, Any] = {n: MemoryEndpoint(adapter="memory") for n in names}
        endpoints["oss.pool"] = self.config
        self.context = context(tmp_path, endpoints)
        self.clock = FakeClock(1000.0)
        self.shared = PoolShared(self.config, self.context, clock=self.clock)
        self.sink = PoolRequester(self.config, self.context, self.shared)

    def send(self, count: int, **body: Any) -> list[str]:
        """Write ``count`` messages; return which member took each."""
        taken = []
        for i in range(count):
            message = Message({"n": i, **body})
            self.sink.write(message)
            taken.append(next(n for n in self.names if any(m.id == message.id for m in BROKER.written(n))))
        return taken

    @property
    def names(self) -> list[str]:
        """The members' names."""
        return [m.endpoint for m in self.config.members]

    def state(self, name: str) -> str:
        """The breaker state of member ``name``."""
        return next(m.state for m in self.shared.breakers.snapshot() if m.name == name)

    def metric(self, family: str, **labels: str) -> float:
        """A sample of the pool's metrics."""
        value = self.context.services.metrics.get_sample_value(family, {"pool": "oss.pool", **labels})
        return 0.0 if value is None else float(value)


def down(name: str, calls: int = 1000) -> None:
    """Make member ``name`` fail its next calls with a transport error."""
    BROKER.fail_next(name, *[TransportError(f"{name} refused the connection") for _ in range(calls)])


def up(name: str) -> None:
    """Let member ``name`` answer again."""
    BROKER.box(name).failures.clear()


# -- strategies ----------------------------------------------------------------------------------------
def test_round_robin_gives_each_member_in_turn(tmp_path: Path) -> None:
    """Round robin sends to a, b, c, a, b, c."""
    assert Pool(tmp_path).send(6) == MEMBERS * 2


def test_weighted_spreads_by_weight_without_bursts(tmp_path: Path) -> None:
    """Weights 5, 1, 1 give a a b a c a a (nginx's smooth sequence), then the same again."""
    pool = Pool(tmp_path, [{"endpoint": "oss.a", "weight": 5}, "oss.b", "oss.c"], strategy="weighted")
    taken = pool.send(14)
    assert Counter(taken) == {"oss.a": 10, "oss.b": 2, "oss.c": 2}
    assert [t[-1] for t in taken[:7]] == list("aabacaa")
    assert taken[7:] == taken[:7]


def test_weighted_order_puts_heavier_members_first_after_the_pick() -> None:
    """The members after the weighted pick are offered heaviest first (where a failed call goes on)."""
    from adapters.pool.config import Member

    order = Weighted([Member(endpoint="x.a", weight=1), Member(endpoint="x.b", weight=3)]).order(None)
    assert order == ["x.b", "x.a"]


def test_failover_sends_everything_to_the_first_healthy_member(tmp_path: Path) -> None:
    """Failover uses the first member while it answers, the second once it is down."""
    pool = Pool(tmp_path, strategy="failover")
    assert pool.send(3) == ["oss.a"] * 3
    down("oss.a")
    assert pool.send(3) == ["oss.b"] * 3


def test_sticky_keeps_a_key_on_one_member_and_spreads_keys(tmp_path: Path) -> None:
    """One account always goes to one member; many accounts reach every member."""
    pool = Pool(tmp_path, strategy="sticky", sticky_key="body.account")
    first = pool.send(1, account="A-1")[0]
    assert pool.send(5, account="A-1") == [first] * 5
    homes = {pool.send(1, account=f"A-{i}")[0] for i in range(60)}
    assert homes == set(MEMBERS)


def test_sticky_key_returns_to_its_member_after_recovery(tmp_path: Path) -> None:
    """A key moves while its member is ejected and comes back once the member's trial succeeds."""
    pool = Pool(tmp_path, strategy="sticky", sticky_key="body.account", health={"failures": 1})
    home = pool.send(1, account="A-7")[0]
    down(home)
    moved = pool.send(3, account="A-7")
    assert home not in moved
    assert len(set(moved)) == 1
    assert pool.state(home) == OPEN
    up(home)
    pool.clock.advance(5.0)
    assert pool.send(2, account="A-7") == [home, home]
    assert pool.state(home) == CLOSED


def test_a_message_without_the_sticky_key_is_refused_clearly(tmp_path: Path) -> None:
    """A message whose sticky key is missing is a MessageError naming the expression."""
    pool = Pool(tmp_path, strategy="sticky", sticky_key="body.account")
    with pytest.raises(MessageError, match=r"sticky_key 'body.account' gave None"):
        pool.sink.write(Message({"other": 1}))


# -- passive health ------------------------------------------------------------------------------------
def test_a_failed_call_moves_to_the_next_member_with_the_same_idempotency_key(tmp_path: Path) -> None:
    """A transport failure sends the message on to the next member, once, with one idempotency key."""
    pool = Pool(tmp_path)
    down("oss.a", 1)
    message = Message({"n": 1}, id="m-1")
    pool.sink.write(message)
    assert [m.id for m in BROKER.written("oss.b")] == ["m-1"]
    assert BROKER.written("oss.b")[0].headers["idempotency-key"] == "m-1"
    assert BROKER.written("oss.a") == []
    assert BROKER.written("oss.c") == []
    assert pool.metric("esb_pool_moves_total") == 1


def test_an_existing_idempotency_key_is_kept(tmp_path: Path) -> None:
    """A message that already has an idempotency key (a process call's) keeps it."""
    pool = Pool(tmp_path)
    pool.sink.write(Message({"n": 1}, headers={"idempotency-key": "p-1:activate"}))
    assert BROKER.written("oss.a")[0].headers["idempotency-key"] == "p-1:activate"


def test_consecutive_failures_eject_a_member(tmp_path: Path) -> None:
    """A member that fails ``failures`` calls in a row is ejected and gets no more traffic."""
    pool = Pool(tmp_path, health={"failures": 2})
    down("oss.b")
    pool.send(6)
    assert pool.state("oss.b") == OPEN
    assert pool.metric("esb_pool_ejections_total", member="oss.b") == 1
    calls_before = pool.metric("esb_pool_calls_total", member="oss.b", outcome="failed")
    assert set(pool.send(6)) == {"oss.a", "oss.c"}
    assert pool.metric("esb_pool_calls_total", member="oss.b", outcome="failed") == calls_before


def test_a_success_resets_the_consecutive_count(tmp_path: Path) -> None:
    """Failures that are not consecutive never eject."""
    pool = Pool(tmp_path, strategy="failover", health={"failures": 2})
    for _ in range(3):
        down("oss.a", 1)
        pool.send(2)
    assert pool.state("oss.a") == CLOSED


def test_ejection_time_grows_with_each_ejection(tmp_path: Path) -> None:
    """The n-th ejection lasts n times the base, capped at max_ejection."""
    pool = Pool(
        tmp_path, strategy="failover", health={"failures": 1, "base_ejection": 10, "max_ejection": 25}
    )
    down("oss.a")
    pool.send(1)
    breakers = pool.shared.breakers
    until = next(m for m in breakers.snapshot() if m.name == "oss.a").ejected_until
    assert until == pool.clock.now + 10
    pool.clock.advance(10)
    pool.send(1)  # the trial fails: ejected again, for 20 s
    assert next(m for m in breakers.snapshot() if m.name == "oss.a").ejected_until == pool.clock.now + 20
    pool.clock.advance(20)
    pool.send(1)  # third: capped at 25 s
    assert next(m for m in breakers.snapshot() if m.name == "oss.a").ejected_until == pool.clock.now + 25
    pool.clock.advance(24)
    assert pool.send(1) == ["oss.b"]
    assert pool.state("oss.a") == OPEN


def test_healthy_time_takes_ejections_off_the_count(tmp_path: Path) -> None:
    """A member healthy for long after its ejection is next ejected for the base time again."""
    pool = Pool(tmp_path, strategy="failover", health={"failures": 1, "base_ejection": 10})
    down("oss.a", 1)
    pool.send(1)
    pool.clock.advance(10)
    pool.send(1)  # trial succeeds: closed
    assert pool.state("oss.a") == CLOSED
    pool.clock.advance(100)
    down("oss.a", 1)
    pool.send(1)
    assert (
        next(m for m in pool.shared.breakers.snapshot() if m.name == "oss.a").ejected_until
        == pool.clock.now + 10
    )


def test_at_most_the_max_share_is_ejected(tmp_path: Path) -> None:
    """With a third of the pool allowed out, a second failing member stays in (and is reported)."""
    pool = Pool(tmp_path, health={"failures": 1, "max_ejected_share": 0.34})
    down("oss.a")
    down("oss.b")
    taken = pool.send(6)
    assert pool.state("oss.a") == OPEN
    assert pool.state("oss.b") == CLOSED
    assert set(taken) == {"oss.c"}
    held = next(m for m in pool.shared.breakers.snapshot() if m.name == "oss.b")
    assert held.held_in
    assert held.consecutive > 1


def test_panic_mode_tries_every_member_when_all_are_ejected(tmp_path: Path) -> None:
    """With every member ejected the pool still calls them, and the first that answers is closed."""
    pool = Pool(tmp_path, strategy="failover", health={"failures": 1, "max_ejected_share": 1.0})
    for name in MEMBERS:
        down(name)
    with pytest.raises(TransportError, match=r"no member of the pool took .* \[oss\.pool\]$"):
        pool.sink.write(Message({"n": 0}))
    assert [pool.state(n) for n in MEMBERS] == [OPEN] * 3
    up("oss.c")
    assert pool.send(1) == ["oss.c"]
    assert pool.metric("esb_pool_panics_total") == 1
    assert pool.state("oss.c") == CLOSED


def test_every_member_failing_is_a_transport_error_naming_each(tmp_path: Path) -> None:
    """When every member fails the route gets a retryable error listing why each failed."""
    pool = Pool(tmp_path)
    for name in MEMBERS:
        down(name, 1)
    with pytest.raises(TransportError) as caught:
        pool.sink.write(Message({"n": 0}))
    assert caught.value.retryable
    assert all(f"{name}: {name} refused" in str(caught.value) for name in MEMBERS)


def test_retry_on_next_false_hands_the_failure_to_the_route(tmp_path: Path) -> None:
    """Without retry_on_next a member failure is raised at once; no other member gets the message."""
    pool = Pool(tmp_path, retry_on_next=False)
    down("oss.a", 1)
    with pytest.raises(TransportError):
        pool.sink.write(Message({"n": 0}))
    assert BROKER.written("oss.b") == []
    assert BROKER.written("oss.c") == []


def test_a_refusal_is_the_routes_and_not_a_member_failure(tmp_path: Path) -> None:
    """A RemoteError is raised at once, tried on no other member, and does not count against the member."""
    pool = Pool(tmp_path, health={"failures": 1})
    BROKER.fail_next("oss.a", RemoteError("invalid account", code="E12"))
    with pytest.raises(RemoteError):
        pool.sink.write(Message({"n": 0}))
    assert BROKER.written("oss.b") == []
    assert pool.state("oss.a") == CLOSED
    assert pool.metric("esb_pool_calls_total", member="oss.a", outcome="refused") == 1


# -- half-open trials --------------------------------------------------------------------------------
def test_half_open_lets_one_trial_through_at_a_time(tmp_path: Path) -> None:
    """Once an ejection is over one caller gets the trial; others skip the member until it ends."""
    pool = Pool(tmp_path, health={"failures": 1})
    breakers = pool.shared.breakers
    breakers.failure("oss.a", "down")
    pool.clock.advance(5)
    assert breakers.admit("oss.a") == "trial"
    assert breakers.admit("oss.a") is None
    assert pool.state("oss.a") == HALF_OPEN
    breakers.success("oss.a")
    assert breakers.admit("oss.a") == "call"


def test_a_failed_trial_ejects_again(tmp_path: Path) -> None:
    """A trial that fails opens the breaker again; the message still reaches another member."""
    pool = Pool(tmp_path, strategy="failover", health={"failures": 1})
    down("oss.a")
    pool.send(1)
    pool.clock.advance(5)
    assert pool.send(1) == ["oss.b"]
    assert pool.state("oss.a") == OPEN
    assert pool.metric("esb_pool_ejections_total", member="oss.a") == 2


class BlockingSink:
    """A member that blocks every call until released."""

    release = threading.Event()
    closed = threading.Event()

    def connect(self) -> None:
        """Nothing."""

    def write(self, message: Message) -> None:
        """Block until released."""
        BlockingSink.release.wait(10)

    def close(self) -> None:
        """Record the close."""
        BlockingSink.closed.set()


class BlockingAdapter:
    """An adapter whose sinks block (a member that hangs)."""

    name = "blocking"

    def endpoint_model(self) -> type[EndpointConfig]:
        """Any endpoint."""
        return EndpointConfig

    def sink(self, endpoint: Any, context: Any) -> BlockingSink:
        """A blocking sink."""
        return BlockingSink()


@pytest.fixture
def blocking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register the blocking adapter for one test."""
    monkeypatch.setitem(ADAPTERS, "blocking", f"{__name__}:BlockingAdapter")
    BlockingSink.release.clear()
    BlockingSink.closed.clear()
    yield
    BlockingSink.release.set()


def test_a_trial_over_its_hard_timeout_fails_and_the_message_moves_on(tmp_path: Path, blocking: None) -> None:
    """A hanging trial is given up after trial_timeout: ejected again, message delivered elsewhere."""
    config = PoolEndpoint.model_validate({
        "adapter": "pool", "members": ["oss.hang", "oss.b"], "strategy": "failover",
        "health": {"failures": 1, "trial_timeout": "50ms"},
    })  # fmt: skip
    endpoints: dict[str, Any] = {
        "oss.hang": EndpointConfig(adapter="blocking"),
        "oss.b": MemoryEndpoint(adapter="memory"),
    }
    ctx = context(tmp_path, endpoints)
    clock = FakeClock()
    shared = PoolShared(config, ctx, clock=clock)
    sink = PoolSink(config, ctx, shared)
    shared.breakers.failure("oss.hang", "down")  # ejected
    clock.advance(5)
    sink.write(Message({"n": 1}, id="t-1"))
    assert [m.id for m in BROKER.written("oss.b")] == ["t-1"]
    assert next(m.state for m in shared.breakers.snapshot()) == OPEN
    assert "still running after 0.05s" in (shared.breakers.snapshot()[0].last_error or "")
    BlockingSink.release.set()
    assert BlockingSink.closed.wait(5), "the abandoned trial's sink is closed when its call ends"


# -- the adapter ----------------------------------------------------------------------------------------
def test_a_pool_answers_requests_when_every_member_does(tmp_path: Path) -> None:
    """A pool of memory members is a requester; the reply comes from the chosen member."""
    pool = Pool(tmp_path)
    adapter = PoolAdapter()
    sink = adapter.sink(pool.config, pool.context)
    assert isinstance(sink, PoolRequester)
    BROKER.box("oss.a").replies["*"] = {"ok": True}
    assert sink.request(Message({"q": 1}), timeout=1.0).body == {"ok": True}


def test_a_pool_with_a_one_way_member_is_only_a_sink(tmp_path: Path, blocking: None) -> None:
    """A member that cannot answer makes the pool one-way (no request capability)."""
    config = PoolEndpoint.model_validate({"adapter": "pool", "members": ["oss.hang", "oss.b"]})
    endpoints: dict[str, Any] = {
        "oss.hang": EndpointConfig(adapter="blocking"),
        "oss.b": MemoryEndpoint(adapter="memory"),
    }
    sink = PoolAdapter().sink(config, context(tmp_path, endpoints))
    assert not isinstance(sink, PoolRequester)
    assert not hasattr(sink, "request")


def test_unknown_or_pooled_members_are_config_errors(tmp_path: Path) -> None:
    """A member that is no endpoint, or is itself a pool, is refused with a clear message."""
    config = PoolEndpoint.model_validate({"adapter": "pool", "members": ["oss.aa"]})
    with pytest.raises(ConfigError, match=r"member 'oss.aa' is not an endpoint.*did you mean 'oss.a'"):
        PoolAdapter().sink(config, context(tmp_path, {"oss.a": MemoryEndpoint(adapter="memory")}))
    nested = PoolEndpoint.model_validate({"adapter": "pool", "members": ["oss.inner"]})
    with pytest.raises(ConfigError, match="itself a pool"):
        PoolAdapter().sink(nested, context(tmp_path, {"oss.inner": nested}))


def test_a_pool_cannot_be_read_from(tmp_path: Path) -> None:
    """Reading from a pool is a ConfigError that says to read from its members."""
    pool = Pool(tmp_path)
    with pytest.raises(ConfigError, match="read from its members"):
        PoolAdapter().source(pool.config, pool.context)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"members": ["oss.a", "oss.a"]}, "members named twice: oss.a"),
        ({"members": ["oss.a"], "strategy": "sticky"}, "strategy sticky needs sticky_key"),
        ({"members": ["oss.a"], "sticky_key": "body.x"}, "sticky_key is used only by strategy sticky"),
        ({"members": []}, "at least 1 item"),
        ({"members": ["nodot"]}, "should match pattern"),
        ({"members": ["oss.a"], "health": {"base_ejection": "10s", "max_ejection": "5s"}}, "max_ejection"),
    ],
)
def test_bad_pool_options_are_refused(options: dict[str, Any], error: str) -> None:
    """Each inconsistent pool configuration is refused with what was expected."""
    with pytest.raises(ValueError, match=error):
        PoolEndpoint.model_validate({"adapter": "pool", **options})


def test_health_names_ejected_members_and_why(tmp_path: Path) -> None:
    """The status file written on a state change makes esb health name the ejected member and its error."""
    pool = Pool(tmp_path, strategy="failover", health={"failures": 1})
    adapter = PoolAdapter()
    assert adapter.health(pool.config, pool.context)[0] == "ok"
    down("oss.a")
    pool.send(1)
    assert read_status(status_dir(pool.context))[0]["members"][0]["state"] == OPEN
    status, detail = adapter.health(pool.config, pool.context)
    assert status == "degraded"
    assert "oss.a EJECTED until" in detail
    assert "oss.a refused the connection" in detail
    assert "oss.b ok" in detail


def test_health_is_down_when_every_member_is_ejected(tmp_path: Path) -> None:
    """Every member ejected: the pool's line is down and says panic mode."""
    pool = Pool(tmp_path, health={"failures": 1, "max_ejected_share": 1.0})
    for name in MEMBERS:
        down(name)
    with pytest.raises(TransportError):
        pool.sink.write(Message({"n": 0}))
    status, detail = PoolAdapter().health(pool.config, pool.context)
    assert status == "down"
    assert "panic mode" in detail


def test_health_says_the_trial_is_due_once_an_ejection_ended() -> None:
    """A member whose ejection time has passed is shown as awaiting its trial call, not as ejected until."""
    from adapters.pool.status import health_line

    row = {"member": "oss.a", "state": OPEN, "consecutive": 2, "last_error": "refused", "ejections": 1}
    past = {**row, "ejected_until": "2000-01-01T00:00:00+00:00"}
    future = {**row, "ejected_until": "2999-01-01T00:00:00+00:00"}
    status, detail = health_line(["oss.a", "oss.b"], [{"pid": 1, "members": [past]}])
    assert status == "degraded"
    assert "oss.a EJECTED, trial call due (2 failure(s) in a row, last: refused)" in detail
    assert "EJECTED until 2999" in health_line(["oss.a", "oss.b"], [{"pid": 1, "members": [future]}])[1]


def test_the_written_end_of_an_ejection_is_never_before_the_hubs(tmp_path: Path) -> None:
    """The status file rounds an ejection's end up to the second: `esb health` never calls a trial due
    while the hub would still refuse it (truncated, it did so up to a second early)."""
    import time
    from datetime import UTC, datetime

    from adapters.pool.breaker import MemberState
    from adapters.pool.status import write_status

    member = MemberState("oss.a", closed_since=0.0)
    member.state, member.ejected_until = OPEN, 100.4
    before = time.time()
    write_status(tmp_path, [member], now=100.0)
    (row,) = read_status(tmp_path)[0]["members"]
    until = datetime.fromisoformat(row["ejected_until"])
    assert until.timestamp() >= before + 0.4
    assert until.timestamp() < time.time() + 0.4 + 1
    assert until.tzinfo == UTC


def test_a_successful_trial_replaces_the_members_old_sink(tmp_path: Path) -> None:
    """The trial runs on a fresh connection, which the pool keeps; the old sink is closed."""
    pool = Pool(tmp_path, strategy="failover", health={"failures": 1})
    pool.send(1)
    old = pool.sink._sinks["oss.a"]
    closed: list[bool] = []
    old.close = lambda: closed.append(True)  # type: ignore[method-assign]
    down("oss.a", 1)
    pool.send(1)
    pool.clock.advance(5)
    assert pool.send(1) == ["oss.a"]
    assert pool.sink._sinks["oss.a"] is not old
    assert closed == [True]


def test_sticky_reads_the_key_from_a_body_still_in_json_bytes(tmp_path: Path) -> None:
    """A route without steps hands the pool JSON bytes: the key is read from them all the same."""
    pool = Pool(tmp_path, strategy="sticky", sticky_key="body.account")
    home = pool.send(1, account="A-3")[0]
    message = Message(b'{"account": "A-3"}')
    pool.sink.write(message)
    assert [m.id for m in BROKER.written(home)][-1] == message.id
    assert BROKER.written(home)[-1].body == b'{"account": "A-3"}'


def test_route_workers_share_one_health_picture(tmp_path: Path) -> None:
    """Four threads, each with its own pool sink: every message once, the dead member ejected for all."""
    pool = Pool(tmp_path, health={"failures": 1})
    down("oss.b")
    sinks = [PoolSink(pool.config, pool.context, pool.shared) for _ in range(4)]
    sent: list[str] = []
    errors: list[BaseException] = []

    def work(sink: PoolSink, n: int) -> None:
        try:
            for i in range(25):
                message = Message({"n": i}, id=f"{n}-{i}")
                sink.write(message)
                sent.append(message.id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(sink, n)) for n, sink in enumerate(sinks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    delivered = [m.id for name in MEMBERS for m in BROKER.written(name)]
    assert sorted(delivered) == sorted(sent)
    assert len(delivered) == 100
    assert pool.state("oss.b") == OPEN
    assert pool.metric("esb_pool_calls_total", member="oss.b", outcome="failed") <= 4
