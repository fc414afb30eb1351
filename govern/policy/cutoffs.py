"""When data stops serving a purpose: cut-offs that only ever move forward.

A ping recorded at t serves a purpose while t is after the purpose's cut-off. The cut-off
is the latest of: the purpose's window (now - retention_days); every cut-off an earlier
`retention_days` put in force (`window_floor`: shortening then lengthening a window does not
bring back what the shorter one had closed); for individual reads, the instant the purpose
last became individually readable (`individual_since`: widening from aggregate-only applies
only to data collected after it); and the subject's latest withdrawal of consent for it (a
withdrawal ends the use of everything collected before it; granting again does not revive
it). Reads apply these at read time, whatever the scheduler has done; retention applies the
same cut-offs to what is on disk.
"""

from __future__ import annotations

import datetime as dt

NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def latest(*instants: dt.datetime | None) -> dt.datetime:
    return max((t for t in instants if t is not None), default=NEVER)


def window_start(retention_days: int, window_floor: dt.datetime | None,
                 now: dt.datetime) -> dt.datetime:
    """Nothing recorded at or before this instant serves the purpose any more."""
    return latest(now - dt.timedelta(days=retention_days), window_floor)


def aggregate_window_start(retention_days: int, now: dt.datetime) -> dt.datetime:
    """Aggregates (hourly rollups, their periods) from before this instant are past the
    tenant's aggregate retention; releases keep only the whole UTC days after it
    (govern.policy.release.retention_cutoff)."""
    return now - dt.timedelta(days=retention_days)


def floor_after_retention_change(old_days: int, window_floor: dt.datetime | None,
                                 now: dt.datetime) -> dt.datetime:
    """The floor to keep when `retention_days` changes at `now`: the old setting's cut-off
    stays in force for what it had already closed."""
    return latest(window_floor, now - dt.timedelta(days=old_days))
