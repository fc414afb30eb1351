"""The clock time-dependent code receives, so tests (and a replay) can set the instant.

Every "now" that decides something — whether a period has closed, where a retention window
ends, whether a ping is late, what a job considers past — comes from a Clock handed in: the
app's (``create_app(config, clock=...)``), the scheduler's, or a ``now`` argument: the API
passes the request's instant to every report, read, request, hold and the door. Not yet
everywhere: the domain functions that stamp when a change happened still read the wall
clock themselves (duty changes, device revocation, a purpose edit's cut-off floor, token
creation, last use and revocation, member removal), and several take ``now=None`` to mean
the wall clock for the CLI's and the demo's callers.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol

# The bounds of stored time, for ranges meaning "from the first record" and "to the last":
# every stored instant lies in the years 2000-2100 (ingest validates it), so these lie
# before and after all of them (and both fit a PostgreSQL timestamptz).
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FOREVER = dt.datetime.max.replace(tzinfo=dt.UTC)


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
