"""Crontab expressions (``0 3 * * 0``): checking one when settings and routes are read, and its next fire
time for ``esb health``, without apscheduler when the expression is plain.

apscheduler's ``CronTrigger.from_crontab`` is the judge, but importing it costs ~25 ms of every cold
command (``apscheduler.util`` imports asyncio) that reads a schedule it never runs (``esb trace``,
``esb dlq list``: config/settings.yaml's resync schedule, routes.yaml's full files) or only prints its next
run (``esb health``). An expression whose five fields are each ``*`` or a number within the field's range
is one apscheduler accepts (a test checks it over every such field); anything else, lists, ranges, steps,
names or a mistake, goes to apscheduler, whose error the caller reports.

:func:`next_fire_time` follows ``CronTrigger.get_next_fire_time`` step by step for a plain expression
(the same field walk, the same wall-clock arithmetic through UTC, so the same answer around daylight
saving changes); tests/unit/test_cron_next.py compares the two over many expressions, zones and times.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import UTC, datetime, timedelta, tzinfo

#: minute, hour, day of month, month, day of week (apscheduler's ranges: Monday is 0).
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NUMBER = re.compile(r"[0-9]{1,2}", re.ASCII)

#: apscheduler's CronTrigger fields, in its order; ``week`` and ``day_of_week`` are not datetime fields.
_NAMES = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_REAL = (True, True, True, False, False, True, True, True)
_MIN = (1970, 1, 1, 1, 0, 0, 0, 0)
_MAX = (9999, 12, 31, 53, 6, 23, 59, 59)

#: One wanted value per field of ``_NAMES`` (None: any).
Fields = tuple[int | None, ...]


def check_crontab(expression: str) -> None:
    """Raise ValueError (apscheduler's) when ``expression`` is not a 5-field crontab expression."""
    if _plain(expression) is None:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(expression)


def next_fire_time(expression: str, zone: tzinfo, now: datetime) -> datetime | None:
    """The first time at or after ``now`` (aware) that ``expression`` fires in ``zone``, as apscheduler's
    ``CronTrigger.from_crontab(expression, timezone=zone).get_next_fire_time(None, now)`` says; None when
    it never fires again. apscheduler itself answers for an expression that is not plain."""
    wanted = _plain(expression)
    if wanted is None:
        from apscheduler.triggers.cron import CronTrigger

        trigger = CronTrigger.from_crontab(expression, timezone=zone)
        found: datetime | None = trigger.get_next_fire_time(None, now)
        return found
    return _walk(wanted, zone, now)


def _plain(expression: str) -> Fields | None:
    """The wanted value of each of apscheduler's fields when every crontab field is ``*`` or a number in
    its range (then apscheduler accepts it), else None."""
    fields = expression.split()
    if len(fields) != len(_RANGES):
        return None
    values: list[int | None] = []
    for field, (low, high) in zip(fields, _RANGES, strict=True):
        if field == "*":
            values.append(None)
        elif _NUMBER.fullmatch(field) and low <= int(field) <= high:
            values.append(int(field))
        else:
            return None
    minute, hour, day, month, weekday = values
    return (None, month, day, None, weekday, hour, minute, 0)  # from_crontab: second 0, year and week any


def _value(index: int, when: datetime) -> int:
    if index == 3:
        return when.isocalendar()[1]
    if index == 4:
        return when.weekday()
    value: int = getattr(when, _NAMES[index])
    return value


def _max(index: int, when: datetime) -> int:
    return monthrange(when.year, when.month)[1] if index == 2 else _MAX[index]


def _next_value(index: int, wanted: int | None, when: datetime) -> int | None:
    """apscheduler's ``field.get_next_value`` for ``*`` (AllExpression) or one number (RangeExpression)."""
    low, high = _MIN[index], _max(index, when)
    if wanted is not None:
        low, high = max(low, wanted), min(high, wanted)
    found = max(low, _value(index, when))
    return found if found <= high else None


def _utc_add(when: datetime, delta: timedelta) -> datetime:
    """apscheduler's ``datetime_utc_add``: the sum taken in UTC, back in ``when``'s zone."""
    return (when.astimezone(UTC) + delta).astimezone(when.tzinfo)


def _increment(when: datetime, fieldnum: int) -> tuple[datetime, int]:
    """apscheduler's ``CronTrigger._increment_field_value``: the field one up, the smaller ones at their
    minimum, carrying into the bigger field at its maximum."""
    values: dict[str, int] = {}
    i = 0
    while i < len(_NAMES):
        if not _REAL[i]:
            if i == fieldnum:
                fieldnum -= 1
                i -= 1
            else:
                i += 1
            continue
        if i < fieldnum:
            values[_NAMES[i]] = _value(i, when)
            i += 1
        elif i > fieldnum:
            values[_NAMES[i]] = _MIN[i]
            i += 1
        elif _value(i, when) == _max(i, when):
            fieldnum -= 1
            i -= 1
        else:
            values[_NAMES[i]] = _value(i, when) + 1
            i += 1
    difference = datetime(**values) - when.replace(tzinfo=None)  # type: ignore[arg-type]
    return _utc_add(when, difference), fieldnum


def _set(when: datetime, fieldnum: int, value: int, zone: tzinfo) -> datetime:
    """apscheduler's ``CronTrigger._set_field_value``: the field set, the smaller ones at their minimum."""
    values = {
        name: _value(i, when) if i < fieldnum else _MIN[i] if i > fieldnum else value
        for i, name in enumerate(_NAMES)
        if _REAL[i]
    }
    return datetime(**values, tzinfo=zone, fold=when.fold)


def _walk(wanted: Fields, zone: tzinfo, now: datetime) -> datetime | None:
    """apscheduler's ``CronTrigger.get_next_fire_time(None, now)`` with no start or end date, no jitter."""
    when = now
    if when.microsecond:  # apscheduler's datetime_ceil
        when = _utc_add(when, timedelta(seconds=1, microseconds=-when.microsecond))
    when = when.astimezone(zone)
    fieldnum = 0
    while 0 <= fieldnum < len(_NAMES):
        current = _value(fieldnum, when)
        found = _next_value(fieldnum, wanted[fieldnum], when)
        if found is None:
            when, fieldnum = _increment(when, fieldnum - 1)
        elif found > current:
            if _REAL[fieldnum]:
                when = _set(when, fieldnum, found, zone)
                fieldnum += 1
            else:
                when, fieldnum = _increment(when, fieldnum)
        else:
            fieldnum += 1
    return when if fieldnum >= 0 else None
