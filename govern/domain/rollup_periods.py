"""Rollup periods: the heatmap of every closed ISO week and calendar month, precomputed per
resolution from the hourly rollups, so a month's report reads one row per cell (about the
same number at 1M or 10M pings) instead of every cell-hour of the month.

A period is built only once it has closed (its end is past), and its cells are served only
while its `rollup_periods` row exists. A late ping (an app uploading days later) that lands
in a built period deletes that row in the same transaction as its rollups, so the report
falls back to the hourly rollups until the scheduler builds the period again: a built period
never hides a ping. Periods any part of which is past the tenant's aggregate retention are
neither built nor served (the retention run deletes them with the hourly rollups).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from govern.db import tenant_session
from govern.domain.policy import current_policy
from govern.policy.cutoffs import aggregate_window_start
from govern.policy.periods import month_start, next_month, week_start
from govern.sql import reports as sql

log = logging.getLogger("govern.rollup_periods")

RESOLUTIONS = (5, 6, 7, 8, 9)
MAX_BUILDS_PER_RUN = 60  # per tenant; a backlog (first run, long outage) spreads over runs


def period_bounds(period: str, start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if period == "week":
        return start, start + dt.timedelta(days=7)
    return start, next_month(start)


def closed_periods(now: dt.datetime, not_before: dt.datetime) -> Iterator[tuple[str, dt.datetime]]:
    """Every ISO week and month that starts at or after `not_before` and has ended by
    `now`, newest first (the ones analysts ask for first)."""
    w = week_start(now) - dt.timedelta(days=7)
    while w >= not_before:
        yield "week", w
        w -= dt.timedelta(days=7)
    m = month_start(month_start(now) - dt.timedelta(days=1))
    while m >= not_before:
        yield "month", m
        m = month_start(m - dt.timedelta(days=1))


def touches_closed_period(first_bucket: dt.datetime, now: dt.datetime) -> bool:
    """Whether a ping recorded at `first_bucket` lands in a week or month that has closed
    (and so may be built). Live pings never do, so they pay nothing for periods."""
    return first_bucket < max(week_start(now), month_start(now))


def invalidate(session: Session, tenant_id: uuid.UUID, first_bucket: dt.datetime,
               last_bucket: dt.datetime) -> None:
    """Unmark the built periods [first_bucket, last_bucket] lands in (call in the same
    transaction that adds these buckets' rollups)."""
    session.execute(sql.LOCK_PERIODS, {"tenant_id": tenant_id})
    session.execute(sql.INVALIDATE_PERIODS, {"first": first_bucket, "last": last_bucket})


def period_cells(session: Session, period: str, start: dt.datetime, resolution: int):
    """A built period's cells, or None when it is not built (use the hourly rollups)."""
    params = {"period": period, "start": start}
    rows = session.execute(sql.PERIOD_CELLS, {**params, "resolution": resolution}).all()
    if rows or session.execute(sql.PERIOD_BUILT, params).first():
        return rows
    return None


def build_period(session: Session, tenant_id: uuid.UUID, period: str,
                 start: dt.datetime) -> int:
    """Build one period at every resolution (in the caller's transaction); returns the
    number of resolution-9 cells."""
    start, end = period_bounds(period, start)
    session.execute(sql.LOCK_PERIODS, {"tenant_id": tenant_id})
    params = {"tenant_id": tenant_id, "period": period, "start": start, "end": end,
              "t_from": start, "t_to": end}
    session.execute(sql.CLEAR_PERIOD, params)
    cells = 0
    for res in RESOLUTIONS:
        cells = session.execute(sql.build_period_cells(res), params).rowcount
    session.execute(sql.MARK_BUILT, {**params, "cells": cells})
    return cells


def build_tenant(sessions: sessionmaker, tenant_id: uuid.UUID, now: dt.datetime, *,
                 limit: int = MAX_BUILDS_PER_RUN) -> dict:
    """Build the tenant's closed periods that are not built yet, from the one holding its
    oldest rollup on (newest first, at most `limit`), one transaction each."""
    with tenant_session(sessions, tenant_id) as s:
        cutoff = aggregate_window_start(current_policy(s)["aggregate_retention_days"], now)
        first = s.execute(sql.FIRST_BUCKET).scalar()
        built = {(r.period, r.period_start) for r in s.execute(sql.BUILT_PERIODS,
                                                                {"since": cutoff})}
    if first is None:
        return {"built": 0, "cells": 0, "left": 0}
    first_start = {"week": week_start(first), "month": month_start(first)}
    todo = [(period, start) for period, start in closed_periods(now, cutoff)
            if start >= first_start[period] and (period, start) not in built]
    done, cells, started = 0, 0, time.perf_counter()
    for period, start in todo[:limit]:
        with tenant_session(sessions, tenant_id) as s:
            cells += build_period(s, tenant_id, period, start)
        done += 1
    if done:
        log.info("rollup periods built", extra={"fields": {
            "tenant_id": str(tenant_id), "periods": done, "cells": cells,
            "left": len(todo) - done,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1)}})
    return {"built": done, "cells": cells, "left": len(todo) - done}


def build_all(owner: Engine, sessions: sessionmaker, now: dt.datetime | None = None) -> dict:
    """The scheduler's job: every tenant's closed periods, and the release basis of its
    settled days (govern.domain.release.freeze_settled)."""
    from govern.domain import release
    from govern.domain.tenants import tenant_ids

    now = now or dt.datetime.now(dt.UTC)
    total = {"tenants": 0, "built": 0, "cells": 0, "left": 0, "frozen_days": 0}
    for tid in tenant_ids(owner):
        r = build_tenant(sessions, tid, now)
        total["tenants"] += 1
        for k in ("built", "cells", "left"):
            total[k] += r[k]
        total["frozen_days"] += release.freeze_settled(sessions, tid, now)
    return total
