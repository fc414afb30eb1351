"""Calendar periods in UTC."""

from __future__ import annotations

import datetime as dt


def next_month(start: dt.datetime) -> dt.datetime:
    """The first instant of the month after the one `start` (a month's first day) opens."""
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
