"""Checking a crontab expression (``0 3 * * 0``) when settings and routes are read, without apscheduler
when the expression is plain.

apscheduler's ``CronTrigger.from_crontab`` is the judge, but importing it costs ~25 ms of every cold
command (``apscheduler.util`` imports asyncio) that reads a schedule it never runs (``esb trace``,
``esb dlq list``: config/settings.yaml's resync schedule, routes.yaml's full files). An expression whose
five fields are each ``*`` or a number within the field's range is one apscheduler accepts (a test checks
it over every such field); anything else, lists, ranges, steps, names or a mistake, goes to apscheduler,
whose error the caller reports.
"""

from __future__ import annotations

import re

#: minute, hour, day of month, month, day of week (apscheduler's ranges: Monday is 0).
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NUMBER = re.compile(r"[0-9]{1,2}", re.ASCII)


def check_crontab(expression: str) -> None:
    """Raise ValueError (apscheduler's) when ``expression`` is not a 5-field crontab expression."""
    if not _plain(expression):
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(expression)


def _plain(expression: str) -> bool:
    """True when every field is ``*`` or a number in its range (apscheduler accepts it)."""
    fields = expression.split()
    if len(fields) != len(_RANGES):
        return False
    for field, (low, high) in zip(fields, _RANGES, strict=True):
        if field != "*" and not (_NUMBER.fullmatch(field) and low <= int(field) <= high):
            return False
    return True
