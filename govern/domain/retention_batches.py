"""The machinery every retention phase shares: what a run records (Entry, TenantRun), the
batch budget, the rules as SQL parameters, and the bounded-batch loops over pings.

Work is done in bounded batches, each its own transaction, so the API keeps serving and a
run killed half-way leaves consistent data that the next run finishes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from govern.clock import FOREVER, NEVER
from govern.db import tenant_session
from govern.domain.travel_ageing import age_travel
from govern.models import Purpose
from govern.policy.cutoffs import window_start
from govern.sql import retention as sql

DEFAULT_BATCH = 5000


@dataclass
class Entry:
    kind: str
    purpose_key: str | None = None
    cutoff: dt.datetime | None = None
    aged: int = 0
    deleted: int = 0
    dropped: int = 0
    details: dict = field(default_factory=dict)


@dataclass
class TenantRun:
    tenant_id: uuid.UUID
    run_id: uuid.UUID
    started_at: dt.datetime
    dry_run: bool
    entries: list[Entry] = field(default_factory=list)

    def totals(self) -> dict:
        return {k: sum(getattr(e, k) for e in self.entries) for k in ("aged", "deleted",
                                                                       "dropped")}


class Interrupted(Exception):
    """Raised when a run stops after its batch budget (tests use it as a kill)."""


@dataclass
class Budget:
    """At most `max_batches` batch transactions (None: unlimited), and a progress callback."""

    max_batches: int | None = None
    on_batch: Callable[[int], None] | None = None
    used: int = 0

    def spend(self, rows: int) -> None:
        self.used += 1
        if self.on_batch:
            self.on_batch(rows)
        if self.max_batches is not None and self.used >= self.max_batches:
            raise Interrupted()


@dataclass
class Rules:
    bits: list[int]
    cutoffs: list[dt.datetime]
    precs: list[int]

    @classmethod
    def of(cls, purposes: list[Purpose], now: dt.datetime) -> Rules:
        return cls([p.bit for p in purposes],
                   [window_start(p.retention_days, p.window_floor, now) for p in purposes],
                   [p.precision_m for p in purposes])

    def params(self) -> dict:
        return {"bits": self.bits, "cutoffs": self.cutoffs, "precs": self.precs}


ONE_US = dt.timedelta(microseconds=1)  # timestamptz resolution: (x - 1 us, y - 1 us] = [x, y)


def day_pieces(sessions: sessionmaker, tenant_id: uuid.UUID, t_from: dt.datetime,
                t_to: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """(t_from, t_to] cut at the ping partitions' bounds, oldest first: each piece lies in
    one day partition, so a batch's scan touches that partition alone (not every older day
    again, batch after batch). Ranges with no partition hold no pings and give no piece."""
    with tenant_session(sessions, tenant_id) as s:
        bounds = s.execute(sql.PING_PARTITION_BOUNDS).all()
    if any(b.lower_bound is None for b in bounds):  # a DEFAULT partition: one range
        return [(t_from, t_to)]
    pieces = []
    for b in bounds:  # partition [lo, hi) is the range (lo - 1 us, hi - 1 us]
        lo, hi = max(t_from, b.lower_bound - ONE_US), min(t_to, b.upper_bound - ONE_US)
        if lo < hi:
            pieces.append((lo, hi))
    return pieces


def recompute(sessions: sessionmaker, tenant_id: uuid.UUID, rules: Rules, *, touch_bits: int,
               extra_clear: int = 0, t_from: dt.datetime = NEVER, t_to: dt.datetime = FOREVER,
               subject_id: uuid.UUID | None = None, held: list[uuid.UUID] = (),
               batch: int, dry_run: bool, budget: Budget,
               done_until: Callable[[dt.datetime], None] | None = None) -> tuple[int, int]:
    """Apply the rules to matching pings in batches; returns (aged, deleted).

    Without a subject, the range is walked one day partition at a time, oldest first, and
    `done_until(t)` is called once every matching ping up to t is done (to keep the progress
    of a long walk). A subject's pass is one range: its index finds the subject's pings."""
    params = {**rules.params(), "tenant_id": tenant_id, "t_from": t_from, "t_to": t_to,
              "subject_id": subject_id, "held": list(held), "touch_bits": touch_bits,
              "extra_clear": extra_clear, "batch": batch}
    if dry_run:
        with tenant_session(sessions, tenant_id) as s:
            row = s.execute(sql.COUNT_PENDING, params).one()
        age_travel(sessions, tenant_id, params, dry_run=True)
        return row.aged, row.deleted
    pieces = [(t_from, t_to)] if subject_id is not None \
        else day_pieces(sessions, tenant_id, t_from, t_to)
    aged = deleted = 0
    for lo, hi in pieces:
        piece = {**params, "t_from": lo, "t_to": hi}
        while True:
            with tenant_session(sessions, tenant_id) as s:
                row = s.execute(sql.APPLY_BATCH, piece).one()
            aged, deleted = aged + row.aged, deleted + row.deleted
            done = row.aged + row.deleted
            if done:
                budget.spend(done)
            if done < batch:
                break
        if done_until is not None and hi < t_to:
            done_until(hi)
    age_travel(sessions, tenant_id, params, budget=budget)  # stops and trips follow
    return aged, deleted


def bit(p: Purpose) -> int:
    return 1 << p.bit


def delete_in_batches(sessions, tenant_id, statement, params: dict, batch: int,
                      budget: Budget) -> int:
    """Run a bounded DELETE (`LIMIT :batch` inside) one transaction at a time until it
    deletes fewer than a batch; returns the rows deleted."""
    total = 0
    while True:
        with tenant_session(sessions, tenant_id) as s:
            done = s.execute(statement, params).rowcount
        total += done
        if done:
            budget.spend(done)
        if done < batch:
            return total
