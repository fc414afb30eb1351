"""The rules a ping is judged by at the door, one small function each.

Reasons, in the order they are checked: future, subject_blocked, inaccurate, no_consent,
expired, outside_window, off_duty, then privacy_zone (checked in PostGIS, set-wise).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence

FUTURE_TOLERANCE = dt.timedelta(minutes=5)


def is_from_the_future(t: dt.datetime, now: dt.datetime) -> bool:
    return t > now + FUTURE_TOLERANCE


def is_too_inaccurate(acc: float | None, min_accuracy_m: float | None) -> bool:
    """Unknown accuracy is kept: many apps omit it, and precision is reduced anyway."""
    return acc is not None and min_accuracy_m is not None and acc > min_accuracy_m


def finest_precision(precisions: Sequence[int]) -> int:
    """A ping is stored at the finest precision one of its purposes allows, and no finer."""
    return min(precisions)


class StateTimeline:
    """A boolean state over time from its change instants, for O(log n) look-ups per ping.

    `changes` are sorted instants where the state flips, starting from `initial` before the
    first one.
    """

    def __init__(self, initial: bool, changes: Sequence[dt.datetime]):
        self.initial = initial
        self.changes = list(changes)

    def at(self, t: dt.datetime) -> bool:
        flips = bisect.bisect_right(self.changes, t)
        return self.initial if flips % 2 == 0 else not self.initial


def duty_timeline(events: Sequence[tuple[dt.datetime, bool]]) -> StateTimeline:
    """On duty unless a duty event says otherwise; events are (at, on_duty), in order."""
    state, changes = True, []
    for at, on_duty in events:
        if on_duty != state:
            changes.append(at)
            state = on_duty
    return StateTimeline(True, changes)
