"""Replays run in this process (sources another process cannot publish to), and purges in the journal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from esb.exceptions import MessageError
from esb.journal import STATES, Journal
from esb.message import Message
from esb.ops import dlq
from esb.ops import replay as replay_mod
from esb.ops.health import stuck_in_flight
from esb.ops.replay import Replayer, Selection, select
from esb.testing import BROKER
from tests.unit.routes_fixture import make_project
from tests.unit.test_worker import ENDPOINTS, route, run_until_settled


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty memory endpoints; ``memory`` sources count as not publishable, like a SOAP listener."""
    BROKER.reset()
    monkeypatch.setattr(replay_mod.Replayer, "publishable", lambda self, route_id: False)


def delivered_once(tmp_path: Path, fn: Any = None, **extra: Any) -> tuple[Any, Journal]:
    """A project whose route delivered message m1 once; return it and the open journal."""
    project = make_project(tmp_path, [route(steps=[{"transform": "t/up"}], **extra)], ENDPOINTS,
                           {"t/up": fn or (lambda b: {"v": b.decode().upper()})})
    BROKER.feed("a.in", Message(body=b"hello", id="m1", headers={"h": "1"}))
    journal = run_until_settled(project, 1)
    assert journal.outcome("r", "m1") == "delivered"
    return project, journal


def replay(project: Any, journal: Journal, **options: Any) -> replay_mod.Outcome:
    """Replay m1 with ``options``; return the outcome."""
    with Replayer(project, journal, **options) as replayer:
        return replayer.replay_record(select(journal, project, Selection(("m1",)))[0])


def test_in_process_replay_delivers_again_through_the_route(tmp_path: Path) -> None:
    """The route runs here on the original bytes: the sink gets m1 again with esb-replay; nothing is
    published to the source; the journal shows replayed then delivered."""
    project, journal = delivered_once(tmp_path)
    outcome = replay(project, journal)
    assert (outcome.status, outcome.sent_as, outcome.replay) == ("sent", "m1", 1)
    assert outcome.reason == "run in this process: delivered"
    written = BROKER.written("b.out")
    assert [m.id for m in written] == ["m1", "m1"]
    assert written[1].headers["esb-replay"] == "1"
    assert written[1].headers["h"] == "1"
    assert written[1].body == {"v": "HELLO"}
    assert BROKER.written("a.in") == []
    states = [e.state for e in journal.history("m1")]
    assert states[states.index("replayed"):][-1] == "delivered"
    assert journal.outcome("r", "m1") == "delivered"
    journal.close()


def test_in_process_replay_with_new_id_is_linked_to_the_original(tmp_path: Path) -> None:
    """--new-id: the sink gets m1:replay-1 (causation m1); the original keeps its outcome."""
    project, journal = delivered_once(tmp_path)
    outcome = replay(project, journal, new_id=True)
    assert outcome.sent_as == "m1:replay-1"
    again = BROKER.written("b.out")[-1]
    assert (again.id, again.causation_id, again.headers["esb-replay-of"]) == ("m1:replay-1", "m1", "m1")
    assert journal.outcome("r", "m1:replay-1") == "delivered"
    assert journal.outcome("r", "m1") == "delivered"
    journal.close()


def test_in_process_replay_that_fails_again_is_dead_lettered_again(tmp_path: Path) -> None:
    """Today's mapping refuses the message: it is dead-lettered again and the outcome says so."""
    project, journal = delivered_once(tmp_path)

    def refuse(body: Any) -> Any:
        raise MessageError("mapping refuses it now")

    project.transforms.transforms["t/up"].fn = refuse
    outcome = replay(project, journal)
    assert outcome.status == "failed"
    assert outcome.dead_lettered_again
    assert "mapping refuses it now" in (outcome.reason or "")
    assert journal.outcome("r", "m1") == "dead_lettered"
    assert [m.id for m in BROKER.written("dlq.r")] == ["m1"]
    journal.close()


def test_request_reply_route_is_refused_with_a_reason(tmp_path: Path) -> None:
    """A route without 'to' answered a caller who is gone: skipped, nothing journaled or run."""
    project, journal = delivered_once(tmp_path, to=None)
    before = len(journal.history("m1"))
    outcome = replay(project, journal)
    assert outcome.status == "skipped"
    assert "request-reply" in (outcome.reason or "")
    assert "no caller to answer" in (outcome.reason or "")
    assert len(journal.history("m1")) == before
    journal.close()


def test_purged_is_a_journal_state_checked_in_python_only(tmp_path: Path) -> None:
    """'purged' is in STATES; the events table has no CHECK constraint on state (any short text fits)."""
    assert "purged" in STATES
    project, journal = delivered_once(tmp_path)
    engine = sa.create_engine(project.settings.journal.url)
    with engine.connect() as conn:
        ddl = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'events'")).scalar_one()
    engine.dispose()
    assert "CHECK" not in ddl.upper()
    with pytest.raises(ValueError, match="unknown journal state"):
        journal.event("r", Message(body=b"x", id="m1"), "vanished")
    journal.close()


def test_purge_journals_each_dead_letter_with_its_archive(tmp_path: Path) -> None:
    """Each purged dead letter gets a 'purged' event naming the archive; it is not 'stuck in flight'."""
    def refuse(body: Any) -> Any:
        raise MessageError("bad")

    project = make_project(tmp_path, [route(steps=[{"transform": "t/x"}])], ENDPOINTS, {"t/x": refuse})
    BROKER.feed("a.in", Message(body=b"one", id="m1"), Message(body=b"two", id="m2"))
    journal = run_until_settled(project, 2)
    assert journal.outcome("r", "m1") == "dead_lettered"
    BROKER.feed("dlq.r", *BROKER.written("dlq.r"))
    removed, path = dlq.purge(project, "r", {"m1"}, journal)
    assert removed == 1
    assert path is not None
    purged = [e for e in journal.history("m1") if e.state == "purged"]
    assert len(purged) == 1
    assert purged[0].detail is not None
    assert purged[0].detail["archive"] == str(path)
    assert not any(e.state == "purged" for e in journal.history("m2"))
    assert [body for _, body in dlq.read_archive(path)] == [b"one"]
    assert journal.outcome("r", "m1") == "dead_lettered"  # still its outcome: a resend is a duplicate
    stuck = stuck_in_flight(project.settings.journal.url, timedelta(0))
    assert "m1" not in {s["message_id"] for s in stuck}
    journal.close()
