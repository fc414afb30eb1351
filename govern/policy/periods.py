"""Calendar periods in UTC: the ISO week (Monday to Monday) and the month an instant lies in."""

from __future__ import annotations

import datetime as dt


def week_start(t: dt.datetime) -> dt.datetime:
    """Monday 00:00 UTC of the ISO week holding t."""
    d = t.astimezone(dt.UTC).date()
    return dt.datetime.combine(d - dt.timedelta(days=d.weekday()), dt.time(0), dt.UTC)


def month_start(t: dt.datetime) -> dt.datetime:
    d = t.astimezone(dt.UTC).date()
    return dt.datetime(d.year, d.month, 1, tzinfo=dt.UTC)


def next_month(start: dt.datetime) -> dt.datetime:
    """The first instant of the month after the one `start` (a month's first day) opens."""
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
