"""The worker's overlapped batches (esb/runtime/overlap.py): same results as running each batch to its
end, no ack before the outcome is journaled, queue order kept, and the next batch really prepared while
one is in flight."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from esb.exceptions import MappingError, TransportError
from esb.journal import Journal
from esb.message import Message
from esb.runtime.worker import RouteWorker
from esb.testing import BROKER, MemoryAdapter, MemorySink
from esb.typing import Delivery
from tests.unit.routes_fixture import make_project

ENDPOINTS = ["a.in", "b.out", "dlq.r"]
ON_ERROR = {"redeliver": {"max": 2, "initial": "1ms", "max_delay": "5ms"}, "dead_letter": "dlq.r"}
ROUTE = {"id": "r", "from": "a.in", "to": "b.out", "on_error": ON_ERROR, "steps": [{"transform": "t/m"}]}


def mapping(body: Any) -> Any:
    """Uppercase the body; ``bad`` is a permanent mapping error."""
    if body == b"bad":
        raise MappingError("t/m", "id", "/x", "missing")
    return {"v": body.decode().upper()}


def run(
    tmp_path: Path, messages: list[Message], *, overlap: bool, batch_size: int = 5
) -> tuple[Journal, Any]:
    """Run the route's worker over ``messages`` until each one is settled; return the journal and worker."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    project = make_project(tmp_path, [ROUTE], ENDPOINTS, {"t/m": mapping})
    project.settings.runtime.batch_size = batch_size
    journal = Journal(project.settings.journal.url)
    journal.connect()
    worker = RouteWorker(project, project.routes[0], journal)
    worker.overlap_batches = overlap
    BROKER.feed("a.in", *messages)
    worker.start()
    box = BROKER.box("a.in")
    deadline = time.monotonic() + 20
    while len(box.acked) < len(messages) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    worker.join(5)
    return journal, worker


class ManySink(MemorySink):
    """A memory sink with ``write_many``, as the queue sinks have (a subclass: protocol checks are cached
    per class, so patching MemorySink itself would leak into other tests)."""

    def write_many(self, messages: list[Message]) -> None:
        """Write each message in turn."""
        for message in messages:
            self.write(message)


@pytest.fixture(autouse=True)
def memory_sinks_write_many(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the memory adapter's sinks write many: the routes' batches may go in flight."""
    monkeypatch.setattr(MemoryAdapter, "sink", lambda _self, _endpoint, context: ManySink(context.endpoint))


def feed_of(count: int, bad: frozenset[int] = frozenset()) -> list[Message]:
    """``count`` messages m0..; those at ``bad`` fail their mapping."""
    return [Message(body=b"bad" if i in bad else f"m{i}".encode(), id=f"m{i}") for i in range(count)]


def observed(journal: Journal, count: int) -> dict[str, Any]:
    """What a run left: the outputs in order, the dead letters, the acks, each message's journal states."""
    return {
        "written": [(m.id, m.body) for m in BROKER.written("b.out")],
        "dead": [m.id for m in BROKER.written("dlq.r")],
        "acked": sorted(BROKER.box("a.in").acked),
        "histories": {f"m{i}": [e.state for e in journal.history(f"m{i}")] for i in range(count)},
    }


@pytest.mark.parametrize(
    ("bad", "failures"),
    [
        pytest.param(frozenset(), 0, id="all-good"),
        pytest.param(frozenset({7, 23}), 0, id="mapping-errors"),
        pytest.param(frozenset({12}), 2, id="sink-failures"),
    ],
)
def test_overlapped_batches_give_the_same_results_as_sequential_ones(
    tmp_path: Path, bad: frozenset[int], failures: int
) -> None:
    """40 messages (some failing their mapping, some writes failing) leave the same outputs in the same
    order, dead letters, acks and journal histories with batches overlapped as run one after another."""
    results = []
    for overlap in (False, True):
        BROKER.reset()
        BROKER.fail_next("b.out", *[TransportError("blip") for _ in range(failures)])
        journal, worker = run(tmp_path / str(overlap), feed_of(40, bad), overlap=overlap)
        results.append(observed(journal, 40))
        journal.close()
        assert worker.failure is None
    sequential, overlapped = results
    assert len(sequential["acked"]) == 40
    assert overlapped == sequential


def test_next_batch_is_prepared_while_one_waits_for_its_outcomes_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a batch's outcomes' commit is held, the worker journals the next batch's arrivals."""
    arrived = threading.Event()
    overlapped: list[bool] = []
    received_many, settle_many = Journal.received_many, Journal.settle_many

    def spy_received(self: Journal, route: str, items: list[Any]) -> list[bool]:
        result = received_many(self, route, items)
        if any(m.id == "m5" for m, _ in items):  # the second batch
            arrived.set()
        return result

    def held_settle(self: Journal, route: str, outcomes: list[Any], details: Any = None) -> None:
        if any(m.id == "m0" for m, _, _ in outcomes):  # the first batch waits for the second's arrival
            overlapped.append(arrived.wait(5))
        settle_many(self, route, outcomes, details)

    monkeypatch.setattr(Journal, "received_many", spy_received)
    monkeypatch.setattr(Journal, "settle_many", held_settle)
    journal, _ = run(tmp_path, feed_of(15), overlap=True)
    assert overlapped == [True]
    assert [m.id for m in BROKER.written("b.out")] == [f"m{i}" for i in range(15)]
    journal.close()


def test_no_ack_before_the_outcome_is_journaled_and_outputs_leave_after_the_batch_before_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With batches overlapped, every delivery is acked only once its outcome is in the journal, and no
    output of a batch is written before every member of the batch before it was acked."""
    journals: list[Journal] = []
    unjournaled_acks: list[str] = []
    batches: list[list[str]] = []
    acked_at_write: dict[str, set[str]] = {}
    ack, write, settle_many = Delivery.ack, MemorySink.write, Journal.settle_many

    def checked_ack(self: Delivery, error: BaseException | None = None) -> None:
        if error is None and journals[0].outcome("r", self.message.id) is None:
            unjournaled_acks.append(self.message.id)
        ack(self, error)

    def recorded_write(self: MemorySink, message: Message) -> None:
        acked_at_write[message.id] = set(BROKER.box("a.in").acked)
        write(self, message)

    def recorded_settle(self: Journal, route: str, outcomes: list[Any], details: Any = None) -> None:
        batches.append([m.id for m, _, _ in outcomes])
        settle_many(self, route, outcomes, details)

    original_connect = Journal.connect

    def remembered_connect(self: Journal) -> None:
        journals.append(self)
        original_connect(self)

    monkeypatch.setattr(Journal, "connect", remembered_connect)
    monkeypatch.setattr(Delivery, "ack", checked_ack)
    monkeypatch.setattr(MemorySink, "write", recorded_write)
    monkeypatch.setattr(Journal, "settle_many", recorded_settle)
    journal, _ = run(tmp_path, feed_of(30), overlap=True)
    journal.close()
    assert unjournaled_acks == []
    assert len(batches) >= 3, batches
    for before, after in itertools.pairwise(batches):
        for mid in after:
            assert set(before) <= acked_at_write[mid], (before, mid)


def test_a_route_whose_sink_cannot_write_many_runs_each_batch_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A destination without ``write_many`` (a batch file's sink, with schedules of its own) is never made
    twice: no batch goes in flight, and the backlog still ends delivered in order."""
    monkeypatch.setattr(MemoryAdapter, "sink", lambda _self, _endpoint, context: MemorySink(context.endpoint))
    journal, worker = run(tmp_path, feed_of(20), overlap=True)
    journal.close()
    assert worker.in_flight._executor is None
    assert [m.id for m in BROKER.written("b.out")] == [f"m{i}" for i in range(20)]
