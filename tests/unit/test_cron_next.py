"""esb.config.cron.next_fire_time: a plain crontab's next fire time is apscheduler's
(``CronTrigger.get_next_fire_time``), over many expressions, zones and start times, daylight saving
changes included; other expressions are apscheduler's own answer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from esb.config import cron

#: UTC, zones with daylight saving either side of the equator, a 30-minute shift (Lord Howe), a
#: 45-minute offset (Chatham), a zone that dropped it (Shanghai), one whose change is at midnight (Santiago).
ZONES = [
    "UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Santiago", "Australia/Sydney",
    "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Shanghai", "Asia/Kolkata", "America/Sao_Paulo",
]  # fmt: skip

#: The most days each month can have.
DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _theirs(expression: str, zone: tzinfo, now: datetime) -> datetime | None:
    """apscheduler's answer: the oracle."""
    found: datetime | None = CronTrigger.from_crontab(expression, timezone=zone).get_next_fire_time(None, now)
    return found


def _same(ours: datetime | None, theirs: datetime | None) -> bool:
    """The same instant, shown the same way (wall clock, offset, zone name, fold)."""
    if ours is None or theirs is None:
        return ours is theirs
    return (ours == theirs and ours.replace(tzinfo=None) == theirs.replace(tzinfo=None)
            and ours.utcoffset() == theirs.utcoffset() and ours.tzname() == theirs.tzname()
            and ours.fold == theirs.fold)  # fmt: skip


def _transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """The UTC instants in ``year`` at which ``zone``'s offset changes (found hour by hour)."""
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    before = at.astimezone(zone).utcoffset()
    while at.year == year:
        at += timedelta(hours=1)
        offset = at.astimezone(zone).utcoffset()
        if offset != before:
            found.append(at)
            before = offset
    return found


def _field(rng: random.Random, low: int, high: int) -> str:
    """``*`` or a number of the field's range, its ends more often than by chance."""
    return rng.choice(["*", "*", str(low), str(high), *(str(rng.randint(low, high)) for _ in range(2))])


def _expression(rng: random.Random) -> str:
    """A random plain crontab expression on a date that exists (one that never does walks apscheduler to
    year 9999, seconds each: test_rare_days_and_impossible_dates_are_apschedulers has one)."""
    while True:
        fields = [_field(rng, low, high) for low, high in cron._RANGES]
        day, month = fields[2:4]
        if day == "*" or month == "*" or int(day) <= DAYS[int(month) - 1]:
            return " ".join(fields)


def test_random_plain_expressions_fire_when_apscheduler_says() -> None:
    """1,500 random plain expressions at random times in random zones: the same next fire time."""
    rng = random.Random(26)
    for _ in range(1500):
        expression = _expression(rng)
        zone = ZoneInfo(rng.choice(ZONES))
        now = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(12 * 365 * 86400), microseconds=rng.choice([0, rng.randrange(10**6)])
        )
        now = now.astimezone(zone)
        ours, theirs = cron.next_fire_time(expression, zone, now), _theirs(expression, zone, now)
        assert _same(ours, theirs), (expression, zone, now, ours, theirs)


@pytest.mark.parametrize("name", [z for z in ZONES if z not in ("UTC", "Asia/Shanghai", "Asia/Kolkata")])
def test_around_daylight_saving_changes_the_next_fire_time_is_apschedulers(name: str) -> None:
    """Around each change of offset (skipped and repeated hours), every 20 minutes from two hours before
    to two hours after, with expressions aimed into the gap and the fold: the same next fire time."""
    zone = ZoneInfo(name)
    rng = random.Random(name)
    for change in _transitions(zone, 2026) + _transitions(zone, 2021):
        local = change.astimezone(zone)
        aimed = [f"{m} {h} * * *" for h in {local.hour, (local - timedelta(hours=1)).hour, 2, 3, 0, 23}
                 for m in (0, 30, 59)]  # fmt: skip
        aimed += ["* * * * *", f"* {local.hour} * * *", f"30 * {local.day} {local.month} *",
                  f"0 {local.hour} * * {local.weekday()}", "0 0 * * *"]  # fmt: skip
        aimed += [_expression(rng) for _ in range(4)]
        for minutes in range(-120, 121, 20):
            now = (change + timedelta(minutes=minutes, seconds=rng.choice([0, 0, 1, 59]))).astimezone(zone)
            for expression in aimed:
                ours, theirs = cron.next_fire_time(expression, zone, now), _theirs(expression, zone, now)
                assert _same(ours, theirs), (expression, name, now, ours, theirs)


@pytest.mark.parametrize(
    "expression",
    ["0 0 29 2 *", "0 0 31 * *", "59 23 31 12 6", "0 0 * * 6", "0 0 1 1 *", "0 0 29 2 0"],
)
def test_rare_days_and_impossible_dates_are_apschedulers(expression: str) -> None:
    """Leap days, 31sts, a day and weekday both set, and dates that never come: apscheduler's answer."""
    for zone in (ZoneInfo("UTC"), ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe")):
        for now in (datetime(2023, 3, 1, tzinfo=zone), datetime(2024, 2, 29, 23, 59, 59, 5, tzinfo=zone),
                    datetime(2027, 12, 31, 23, 59, tzinfo=zone)):  # fmt: skip
            ours, theirs = cron.next_fire_time(expression, zone, now), _theirs(expression, zone, now)
            assert _same(ours, theirs), (expression, zone, now, ours, theirs)


def test_a_date_that_never_comes_has_no_next_fire_time() -> None:
    """30 February: None, as apscheduler says after walking to year 9999."""
    zone = ZoneInfo("UTC")
    now = datetime(2026, 1, 1, tzinfo=zone)
    assert cron.next_fire_time("0 0 30 2 *", zone, now) is None
    assert _theirs("0 0 30 2 *", zone, now) is None


def test_other_expressions_are_answered_by_apscheduler() -> None:
    """Lists, ranges, steps and names still get a next fire time (apscheduler's)."""
    zone, now = ZoneInfo("Europe/Berlin"), datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    for expression in ("0,30 8-18/2 * 1-6 mon-fri", "*/5 * * * *", "0 3 * * sun"):
        assert cron.next_fire_time(expression, zone, now) == _theirs(expression, zone, now)
