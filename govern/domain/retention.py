"""Retention: pings lose each purpose as its window closes, are coarsened to what remains,
and are deleted when nothing remains. Withdrawals and policy changes apply to stored data;
legal holds pause all of it for their subjects. Every run leaves evidence.

Work is done in bounded batches, each its own transaction, so the API keeps serving and a
run killed half-way leaves consistent data that the next run finishes.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg import sql as psql
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from govern.db import tenant_scope_sql, tenant_session
from govern.domain import release
from govern.domain.policy import current_policy
from govern.domain.trips import age_travel, build_tenant
from govern.models import Purpose
from govern.policy.cutoffs import window_start
from govern.sql import reports as reports_sql
from govern.sql import retention as sql

log = logging.getLogger("govern.retention")
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # before any ping (years 2000-2100)
FOREVER = dt.datetime.max.replace(tzinfo=dt.UTC)
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


def _day_pieces(sessions: sessionmaker, tenant_id: uuid.UUID, t_from: dt.datetime,
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


def _recompute(sessions: sessionmaker, tenant_id: uuid.UUID, rules: Rules, *, touch_bits: int,
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
        else _day_pieces(sessions, tenant_id, t_from, t_to)
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


def _bit(p: Purpose) -> int:
    return 1 << p.bit


def run_tenant(sessions: sessionmaker, tenant_id: uuid.UUID, now: dt.datetime, *,
               dry_run: bool = False, batch: int = DEFAULT_BATCH,
               budget: Budget | None = None) -> TenantRun:
    budget = budget or Budget()
    if not dry_run:
        build_tenant(sessions, tenant_id)  # derive stops and trips before their pings age
    run = TenantRun(tenant_id, uuid.uuid4(), now, dry_run)
    with tenant_session(sessions, tenant_id) as s:
        purposes = list(s.scalars(select(Purpose).order_by(Purpose.bit)))
        holds = s.execute(sql.ACTIVE_HOLDS, {"now": now}).all()
        ended = s.execute(sql.ENDED_HOLDS, {"now": now}).all()
        state = {r.purpose_id: r for r in s.execute(text(
            "SELECT purpose_id, aged_until, precision_applied FROM retention_state"))}
        consent_seq = s.execute(text("SELECT consent_seq_applied FROM tenants")).scalar()
        withdrawals = s.execute(sql.NEW_WITHDRAWALS, {"after_seq": consent_seq}).all()
        aggregate_days = current_policy(s)["aggregate_retention_days"]
    if any(h.subject_id is None for h in holds):
        run.entries.append(Entry("held", details={"scope": "tenant"}))
        _age_rollups(sessions, tenant_id, now, aggregate_days, run, batch, budget)
        return _finish(sessions, run)
    tenant_release = [h for h in ended if h.subject_id is None]
    if tenant_release:
        # a tenant-wide hold ended: everything it paused is due, so start the passes over
        state, consent_seq = {}, 0
        with tenant_session(sessions, tenant_id) as s:
            withdrawals = s.execute(sql.NEW_WITHDRAWALS, {"after_seq": 0}).all()
        for h in tenant_release:
            run.entries.append(Entry("hold_released", details={"hold_id": str(h.hold_id),
                                                                "scope": "tenant"}))
    held = [h.subject_id for h in holds]
    rules = Rules.of(purposes, now)
    by_id = {p.purpose_id: p for p in purposes}

    # 1. windows that closed since the last run
    for p in purposes:
        cutoff = window_start(p.retention_days, p.window_floor, now)
        since = state[p.purpose_id].aged_until if p.purpose_id in state else NEVER
        if cutoff <= since:
            continue
        def progress(t: dt.datetime, purpose_id=p.purpose_id) -> None:
            _save_state(sessions, tenant_id, purpose_id, aged_until=t)

        aged, deleted = _recompute(sessions, tenant_id, rules, touch_bits=_bit(p),
                                   t_from=since, t_to=cutoff, held=held, batch=batch,
                                   dry_run=dry_run, budget=budget, done_until=progress)
        run.entries.append(Entry("age", p.key, cutoff, aged, deleted))
        if not dry_run:
            _save_state(sessions, tenant_id, p.purpose_id, aged_until=cutoff)

    # 2. consent withdrawn since the last run: the purpose leaves every ping the subject
    # recorded up to the withdrawal, whether or not consent was granted again since
    # (govern.policy.cutoffs; reads apply the same cut-off before this runs)
    for w in withdrawals:
        p = by_id[w.purpose_id]
        if w.subject_id in held:
            continue
        aged, deleted = _recompute(sessions, tenant_id, rules, touch_bits=_bit(p),
                                   extra_clear=_bit(p), subject_id=w.subject_id,
                                   t_to=w.until, batch=batch, dry_run=dry_run,
                                   budget=budget)
        run.entries.append(Entry("withdrawal", p.key, now, aged, deleted,
                                 details={"subject_id": str(w.subject_id)}))
    if withdrawals and not dry_run:
        with tenant_session(sessions, tenant_id) as s:
            s.execute(text("UPDATE tenants SET consent_seq_applied = :seq"),
                      {"seq": max(w.seq for w in withdrawals)})

    # 3. a purpose made coarser: re-snap what it still serves
    for p in purposes:
        applied = state[p.purpose_id].precision_applied if p.purpose_id in state else None
        if applied is not None and p.precision_m <= applied:
            if p.precision_m < applied and not dry_run:
                _save_state(sessions, tenant_id, p.purpose_id, precision=p.precision_m)
            continue
        aged, deleted = _recompute(sessions, tenant_id, rules, touch_bits=_bit(p), held=held,
                                   batch=batch, dry_run=dry_run, budget=budget)
        if aged or deleted:
            run.entries.append(Entry("precision", p.key, None, aged, deleted,
                                     details={"precision_m": p.precision_m}))
        if not dry_run:
            _save_state(sessions, tenant_id, p.purpose_id, precision=p.precision_m)

    # 4. holds that ended: everything the hold paused, for its subject
    for h in ended:
        if h.subject_id is None:
            if not dry_run:
                with tenant_session(sessions, tenant_id) as s:
                    s.execute(text("UPDATE legal_holds SET caught_up_at = :now "
                                   "WHERE hold_id = :h"), {"now": now, "h": h.hold_id})
            continue
        if h.subject_id in held:
            continue  # another hold still applies
        all_bits = sum(_bit(p) for p in purposes)
        withdrawn = sum(_bit(by_id[w.purpose_id]) for w in _withdrawn_for(sessions, tenant_id,
                                                                           h.subject_id, now)
                        if by_id[w.purpose_id].requires_consent)
        aged, deleted = _recompute(sessions, tenant_id, rules, touch_bits=all_bits,
                                   extra_clear=withdrawn, subject_id=h.subject_id,
                                   batch=batch, dry_run=dry_run, budget=budget)
        run.entries.append(Entry("hold_released", None, now, aged, deleted,
                                 details={"hold_id": str(h.hold_id),
                                          "subject_id": str(h.subject_id) if h.subject_id
                                          else None}))
        # zones swept while the hold kept this subject's pings: apply them now
        with tenant_session(sessions, tenant_id) as s:
            zones = s.execute(sql.ZONES_FOR_SUBJECT, {"subject_id": h.subject_id}).all()
        for z in zones:
            _sweep_zone(sessions, tenant_id, z, now, run, held=held, subject_id=h.subject_id,
                        batch=batch, budget=budget)
        if not dry_run:
            with tenant_session(sessions, tenant_id) as s:
                s.execute(text("UPDATE legal_holds SET caught_up_at = :now "
                               "WHERE hold_id = :h"), {"now": now, "h": h.hold_id})

    # 5. privacy zones drawn since the last run: what they cover leaves the disk too
    with tenant_session(sessions, tenant_id) as s:
        zones = s.execute(sql.UNSWEPT_ZONES).all()
    for z in zones:
        _sweep_zone(sessions, tenant_id, z, now, run, held=held, batch=batch, budget=budget)
        if not dry_run:
            with tenant_session(sessions, tenant_id) as s:
                s.execute(sql.MARK_SWEPT, {"now": now, "zone_id": z.zone_id})

    _age_rollups(sessions, tenant_id, now, aggregate_days, run, batch, budget)
    return _finish(sessions, run)


def _sweep_zone(sessions, tenant_id, zone, now, run: TenantRun, *, held, batch, budget,
                subject_id: uuid.UUID | None = None) -> None:
    """Delete the pings (and stops and trips) stored inside a zone before it was drawn, for
    everyone it covers or one subject, held subjects excepted. The door drops pings in a
    zone from then on, and reads hide these at once; this removes them from disk. A
    tenant-wide zone reads every stored day once, one day partition at a time. Rollups keep
    their counts (aggregates, no person in them)."""
    params = {"tenant_id": tenant_id, "zone_id": zone.zone_id, "subject_id": subject_id,
              "held": list(held), "batch": batch, "t_from": NEVER, "t_to": FOREVER}
    if run.dry_run:
        with tenant_session(sessions, tenant_id) as s:
            deleted = s.execute(sql.COUNT_IN_ZONE, params).scalar()
            travel = s.execute(sql.COUNT_TRAVEL_IN_ZONE, params).one()
    else:
        pieces = [(NEVER, FOREVER)] if (subject_id or zone.subject_id) \
            else _day_pieces(sessions, tenant_id, NEVER, FOREVER)
        deleted = sum(_delete_in_batches(sessions, tenant_id, sql.SWEEP_ZONE,
                                         {**params, "t_from": lo, "t_to": hi}, batch, budget)
                      for lo, hi in pieces)
        with tenant_session(sessions, tenant_id) as s:
            travel = s.execute(sql.SWEEP_ZONE_TRAVEL, params).one()
    if deleted or travel.stops or travel.trips:
        details = {"zone_id": str(zone.zone_id), "stops": travel.stops, "trips": travel.trips}
        if subject_id or zone.subject_id:
            details["subject_id"] = str(subject_id or zone.subject_id)
        run.entries.append(Entry("zone", None, now, 0, deleted, details=details))


def _delete_in_batches(sessions, tenant_id, statement, params: dict, batch: int,
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


def _withdrawn_for(sessions, tenant_id, subject_id, now) -> list:
    with tenant_session(sessions, tenant_id) as s:
        rows = s.execute(text(
            "SELECT DISTINCT ON (purpose_id) purpose_id, status FROM consent_events "
            "WHERE subject_id = :s AND at <= :now ORDER BY purpose_id, at DESC, seq DESC"),
            {"s": subject_id, "now": now}).all()
    return [r for r in rows if r.status == "withdrawn"]


def _age_rollups(sessions, tenant_id, now, days, run: TenantRun, batch, budget) -> None:
    cutoff = now - dt.timedelta(days=days)
    if run.dry_run:
        with tenant_session(sessions, tenant_id) as s:
            n = s.execute(text("SELECT count(*) FROM rollups WHERE bucket < :c"),
                          {"c": cutoff}).scalar()
    else:
        n = _delete_in_batches(sessions, tenant_id, sql.AGE_ROLLUPS,
                               {"tenant_id": tenant_id, "cutoff": cutoff, "batch": batch},
                               batch, budget)
        with tenant_session(sessions, tenant_id) as s:  # weeks and months reaching past it
            s.execute(reports_sql.EXPIRE_PERIODS, {"cutoff": cutoff})
            release.expire(s, now, days)  # released answers and their basis, whole days
    if n:
        run.entries.append(Entry("rollups", None, cutoff, 0, n))


def _save_state(sessions, tenant_id, purpose_id, aged_until=None, precision=None) -> None:
    with tenant_session(sessions, tenant_id) as s:
        s.execute(text(
            "INSERT INTO retention_state (tenant_id, purpose_id, aged_until, precision_applied) "
            "VALUES (:t, :p, coalesce(CAST(:a AS timestamptz), '1970-01-01 00:00:00+00'), "
            "CAST(:pr AS int)) ON CONFLICT (tenant_id, purpose_id) DO UPDATE SET "
            "aged_until = coalesce(CAST(:a AS timestamptz), retention_state.aged_until), "
            "precision_applied = coalesce(CAST(:pr AS int), retention_state.precision_applied)"),
            {"t": tenant_id, "p": purpose_id, "a": aged_until, "pr": precision})


def _finish(sessions, run: TenantRun) -> TenantRun:
    if run.dry_run or not run.entries:
        return run
    with tenant_session(sessions, run.tenant_id) as s:
        for n, e in enumerate(run.entries):
            s.execute(text(
                "INSERT INTO retention_runs (tenant_id, run_id, entry, started_at, kind, "
                "purpose_key, cutoff, aged, deleted, dropped, details) VALUES (:t, :r, :n, "
                ":started, :kind, :key, :cutoff, :aged, :deleted, :dropped, "
                "CAST(:details AS jsonb))"),
                {"t": run.tenant_id, "r": run.run_id, "n": n, "started": run.started_at,
                 "kind": e.kind, "key": e.purpose_key, "cutoff": e.cutoff, "aged": e.aged,
                 "deleted": e.deleted, "dropped": e.dropped,
                 "details": _json(e.details)})
    return run


def _json(value) -> str:
    import orjson

    return orjson.dumps(value, default=str).decode()


# ---- partitions (schema owner) ---------------------------------------------------------------

def maintain_partitions(owner: Engine, sessions: sessionmaker, now: dt.datetime, *,
                        ahead_days: int = 7, dry_run: bool = False) -> dict:
    """Create day partitions ahead; drop whole days past every tenant's longest window,
    unless a legal hold keeps a subject's rows in them. Evidence per tenant. Then summarize
    the arrival-time BRIN of the days that have ended (see sql.SUMMARIZE_RECEIVED).

    Each due day is one transaction: the hold check (an index probe per active hold), one
    grouped count of the day's pings per tenant for the evidence, the DROP and the
    `partition_drop` evidence rows commit together, so a day is never dropped without its
    evidence nor recorded as dropped when it was not. `sessions` is kept for the callers;
    the evidence is written on the owner's connection."""
    created = dropped = 0
    today = now.date()
    with owner.begin() as conn:
        if not dry_run:
            created = conn.execute(sql.ENSURE_PARTITIONS, {
                "first": today - dt.timedelta(days=1),
                "last": today + dt.timedelta(days=ahead_days)}).scalar()
        longest = conn.execute(sql.LONGEST_WINDOW_DAYS).scalar()
        cutoff = now - dt.timedelta(days=longest) if longest is not None else NEVER
        if not dry_run:  # the days that have ended and stay
            conn.execute(sql.SUMMARIZE_RECEIVED, {
                "after": cutoff, "before": dt.datetime.combine(today, dt.time(0), dt.UTC)})
        partitions = conn.execute(sql.PING_PARTITIONS).all()
    due = [p for p in partitions if longest is not None and p.upper_bound <= cutoff]
    for part in due:
        with owner.begin() as conn:
            raw = conn.connection.driver_connection
            name = psql.Identifier(part.name)
            held = raw.execute(psql.SQL(sql.PARTITION_HELD).format(part=name),
                               {"now": now}).fetchone()[0]
            if held:
                log.info("partition kept for a legal hold", extra={"fields": {
                    "partition": part.name}})
                continue
            counts = raw.execute(psql.SQL(sql.PARTITION_COUNTS).format(part=name)).fetchall()
            if not dry_run:
                raw.execute(psql.SQL("DROP TABLE {}").format(name))
                for tenant_id, n in counts:  # under RLS as the tenant, like _finish()
                    raw.execute(tenant_scope_sql(tenant_id))
                    raw.execute(sql.PARTITION_DROP_EVIDENCE, {
                        "t": tenant_id, "r": uuid.uuid4(), "started": now,
                        "cutoff": part.upper_bound, "dropped": n,
                        "details": _json({"partition": part.name})})
        dropped += 1
    return {"created": created, "dropped": dropped}


def tenant_ids(owner: Engine) -> list[uuid.UUID]:
    with owner.connect() as conn:
        return [r[0] for r in conn.execute(sql.TENANT_IDS)]


def run_all(owner: Engine, sessions: sessionmaker, now: dt.datetime | None = None, *,
            tenant_id: uuid.UUID | None = None, dry_run: bool = False,
            batch: int = DEFAULT_BATCH, budget: Budget | None = None) -> dict:
    """The retention job: partitions, then every tenant (or one)."""
    now = now or dt.datetime.now(dt.UTC)
    budget = budget or Budget()
    report = {"partitions": {"created": 0, "dropped": 0}, "tenants": {}}
    if tenant_id is None:
        report["partitions"] = maintain_partitions(owner, sessions, now, dry_run=dry_run)
    for tid in [tenant_id] if tenant_id else tenant_ids(owner):
        run = run_tenant(sessions, tid, now, dry_run=dry_run, batch=batch, budget=budget)
        report["tenants"][str(tid)] = {**run.totals(),
                                       "entries": [e.__dict__ for e in run.entries]}
    return report
