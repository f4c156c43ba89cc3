"""recording(): the notes of dropped messages, per thread, nested blocks sharing the outer list."""

from __future__ import annotations

import pytest

from esb.message import Message
from esb.processors.drops import dropped, recording


def test_notes_made_in_the_block_are_collected_and_forgotten_after_it() -> None:
    """dropped() notes go to the block's list, and after the block nothing is recorded any more."""
    with recording() as notes:
        assert dropped(Message(body=None), {"skipped": "unchanged"}) == []
    assert notes == [{"skipped": "unchanged"}]
    dropped(Message(body=None), {"skipped": "late"})
    assert notes == [{"skipped": "unchanged"}]


def test_a_nested_block_shares_the_outer_list_and_leaves_it_recording() -> None:
    """An inner block yields the outer list; leaving it does not end the outer block's recording."""
    with recording() as outer:
        with recording() as inner:
            dropped(Message(body=None), {"n": 1})
        assert inner is outer
        dropped(Message(body=None), {"n": 2})
    assert outer == [{"n": 1}, {"n": 2}]


def _drop_then_fail(notes_seen: list[list[dict[str, int]]]) -> None:
    """A step that notes a drop, then fails."""
    with recording() as notes:
        notes_seen.append(notes)
        dropped(Message(body=None), {"n": 1})
        raise ValueError("step failed")


def test_a_block_left_by_an_error_stops_recording() -> None:
    """An exception inside the block ends the recording all the same (the next block starts empty)."""
    seen: list[list[dict[str, int]]] = []
    with pytest.raises(ValueError, match="step failed"):
        _drop_then_fail(seen)
    assert seen == [[{"n": 1}]]
    with recording() as fresh:
        pass
    assert fresh == []
