"""tests/waiting.py: a wait gives up when progress stops, never while the count still grows."""

from __future__ import annotations

import pytest

from tests import waiting


class FakeTime:
    """``monotonic`` and ``sleep`` of the waits: each sleep moves the clock by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def monotonic(self) -> float:
        """The fake clock."""
        return self.now

    def sleep(self, _seconds: float) -> None:
        """Move the clock on instead of sleeping."""
        self.now += self.step


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """A clock that moves 30 s per poll."""
    fake = FakeTime(30.0)
    monkeypatch.setattr(waiting, "time", fake)
    return fake


def test_a_slow_count_that_keeps_growing_is_waited_for_however_long_it_takes(clock: FakeTime) -> None:
    """One more every 30 s for 100 polls (50 minutes): still waited for, since it never stalled for 90 s."""
    polls = iter(range(1, 1000))
    assert waiting.wait_for_count(lambda: next(polls), 100, "items", stall=90, limit=10_000) == 100
    assert clock.now == 99 * 30


def test_a_count_that_stops_growing_fails_naming_what_and_how_far_it_got(clock: FakeTime) -> None:
    """Stuck at 5 of 10: the wait fails once 90 s passed without progress, with the count in the message."""
    polls = iter([1, 2, 3, 4, 5])
    expected = r"gave up waiting for items: 5 of 10 after no progress for 120 s"
    with pytest.raises(AssertionError, match=expected):
        waiting.wait_for_count(lambda: next(polls, 5), 10, "items", stall=90)
    assert clock.now == 4 * 30 + 120


def test_a_tolerated_error_counts_as_no_progress(clock: FakeTime) -> None:
    """A database restarting (the tolerated error) is neither progress nor a failure until the stall."""
    answers = iter([3, "down", "down", 4])

    def count() -> int:
        answer = next(answers, "down")
        if answer == "down":
            raise ConnectionError("restarting")
        return int(answer)

    assert waiting.wait_for_count(count, 4, "items", stall=90, tolerate=(ConnectionError,)) == 4
    with pytest.raises(AssertionError, match="0 of 1 after no progress"):
        waiting.wait_for_count(count, 1, "items", stall=90, tolerate=(ConnectionError,))
