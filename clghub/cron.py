"""Cron expressions as people write them, turned into APScheduler triggers.

Five fields (minute hour day month weekday) as in crontab, or six with a
leading seconds field. Weekdays follow crontab: 0 and 7 are Sunday, 1 is
Monday (APScheduler's own numbering starts at Monday = 0, so numeric
weekdays are translated to names, which both agree on).
"""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger

__all__ = ["parse_cron"]

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _weekday(field: str) -> str:
    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise ValueError(f"weekday {number} is out of range (0-7, 0 and 7 are Sunday)")
        return _DAYS[number]

    if "/" in field and re.search(r"\d", field.split("/")[0]):
        raise ValueError("use weekday names (mon-fri) with a step, not numbers")
    head, _, step = field.partition("/")
    head = re.sub(r"\d+", name, head)
    return f"{head}/{step}" if step else head


def parse_cron(expression: str, timezone: str) -> CronTrigger:
    """A trigger for ``expression``; ValueError says what is wrong with it."""
    fields = expression.split()
    if len(fields) == 5:
        second = "0"
        minute, hour, day, month, weekday = fields
    elif len(fields) == 6:
        second, minute, hour, day, month, weekday = fields
    else:
        raise ValueError(f"expected 5 fields (minute hour day month weekday) or 6 (with seconds first), got {len(fields)}")
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekday(weekday),
        timezone=timezone,
    )
