"""``esb journal stats`` on a big journal: rows and outcomes estimated from evenly spread key ranges
(close to the exact counts, gaps left by a prune included), exact on a small journal or when asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from esb.journal import Journal, usage
from esb.message import Message
from esb.ops.retention import render_usage


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A journal of 600 messages on one route: each received then delivered (every 10th dead-lettered,
    every 7th filtered), two business keys each; then the rows of messages 101-300 deleted (a prune)."""
    with Journal(f"sqlite:///{tmp_path / 'journal.db'}") as opened:
        for n in range(600):
            keys = {"order_id": f"o{n}", "msisdn": f"1{n}"}
            message = Message(body=b"{}", id=f"m{n:04d}", business_keys=keys)
            opened.received("orders", message)
            state = "dead_lettered" if n % 10 == 0 else "filtered" if n % 7 == 0 else "delivered"
            opened.event("orders", message, state, error="bad" if state == "dead_lettered" else None)
        with opened._read().begin() as conn:
            for table in ("events", "business_keys"):
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE message_seq BETWEEN 101 AND 300")
            conn.exec_driver_sql("DELETE FROM messages WHERE seq BETWEEN 101 AND 300")
        yield opened


def test_a_small_journal_is_counted_exactly(journal: Journal) -> None:
    """Spans shorter than the sampled ranges are counted whole: the figures are exact, not labelled."""
    found, exact = journal.usage(), journal.usage(exact=True)
    assert not found.estimated
    assert found.rows == exact.rows
    assert found.outcomes == exact.outcomes
    assert exact.rows["messages"] == 400
    assert exact.rows["business_keys"] == 800
    assert exact.rows["dead_letters"] == 40
    assert "~" not in render_usage(found)


def test_a_big_journal_is_estimated_close_to_the_exact_counts(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 8 ranges of 16 keys over 600 messages (and 1,200 events) the estimates of messages, events,
    business keys and outcomes are within 20-35 % of the exact counts (dead letters exact), and labelled
    as estimates; --exact counts."""
    monkeypatch.setattr(usage, "WINDOWS", 8)
    monkeypatch.setattr(usage, "WIDTH", 16)
    monkeypatch.setattr(usage, "OUTCOME_WIDTH", 32)
    found, exact = journal.usage(), journal.usage(exact=True)
    assert found.estimated
    assert not exact.estimated
    for table in ("messages", "events", "business_keys"):
        assert found.rows[table] == pytest.approx(exact.rows[table], rel=0.2), table
        assert found.rows[table] != exact.rows[table] or table == "business_keys", "sampled, not counted"
    assert found.rows["dead_letters"] == exact.rows["dead_letters"] == 40, "small tables: exact"
    assert set(found.outcomes) == set(exact.outcomes) == {"delivered", "filtered", "dead_lettered"}
    for state, n in exact.outcomes.items():
        assert found.outcomes[state] == pytest.approx(n, rel=0.35), state
    assert found.outcomes["dead_lettered"] == exact.outcomes["dead_lettered"], "rare: counted exactly"
    text = render_usage(found)
    assert "messages: ~" in text
    assert "--exact counts every row" in text
    assert "~" not in render_usage(exact)


def test_esb_journal_stats_estimates_unless_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`esb journal stats --json` says whether its rows are estimates; `--exact` counts them."""
    import json

    from click.testing import CliRunner

    from esb.cli.main import cli
    from tests.unit.routes_fixture import make_project

    project = make_project(tmp_path, [], ["a.in"])
    with Journal(project.settings.journal.url) as opened:
        for n in range(40):
            message = Message(body=b"{}", id=f"m{n:04d}")
            opened.received("orders", message)
            opened.event("orders", message, "delivered")
    monkeypatch.setattr(usage, "WINDOWS", 2)
    monkeypatch.setattr(usage, "WIDTH", 4)

    def stats(*args: str) -> dict[str, object]:
        argv = ["--project", str(project.root), "journal", "stats", "--json", *args]
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.output))

    sampled, exact = stats(), stats("--exact")
    assert sampled["estimated"] is True
    assert exact["estimated"] is False
    assert exact["messages"] == 40
    assert exact["outcomes"] == {"delivered": 40}


def test_spread_lays_the_days_end_to_end_and_keeps_each_range_in_its_day() -> None:
    """The ranges of a partitioned journal's outcomes are spread over the days' seqs, never in the gap
    between two days' blocks; spans holding fewer keys than the ranges would are taken whole."""
    day = 10**10
    spans = [(day + 1, day + 1001), (5 * day + 1, 5 * day + 3001)]
    found = usage.spread(spans, 10)
    assert len(found) == usage.WINDOWS
    assert all(any(s <= start < end <= e for s, e in spans) for start, end in found)
    assert (found[0][0], found[-1][1]) == (day + 1, 5 * day + 3001)
    assert sum(1 for start, _ in found if start < 5 * day) in range(15, 18)  # a quarter of the keys
    assert usage.spread(spans, 100) == spans
