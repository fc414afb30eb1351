"""Retention: pings lose each purpose as its window closes, are coarsened to what remains,
and are deleted when nothing remains. Withdrawals and policy changes apply to stored data;
legal holds pause all of it for their subjects. Every run leaves evidence.

A tenant's run is a sequence of phases (run_tenant), each a function here; the batch
machinery they share is govern.domain.retention_batches, privacy-zone sweeps are
govern.domain.zone_sweeps and partition maintenance govern.domain.partitions.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from govern import jsontext
from govern.clock import FOREVER, NEVER
from govern.db import tenant_session
from govern.domain import release
from govern.domain.partitions import maintain_partitions
from govern.domain.policy import current_policy
from govern.domain.retention_batches import (
    DEFAULT_BATCH,
    Budget,
    Entry,
    Interrupted,
    Rules,
    TenantRun,
    bit,
    day_pieces,
    delete_in_batches,
    recompute,
)
from govern.domain.tenants import tenant_ids
from govern.domain.trips import build_tenant
from govern.domain.zone_sweeps import sweep_new_zones, sweep_subject_zones
from govern.models import Purpose
from govern.policy.cutoffs import aggregate_window_start, window_start
from govern.sql import consent as consent_sql
from govern.sql import retention as sql

# what callers and tests have always imported from here
__all__ = ["DEFAULT_BATCH", "FOREVER", "NEVER", "Budget", "Entry", "Interrupted", "Rules",
           "TenantRun", "_day_pieces", "maintain_partitions", "run_all", "run_tenant"]
_day_pieces = day_pieces


@dataclass
class _Pass:
    """What every phase of one tenant's run shares."""

    sessions: sessionmaker
    tenant_id: uuid.UUID
    now: dt.datetime
    run: TenantRun
    purposes: list[Purpose]
    held: list[uuid.UUID]
    batch: int
    budget: Budget
    rules: Rules

    @property
    def dry_run(self) -> bool:
        return self.run.dry_run

    @property
    def by_id(self) -> dict:
        return {p.purpose_id: p for p in self.purposes}

    def recompute(self, **kwargs) -> tuple[int, int]:
        return recompute(self.sessions, self.tenant_id, self.rules, batch=self.batch,
                         dry_run=self.dry_run, budget=self.budget, **kwargs)


def run_tenant(sessions: sessionmaker, tenant_id: uuid.UUID, now: dt.datetime, *,
               dry_run: bool = False, batch: int = DEFAULT_BATCH,
               budget: Budget | None = None) -> TenantRun:
    budget = budget or Budget()
    if not dry_run:
        build_tenant(sessions, tenant_id, now=now)  # stops and trips before their pings age
    run = TenantRun(tenant_id, uuid.uuid4(), now, dry_run)
    with tenant_session(sessions, tenant_id) as s:
        purposes = list(s.scalars(select(Purpose).order_by(Purpose.bit)))
        scope = {"tenant_id": tenant_id}
        holds = s.execute(sql.ACTIVE_HOLDS, {**scope, "now": now}).all()
        ended = s.execute(sql.ENDED_HOLDS, {**scope, "now": now}).all()
        state = {r.purpose_id: r for r in s.execute(sql.RETENTION_STATE, scope)}
        consent_seq = s.execute(sql.CONSENT_SEQ_APPLIED, scope).scalar()
        aggregate_days = current_policy(s)["aggregate_retention_days"]
    if any(h.subject_id is None for h in holds):
        run.entries.append(Entry("held", details={"scope": "tenant"}))
        _age_rollups(sessions, tenant_id, now, aggregate_days, run, batch, budget)
        return _finish(sessions, run)
    tenant_release = [h for h in ended if h.subject_id is None]
    if tenant_release:
        # a tenant-wide hold ended: everything it paused is due, so start the passes over
        state, consent_seq = {}, 0
        for h in tenant_release:
            run.entries.append(Entry("hold_released", details={"hold_id": str(h.hold_id),
                                                                "scope": "tenant"}))
    with tenant_session(sessions, tenant_id) as s:
        withdrawals = s.execute(consent_sql.NEW_WITHDRAWALS, {"after_seq": consent_seq}).all()
    p = _Pass(sessions, tenant_id, now, run, purposes, [h.subject_id for h in holds], batch,
              budget, Rules.of(purposes, now))
    _age_closed_windows(p, state)
    _apply_withdrawals(p, withdrawals)
    _apply_coarser_precision(p, state)
    _catch_up_ended_holds(p, ended)
    sweep_new_zones(sessions, tenant_id, now, run, held=p.held, batch=batch, budget=budget)
    _age_rollups(sessions, tenant_id, now, aggregate_days, run, batch, budget)
    return _finish(sessions, run)


def _age_closed_windows(p: _Pass, state: dict) -> None:
    """1. Windows that closed since the last run (progress kept per day partition)."""
    for purpose in p.purposes:
        cutoff = window_start(purpose.retention_days, purpose.window_floor, p.now)
        since = state[purpose.purpose_id].aged_until if purpose.purpose_id in state else NEVER
        if cutoff <= since:
            continue

        def progress(t: dt.datetime, purpose_id=purpose.purpose_id) -> None:
            _save_state(p.sessions, p.tenant_id, purpose_id, aged_until=t)

        aged, deleted = p.recompute(touch_bits=bit(purpose), t_from=since, t_to=cutoff,
                                    held=p.held, done_until=progress)
        p.run.entries.append(Entry("age", purpose.key, cutoff, aged, deleted))
        if not p.dry_run:
            _save_state(p.sessions, p.tenant_id, purpose.purpose_id, aged_until=cutoff)


def _apply_withdrawals(p: _Pass, withdrawals: list) -> None:
    """2. Consent withdrawn since the last run: the purpose leaves every ping the subject
    recorded up to the withdrawal, whether or not consent was granted again since
    (govern.policy.cutoffs; reads apply the same cut-off before this runs)."""
    by_id = p.by_id
    for w in withdrawals:
        purpose = by_id[w.purpose_id]
        if w.subject_id in p.held:
            continue
        aged, deleted = p.recompute(touch_bits=bit(purpose), extra_clear=bit(purpose),
                                    subject_id=w.subject_id, t_to=w.until)
        p.run.entries.append(Entry("withdrawal", purpose.key, p.now, aged, deleted,
                                   details={"subject_id": str(w.subject_id)}))
    if withdrawals and not p.dry_run:
        with tenant_session(p.sessions, p.tenant_id) as s:
            s.execute(sql.SET_CONSENT_SEQ_APPLIED, {"tenant_id": p.tenant_id,
                                                    "seq": max(w.seq for w in withdrawals)})


def _apply_coarser_precision(p: _Pass, state: dict) -> None:
    """3. A purpose made coarser: re-snap what it still serves."""
    for purpose in p.purposes:
        applied = (state[purpose.purpose_id].precision_applied
                   if purpose.purpose_id in state else None)
        if applied is not None and purpose.precision_m <= applied:
            if purpose.precision_m < applied and not p.dry_run:
                _save_state(p.sessions, p.tenant_id, purpose.purpose_id,
                            precision=purpose.precision_m)
            continue
        aged, deleted = p.recompute(touch_bits=bit(purpose), held=p.held)
        if aged or deleted:
            p.run.entries.append(Entry("precision", purpose.key, None, aged, deleted,
                                       details={"precision_m": purpose.precision_m}))
        if not p.dry_run:
            _save_state(p.sessions, p.tenant_id, purpose.purpose_id,
                        precision=purpose.precision_m)


def _catch_up_ended_holds(p: _Pass, ended: list) -> None:
    """4. Holds that ended: everything the hold paused, for its subject (a tenant-wide one
    restarted the passes in run_tenant)."""
    by_id = p.by_id
    for h in ended:
        if h.subject_id is not None:
            if h.subject_id in p.held:
                continue  # another hold still applies
            all_bits = sum(bit(purpose) for purpose in p.purposes)
            withdrawn = sum(bit(by_id[w.purpose_id])
                            for w in _withdrawn_for(p.sessions, p.tenant_id, h.subject_id, p.now)
                            if by_id[w.purpose_id].requires_consent)
            aged, deleted = p.recompute(touch_bits=all_bits, extra_clear=withdrawn,
                                        subject_id=h.subject_id)
            p.run.entries.append(Entry("hold_released", None, p.now, aged, deleted,
                                       details={"hold_id": str(h.hold_id),
                                                "subject_id": str(h.subject_id)}))
            sweep_subject_zones(p.sessions, p.tenant_id, h.subject_id, p.now, p.run,
                                held=p.held, batch=p.batch, budget=p.budget)
        if not p.dry_run:
            with tenant_session(p.sessions, p.tenant_id) as s:
                s.execute(sql.MARK_HOLD_CAUGHT_UP, {"tenant_id": p.tenant_id, "now": p.now,
                                                    "h": h.hold_id})


def _withdrawn_for(sessions, tenant_id, subject_id, now) -> list:
    with tenant_session(sessions, tenant_id) as s:
        return s.execute(sql.WITHDRAWN_PURPOSES, {"subject_id": subject_id, "now": now}).all()


def _age_rollups(sessions, tenant_id, now, days, run: TenantRun, batch, budget) -> None:
    cutoff = aggregate_window_start(days, now)
    if run.dry_run:
        with tenant_session(sessions, tenant_id) as s:
            n = s.execute(sql.COUNT_OLD_ROLLUPS, {"tenant_id": tenant_id, "c": cutoff}).scalar()
    else:
        n = delete_in_batches(sessions, tenant_id, sql.AGE_ROLLUPS,
                              {"tenant_id": tenant_id, "cutoff": cutoff, "batch": batch},
                              batch, budget)
        with tenant_session(sessions, tenant_id) as s:
            release.expire(s, now, days)  # released answers and their basis, whole days
    if n:
        run.entries.append(Entry("rollups", None, cutoff, 0, n))


def _save_state(sessions, tenant_id, purpose_id, aged_until=None, precision=None) -> None:
    with tenant_session(sessions, tenant_id) as s:
        s.execute(sql.SAVE_STATE,
                  {"t": tenant_id, "p": purpose_id, "a": aged_until, "pr": precision})


def _finish(sessions, run: TenantRun) -> TenantRun:
    if run.dry_run or not run.entries:
        return run
    with tenant_session(sessions, run.tenant_id) as s:
        for n, e in enumerate(run.entries):
            s.execute(sql.RUN_ENTRY,
                      {"t": run.tenant_id, "r": run.run_id, "n": n, "started": run.started_at,
                       "kind": e.kind, "key": e.purpose_key, "cutoff": e.cutoff,
                       "aged": e.aged, "deleted": e.deleted, "dropped": e.dropped,
                       "details": jsontext.dumps(e.details)})
    return run


def list_runs(session, t_from: dt.datetime | None, t_to: dt.datetime | None,
              limit: int) -> list[dict]:
    """The evidence entries of runs started in [t_from, t_to) (either open), newest first."""
    rows = session.execute(sql.RUN_LIST, {"tenant_id": session.info.get("tenant_id"),
                                          "f": t_from, "to": t_to, "limit": limit}).all()
    return [dict(r._mapping) for r in rows]


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
