"""Aggregate reports: only cells resting on at least k distinct subjects, and either fixed
aligned periods (no noise) or differential privacy under a daily budget."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import h3.api.basic_int as h3
from sqlalchemy.orm import Session

from govern.auth import Principal
from govern.domain import audit, rollup_periods
from govern.domain.policy import current_policy
from govern.errors import ApiError, Invalid
from govern.privacy import dp
from govern.sql import reports as sql

MAX_DP_RANGE = dt.timedelta(days=92)


def aligned_period(t_from: dt.datetime, t_to: dt.datetime) -> str | None:
    """'day', 'week' (ISO, Monday to Monday) or 'month' when the range is exactly one, in
    UTC; else None. Without noise, only such fixed periods are released, so two overlapping
    queries (a day, then the same day plus an hour) cannot be subtracted."""
    a, b = t_from.astimezone(dt.UTC), t_to.astimezone(dt.UTC)
    if a.time() != dt.time(0) or b.time() != dt.time(0):
        return None
    days = (b.date() - a.date()).days
    if days == 1:
        return "day"
    if days == 7 and a.weekday() == 0:
        return "week"
    next_month = (a.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    if a.day == 1 and b.date() == next_month.date():
        return "month"
    return None


def released_without_noise(subjects: int, min_day_subjects: int, k: int) -> bool:
    """A cell is released only if it rests on k subjects on every day it has data, so a
    longer period can never be differenced against its days to expose a small day."""
    return subjects >= k and min_day_subjects >= k


@dataclass
class Heatmap:
    cells: list[dict]
    suppressed: int
    k: int
    resolution: int
    mode: str
    period: str | None = None
    epsilon: float | None = None
    budget: dict = field(default_factory=dict)


def hour_aligned(t: dt.datetime) -> bool:
    return t.minute == 0 and t.second == 0 and t.microsecond == 0


def release_period(policy: dict, t_from: dt.datetime, t_to: dt.datetime) -> str | None:
    """The aligned period asked for (without DP), or None under DP; 422 for a range the
    tenant's policy does not allow to be released."""
    if t_to <= t_from:
        raise Invalid("'to' must be after 'from'.", {"to": ["must be after from"]})
    if policy["dp_epsilon_per_query"] is None:
        period = aligned_period(t_from, t_to)
        if period is None:
            raise Invalid(
                "Without differential privacy, reports are released only for whole UTC "
                "days, ISO weeks (Monday to Monday) or calendar months; ask for one of those, "
                "or have an admin turn differential privacy on.",
                {"from": ["must start a UTC day, ISO week or month"],
                 "to": ["must end that same day, week or month"]}, code="unaligned_period")
        return period
    if not (hour_aligned(t_from) and hour_aligned(t_to)):
        raise Invalid("from and to must be whole hours (rollups are hourly).",
                      {"from": ["whole hours"], "to": ["whole hours"]})
    if t_to - t_from > MAX_DP_RANGE:
        raise Invalid(f"A report may span at most {MAX_DP_RANGE.days} days.",
                      {"to": [f"at most {MAX_DP_RANGE.days} days after from"]})
    return None


def charge_budget(session: Session, tenant_id: uuid.UUID, epsilon: float,
                  eps_day: float) -> dict:
    """Charge one query to the tenant's daily budget (all aggregate reports share it), or
    refuse with 429 until 00:00 UTC."""
    today = dt.datetime.now(dt.UTC).date()
    charged = session.execute(sql.CHARGE_BUDGET, {"tenant_id": tenant_id, "day": today,
                                                  "epsilon": epsilon, "limit": eps_day}).first()
    if charged is None:
        used = session.execute(sql.BUDGET_SPENT, {"day": today}).scalar()
        tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), dt.UTC)
        retry = int((tomorrow - dt.datetime.now(dt.UTC)).total_seconds()) + 1
        raise ApiError(429, f"Today's privacy budget is spent ({used:g} of {eps_day:g}); "
                            "it renews at 00:00 UTC.", code="privacy_budget_spent",
                       details={"epsilon_per_query": epsilon, "epsilon_per_day": eps_day,
                                "spent_today": used}, headers={"Retry-After": str(retry)})
    return {"epsilon_per_day": eps_day, "spent_today": charged.spent,
            "remaining_today": max(eps_day - charged.spent, 0)}


def heatmap(session: Session, principal: Principal, t_from: dt.datetime, t_to: dt.datetime,
            resolution: int, request_id: str | None = None) -> Heatmap:
    policy = current_policy(session)
    k = policy["k_min_subjects"]
    eps, eps_day = policy["dp_epsilon_per_query"], policy["dp_epsilon_per_day"]
    period = release_period(policy, t_from, t_to)
    rows = heatmap_rows(session, policy, t_from, t_to, resolution)
    if eps is None:
        released = [r for r in rows if released_without_noise(r.subjects, r.min_day_subjects, k)]
        cells = [{"cell": r.cell, "pings": r.pings, "subjects": r.subjects} for r in released]
        result = Heatmap(cells, len(rows) - len(released), k, resolution, "aligned", period)
    else:
        result = _with_noise(session, principal.tenant_id, rows, k, resolution, eps, eps_day)
    audit.record(session, principal.tenant_id, principal.actor_id, "report.heatmap",
                 target_type="report", target_id="heatmap", request_id=request_id,
                 details={"from": t_from, "to": t_to, "resolution": resolution,
                          "released": len(result.cells), "suppressed": result.suppressed,
                          "mode": result.mode, "epsilon": result.epsilon})
    return result


def heatmap_rows(session: Session, policy: dict, t_from: dt.datetime, t_to: dt.datetime,
                 resolution: int, now: dt.datetime | None = None) -> list:
    """Per cell: pings, subjects, min_day_subjects. A built week or month is read as it was
    precomputed; anything else from the hourly rollups. Never anything past the tenant's
    aggregate retention, whether the retention job has deleted it yet or not."""
    cutoff = rollup_periods.aggregate_cutoff(policy, now or dt.datetime.now(dt.UTC))
    period = aligned_period(t_from, t_to)
    if period in ("week", "month") and t_from >= cutoff:
        rows = rollup_periods.period_cells(session, period, t_from.astimezone(dt.UTC),
                                           resolution)
        if rows is not None:
            return rows
    return session.execute(sql.heatmap(resolution),
                           {"t_from": max(t_from, cutoff), "t_to": t_to}).all()


def _with_noise(session: Session, tenant_id: uuid.UUID, rows, k: int, resolution: int,
                eps: float, eps_day: float) -> Heatmap:
    scales = dp.Scales.for_epsilon(eps)
    spent = dp.epsilon_spent(scales)
    budget = charge_budget(session, tenant_id, spent, eps_day)
    noisy_subjects = dp.noisy_counts([r.subjects for r in rows], scales.subjects)
    noisy_pings = dp.noisy_counts([r.pings for r in rows], scales.pings)
    cells, suppressed = [], 0
    for r, s, p in zip(rows, noisy_subjects, noisy_pings, strict=True):
        if s >= k:
            cells.append({"cell": r.cell, "pings": max(p, 0), "subjects": s})
        else:
            suppressed += 1
    noisy_suppressed = max(dp.noisy_count(suppressed, scales.suppressed), 0)
    return Heatmap(cells, noisy_suppressed, k, resolution, "differential_privacy",
                   epsilon=spent, budget=budget)


def cell_polygon(cell: int) -> list[list[float]]:
    ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(cell)]
    return [ring + [ring[0]]]


def cell_centre(cell: int) -> tuple[float, float]:
    return h3.cell_to_latlng(cell)
