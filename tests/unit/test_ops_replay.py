"""Replay: a replayed message is processed and delivered again; dry runs diff without sending."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from esb.exceptions import ConfigError
from esb.journal import Journal
from esb.message import Message, utcnow
from esb.ops.dryrun import DryRun
from esb.ops.replay import RateLimiter, Replayer, Selection, select
from esb.testing import BROKER, FakeClock
from tests.unit.routes_fixture import make_project
from tests.unit.test_worker import ENDPOINTS, route, run_until_settled


@pytest.fixture(autouse=True)
def _clean_broker() -> None:
    """Each test starts with empty memory endpoints."""
    BROKER.reset()


def delivered_once(tmp_path: Path, **extra: Any) -> tuple[Any, Journal]:
    """A project whose route delivered message m1 once; return it and the journal."""
    project = make_project(tmp_path, [route(steps=[{"transform": "t/up"}], **extra)], ENDPOINTS,
                           {"t/up": lambda b: {"v": b.decode().upper()}})
    BROKER.feed("a.in", Message(body=b"hello", id="m1"))
    journal = run_until_settled(project, 1)
    assert journal.outcome("r", "m1") == "delivered"
    return project, journal


def process_republished(project: Any, journal: Journal) -> None:
    """Feed what the replay published to a.in back to the route, and run it."""
    published = BROKER.written("a.in")
    BROKER.box("a.in").written.clear()
    BROKER.box("a.in").acked.clear()
    BROKER.feed("a.in", *published)
    journal.close()
    run_until_settled(project, len(published)).close()


def test_replay_delivers_again_with_the_same_id(tmp_path: Path) -> None:
    """A replay reaches the sink a second time, same id, with esb-replay, journaled as replayed."""
    project, journal = delivered_once(tmp_path)
    with Replayer(project, journal) as replayer:
        outcome = replayer.replay_record(select(journal, project, Selection(("m1",)))[0])
    assert outcome.status == "sent"
    assert outcome.sent_as == "m1"
    assert outcome.replay == 1
    assert journal.outcome("r", "m1") is None  # in flight again
    process_republished(project, journal)
    written = BROKER.written("b.out")
    assert [m.id for m in written] == ["m1", "m1"]
    assert written[1].headers["esb-replay"] == "1"
    assert written[1].body == {"v": "HELLO"}
    with Journal(project.settings.journal.url) as again:
        states = [e.state for e in again.history("m1")]
        assert again.outcome("r", "m1") == "delivered"
    assert states.index("replayed") < len(states) - 1
    assert states[-1] == "delivered"


def test_a_plain_redelivery_of_a_delivered_message_is_not_sent_again(tmp_path: Path) -> None:
    """Without a replay, the same id coming back is a duplicate: acked, not delivered (the contrast)."""
    project, journal = delivered_once(tmp_path)
    journal.close()
    BROKER.box("a.in").acked.clear()
    BROKER.feed("a.in", Message(body=b"hello", id="m1"))
    run_until_settled(project, 1).close()
    assert len(BROKER.written("b.out")) == 1


def test_replay_of_a_fan_out_delivers_to_every_endpoint_again(tmp_path: Path) -> None:
    """The worker skips the per-endpoint 'already delivered' check for a replay: both sinks get it."""
    project, journal = delivered_once(tmp_path, to=["b.out", "c.out"])
    with Replayer(project, journal) as replayer:
        replayer.replay_record(select(journal, project, Selection(("m1",)))[0])
    process_republished(project, journal)
    assert len(BROKER.written("b.out")) == 2
    assert len(BROKER.written("c.out")) == 2


def test_new_id_replay_is_linked_to_the_original(tmp_path: Path) -> None:
    """With new_id the replay has id <id>:replay-<n>, causation the original, and its body journaled."""
    project, journal = delivered_once(tmp_path)
    with Replayer(project, journal, new_id=True) as replayer:
        outcome = replayer.replay_record(select(journal, project, Selection(("m1",)))[0])
    assert outcome.sent_as == "m1:replay-1"
    sent = BROKER.written("a.in")[0]
    assert sent.causation_id == "m1"
    assert sent.headers["esb-replay-of"] == "m1"
    assert journal.body("m1:replay-1") == b"hello"
    assert journal.outcome("r", "m1") == "delivered"  # the original keeps its outcome
    journal.close()


def test_dry_run_shows_same_or_changed_output(tmp_path: Path) -> None:
    """A dry run sends nothing; unchanged mapping: same as sent; changed mapping: a diff naming the change."""
    project, journal = delivered_once(tmp_path)
    record = select(journal, project, Selection(("m1",)))[0]
    same = DryRun(project, journal).run(record)
    assert same.status == "dry-run"
    assert same.outputs is not None
    assert same.outputs[0]["destinations"][0] == {"endpoint": "b.out", "sent_before": True,
                                                  "changed": False, "diff": ""}
    project.transforms.transforms["t/up"].fn = lambda b: {"v": b.decode().upper(), "w": 1}
    changed = DryRun(project, journal).run(record)
    assert changed.outputs is not None
    dest = changed.outputs[0]["destinations"][0]
    assert dest["changed"]
    assert '+  "w": 1' in dest["diff"]
    assert BROKER.written("a.in") == []
    assert len(BROKER.written("b.out")) == 1
    journal.close()


def test_selection_must_say_what_to_replay(tmp_path: Path) -> None:
    """Replaying with no criterion is refused (never everything by default)."""
    project, journal = delivered_once(tmp_path)
    with pytest.raises(ConfigError, match="say what to replay"):
        select(journal, project, Selection())
    journal.close()


def test_the_selection_reads_no_business_keys(tmp_path: Path) -> None:
    """Replay's selection by route and window (and by id) runs no statement on ``business_keys``: a
    replay shows none, and on a partitioned PostgreSQL journal reading them costs more than the rest."""
    project, journal = delivered_once(tmp_path)
    statements: list[str] = []
    sa.event.listen(journal._read(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    since = utcnow() - timedelta(hours=1)
    assert [r.id for r in select(journal, project, Selection(route="r", since=since))] == ["m1"]
    assert [r.id for r in select(journal, project, Selection(("m1",)))] == ["m1"]
    assert statements
    assert not [sql for sql in statements if "business_keys" in sql]
    journal.close()


def test_rate_limiter_spaces_calls() -> None:
    """At 4 messages/s, calls are 0.25 s apart on the clock."""
    clock = FakeClock(100.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    limiter = RateLimiter(4, clock=clock, sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == [0.25, 0.25]
