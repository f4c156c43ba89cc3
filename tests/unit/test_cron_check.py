"""esb.config.cron: a plain crontab expression is accepted without apscheduler only when apscheduler
accepts it, and every other expression is apscheduler's to judge."""

from __future__ import annotations

import itertools
import re

import pytest
from apscheduler.triggers.cron import CronTrigger

from esb.config import cron

#: Each field's candidates: both ends of its range, one past each, a wildcard, padding, signs, steps.
VALUES = ["*", "0", "1", "6", "7", "12", "13", "23", "24", "31", "32", "59", "60", "05", "-1", "+1", "*/5"]


def _apscheduler_accepts(expression: str) -> bool:
    """What CronTrigger.from_crontab says of ``expression``."""
    try:
        CronTrigger.from_crontab(expression)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("position", range(5))
def test_a_plain_expression_is_one_apscheduler_accepts(position: int) -> None:
    """Every value in every field: taken as plain only if apscheduler accepts the expression too."""
    for value in VALUES:
        fields = ["*"] * 5
        fields[position] = value
        expression = " ".join(fields)
        if cron._plain(expression) is not None:
            assert _apscheduler_accepts(expression), expression


def test_plain_expressions_cover_numbers_in_range_and_wildcards() -> None:
    """The schedules the project writes (numbers and *) take the path without apscheduler."""
    for expression in ("0 3 * * 0", "30 3 * * 0", "59 23 31 12 6", "* * * * *", "05 1 1 1 *"):
        assert cron._plain(expression) is not None, expression
    for fields in itertools.product(["0", "*"], repeat=5):
        assert (cron._plain(" ".join(fields)) is not None) == ("0" not in fields[2:4])


@pytest.mark.parametrize("expression", ["0 3 * *", "0 3 * * 7", "61 * * * *", "0 3 * * mon x", "a b c d e"])
def test_other_expressions_get_apschedulers_error(expression: str) -> None:
    """What is not plain is judged by apscheduler: its ValueError, the same as calling it."""
    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        theirs = str(exc)
    with pytest.raises(ValueError, match=f"^{re.escape(theirs)}$"):
        cron.check_crontab(expression)


def test_lists_ranges_and_names_are_accepted_through_apscheduler() -> None:
    """An expression apscheduler accepts but that is not plain still passes."""
    cron.check_crontab("0,30 8-18/2 * 1-6 mon-fri")
