"""esb/journal/rows.py: the batched path's message rows as values hold what the dict rows hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from esb.journal.bulk import MESSAGE_COLUMNS
from esb.journal.rows import message_row, message_values
from esb.message import Message

NOW = datetime(2026, 12, 7, 23, 0, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(Message(body=b"<x/>"), id="bare"),
        pytest.param(
            Message(
                id="订单-1", body={"a": 1}, type="crm.order", source="crm", schema="order.v1",
                correlation_id="c-1", causation_id="p-1", headers={"esb-来源": "crm"}, attempt=3,
                created_at=NOW - timedelta(seconds=5),
            ),
            id="every-field",
        ),
        pytest.param(Message(id="m", body=b"", correlation_id="", headers={}), id="empty-ids-headers"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("count", [1, 4])
def test_message_values_are_the_message_rows_columns(message: Message, count: int) -> None:
    """``message_values`` gives, column for column, the values of ``message_row`` (its delivery count too)."""
    row = message_row("orders", message, NOW, b"\x00ejz")
    row["delivery_count"] = count
    assert message_values("orders", message, NOW, b"\x00ejz", count) == [row[c] for c in MESSAGE_COLUMNS]
