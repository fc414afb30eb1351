"""The clock time-dependent code receives, so tests (and a replay) can set the instant.

Every "now" that decides something — whether a period has closed, where a retention window
ends, whether a ping is late, what a job considers past — comes from a Clock handed in: the
app's (``create_app(config, clock=...)``), the scheduler's, or a ``now`` argument. The wall
clock is read only here.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware, in UTC."""


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until it is moved: for tests and for replays."""

    def __init__(self, at: dt.datetime):
        self._lock = threading.Lock()
        self._at = _utc(at)

    def now(self) -> dt.datetime:
        with self._lock:
            return self._at

    def set(self, at: dt.datetime) -> None:
        with self._lock:
            self._at = _utc(at)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        with self._lock:
            self._at += delta
            return self._at


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("a clock's instant must be timezone-aware")
    return at.astimezone(dt.UTC)


SYSTEM = SystemClock()
