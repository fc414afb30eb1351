"""The one release path of every aggregate report (heatmap, travel, visits, origin-
destination): period rules, retention edges, the k floor, complementary suppression
against what the tenant was already given, noise and budget under differential privacy,
and the metadata that says what was withheld and why.

Exact mode (no differential privacy, the default). A report is released only for a whole
UTC day, ISO week or calendar month that has closed and settled (`release_delay_hours`
after its end, for late uploads). Its first release is computed from a *frozen basis*:
each UTC day's aggregates are copied once (per family: the heatmap's cells from the
rollups, travel's stops and trips grouped by site and cell) and never change afterwards,
so late pings, ageing, withdrawals and redrawn sites reach no release of that day. The
answer is then stored and replayed verbatim whenever it is asked again. Before it is
stored, every candidate group is checked against every group of the same family already
released to the tenant: no sum or difference of released numbers isolates 1 to k-1
people (`govern.policy.release.complementary`), and no distinct count minus one nesting
with it, nor the overlap of two groups that make up a third, nor the crossings of groups
that make up another (along chains of levels for the heatmap, `chain_covers`; of one level
for the travel family), comes to 1 to k-1 (`govern.policy.release.exact_differences`).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from govern.exceptions import Exhausted, Invalid
from govern.models import Purpose
from govern.policy import release as rules
from govern.sql import release as sql
from govern.sql.travel_reports import Shape

MAX_DP_RANGE = dt.timedelta(days=92)


@dataclass(frozen=True)
class Safeguards:
    """The protections of exact mode, all on in production. The attack suite and the bench
    switch them off one by one to show what each one stops; nothing else does."""

    settle: bool = True  # only periods that have ended, plus the settling delay
    freeze: bool = True  # frozen daily basis, answers stored and replayed
    aligned_edges: bool = True  # retention and purpose windows cut at whole days
    complementary: bool = True  # secondary suppression against what was released
    differences: bool = True  # no exact difference of distinct counts under k
    covers: bool = True  # ... nor the crossings of the groups that make up another
    # differential privacy (the presence and advantage tests switch these off)
    dp_bound: bool = True  # at most m groups per person-day, values clamped
    dp_select: bool = True  # which groups appear chosen privately (threshold or public)


FULL = Safeguards()


@dataclass
class Release:
    """A released report: its rows and how they were protected."""

    rows: list[dict]
    k: int
    mode: str
    period: str | None = None
    withheld: dict[str, int] = field(default_factory=dict)
    released_at: dt.datetime | None = None
    replayed: bool = False
    epsilon: float | None = None
    budget: dict = field(default_factory=dict)
    retention_days: int | None = None
    dp: dict | None = None  # under differential privacy: unit, m, clamps, delta, threshold

    @property
    def suppressed(self) -> int:
        return sum(n for r, n in self.withheld.items() if r in ("below_k", "sticky", "difference",
                                                                "complementary"))

    def explain(self) -> list[dict]:
        """What was withheld and why, one entry per reason, in an analyst's words."""
        out = [{"reason": reason, "count": n,
                "explanation": (rules.DP_REASONS if self.dp else rules.REASONS)[reason].format(
                    k=self.k, days=self.retention_days)}
               for reason, n in sorted(self.withheld.items()) if n]
        if self.dp and self.dp["selection"] == "laplace_threshold":
            out.append({"reason": "below_threshold", "count": None,
                        "explanation": rules.DP_REASONS["below_threshold"].format(
                            threshold=self.dp["threshold"])})
        return out

    def meta(self) -> dict:
        return {"k_min_subjects": self.k, "suppressed": self.suppressed, "mode": self.mode,
                "period": self.period, "epsilon": self.epsilon,
                "budget": self.budget or None, "withheld": self.explain(),
                "delta": self.dp["delta"] if self.dp else None, "dp": self.dp,
                "released_at": self.released_at.isoformat() if self.released_at else None,
                "replayed": self.replayed}


# ---- period rules -----------------------------------------------------------------------------

def check_range(policy: dict, t_from: dt.datetime, t_to: dt.datetime, now: dt.datetime,
                safeguards: Safeguards = FULL) -> str | None:
    """The aligned period asked for (exact mode), or None under DP; 422 for a range the
    tenant's policy does not allow to be released yet or at all."""
    if t_to <= t_from:
        raise Invalid("'to' must be after 'from'.", {"to": ["must be after from"]})
    if policy["dp_epsilon_per_query"] is None:
        period = rules.aligned_period(t_from, t_to)
        if period is None:
            raise Invalid(
                "Without differential privacy, reports are released only for whole UTC "
                "days, ISO weeks (Monday to Monday) or calendar months; ask for one of those, "
                "or have an admin turn differential privacy on.",
                {"from": ["must start a UTC day, ISO week or month"],
                 "to": ["must end that same day, week or month"]}, code="unaligned_period")
        ready = rules.settled_at(t_to, policy["release_delay_hours"])
        if now < ready and safeguards.settle:
            raise Invalid(
                f"This {period} is released once it has ended and late uploads have had "
                f"{policy['release_delay_hours']} hours to arrive: from "
                f"{ready.astimezone(dt.UTC).isoformat()}.",
                {"to": [f"released from {ready.astimezone(dt.UTC).isoformat()}"]},
                code="period_not_settled")
        return period
    if not all(t.minute == 0 and t.second == 0 and t.microsecond == 0 for t in (t_from, t_to)):
        raise Invalid("from and to must be whole hours (rollups are hourly).",
                      {"from": ["whole hours"], "to": ["whole hours"]})
    if t_to - t_from > MAX_DP_RANGE:
        raise Invalid(f"A report may span at most {MAX_DP_RANGE.days} days.",
                      {"to": [f"at most {MAX_DP_RANGE.days} days after from"]})
    return None


# ---- exact mode -------------------------------------------------------------------------------

@dataclass
class Candidate:
    """A group a report would release: its row, the numbers the floor judges, and the basis
    atoms it covers (release_groups columns)."""

    row: dict
    subjects: int
    min_day_subjects: int
    group: dict


@dataclass
class ExactSpec:
    family: str  # 'heatmap' or 'travel': the basis the report reads
    report: str  # the ledger's name for the answer ('heatmap', 'travel', 'visits', 'od')
    group_report: str  # release_groups.report of its groups
    key: str  # the parameters that identify one answer
    candidates: Callable[[Session], list[Candidate]]


def _dump(rows: list[dict]) -> list[dict]:
    def enc(v):
        if isinstance(v, dt.datetime):
            return v.astimezone(dt.UTC).isoformat()
        if isinstance(v, uuid.UUID):
            return str(v)
        raise TypeError(type(v))

    return json.loads(json.dumps(rows, default=enc))


def exact(session: Session, tenant_id: uuid.UUID, policy: dict, spec: ExactSpec,
          t_from: dt.datetime, t_to: dt.datetime, period: str, now: dt.datetime,
          safeguards: Safeguards = FULL) -> Release:
    """The stored answer if this was released before, else the first release (frozen basis,
    k floor, complementary suppression), stored before it is returned."""
    k, days = policy["k_min_subjects"], policy["aggregate_retention_days"]
    base = {"k": k, "mode": "aligned", "period": period, "retention_days": days}
    params = {"tenant_id": tenant_id, "report": spec.report, "key": spec.key}
    stored = session.execute(sql.ANSWER, params).first() if safeguards.freeze else None
    reason = rules.retention_state(t_from, now, days, released_before=stored is not None)
    if reason and safeguards.aligned_edges:
        return Release([], **base, withheld={reason: 1})
    if stored is None:  # a first release: one at a time per tenant and family
        session.execute(sql.LOCK, {"tenant_id": tenant_id, "family": spec.family})
        if safeguards.freeze:
            stored = session.execute(sql.ANSWER, params).first()
    if stored is not None:
        body = stored.body
        return Release(body["rows"], **{**base, "k": body["k"]}, withheld=body["withheld"],
                       released_at=stored.released_at, replayed=True)
    if not safeguards.freeze:  # weakened: the basis is whatever the live data says now
        for stmt in sql.UNFREEZE[spec.family]:
            session.execute(stmt, {"t_from": t_from, "t_to": t_to})
    freeze(session, tenant_id, spec.family, t_from, t_to, now,
           None if safeguards.aligned_edges else days)
    withheld: dict[str, int] = {}
    passed = []
    for c in spec.candidates(session):
        why = rules.passes_floor(c.subjects, c.min_day_subjects, k)
        if why:
            withheld[why] = withheld.get(why, 0) + 1
        else:
            passed.append(c)
    kept = passed
    if safeguards.complementary or safeguards.differences:
        kept, why = _complementary(session, tenant_id, spec, passed, k, t_from, t_to,
                                   safeguards)
        for reason, n in why.items():
            if n:
                withheld[reason] = n
    rows = _dump([c.row for c in kept])
    body = {"rows": rows, "k": k, "withheld": withheld}
    if safeguards.freeze:
        session.execute(sql.SAVE_ANSWER, {**params,
                                          "t_from": t_from, "t_to": t_to, "now": now,
                                          "body": json.dumps(body)})
    return Release(rows, **base, withheld=withheld, released_at=now)


def _complementary(session: Session, tenant_id: uuid.UUID, spec: ExactSpec,
                   passed: list[Candidate], k: int, t_from: dt.datetime,
                   t_to: dt.datetime, safeguards: Safeguards = FULL
                   ) -> tuple[list[Candidate], dict[str, int]]:
    """Add the candidates as pending groups; withhold the ones whose distinct count differs
    by 1 to k-1 from a group nesting with them, then the ones complementary suppression
    names until every region of the family's released groups is safe; confirm the rest.
    Returns the kept candidates and how many each rule withheld."""
    if not passed:
        return [], {}
    cols = {c: [cand.group.get(c) for cand in passed] for c in sql.GROUP_COLUMNS}
    ids = sorted(session.execute(sql.ADD_GROUPS, {"tenant_id": tenant_id, "family": spec.family,
                                                "report": spec.group_report, **cols}).scalars())
    by_id = dict(zip(ids, passed, strict=True))
    pending = set(ids)
    span = session.execute(sql.SPAN, {"tenant_id": tenant_id, "family": spec.family,
                                      "t_from": t_from, "t_to": t_to}).one()
    bounds = {"tenant_id": tenant_id, "lo": span.lo, "hi": span.hi}
    why = {"difference": 0, "complementary": 0}
    if safeguards.differences:
        session.execute(sql.HASHED_REGIONS)
        nestings, covers = [], []
        for r in session.execute(sql.NESTINGS[spec.family],
                                 {**bounds, "pending": sorted(pending)}):
            if r.parts is None:
                nestings.append(rules.Nesting(*r[:6]))
            elif safeguards.covers:
                covers.append(rules.Cover(r.outer_id, r.outer_subjects, frozenset(r.parts),
                                          r.parts_subjects))
        placed = ([rules.Placed(*r) for r in session.execute(sql.PLACED, bounds)]
                  if spec.family == "heatmap" and safeguards.covers else [])
        session.execute(sql.PLANNED_AS_USUAL)
        withhold = rules.exact_differences(nestings, pending, k, covers)
        while placed:  # a withheld group's insides become topmost: until none is unsafe
            kept = pending - withhold
            more = rules.exact_differences([], kept, k, rules.chain_covers(
                (g for g in placed if g.group_id not in withhold), kept))
            if not more:
                break
            withhold |= more
        if withhold:
            session.execute(sql.DROP_GROUPS, {"tenant_id": tenant_id, "ids": sorted(withhold)})
            pending -= withhold
            why["difference"] = len(withhold)
    while pending and safeguards.complementary:
        session.execute(sql.HASHED_REGIONS)
        regions = [rules.Region(frozenset(r.groups), r.subjects) for r in session.execute(
            sql.REGIONS[spec.family], bounds)]
        session.execute(sql.PLANNED_AS_USUAL)
        withhold = rules.complementary(regions, pending, k)
        if not withhold:
            if any(0 < r.subjects < k for r in regions):
                withhold = set(pending)  # cannot be repaired by these candidates: fail safe
            else:
                break
        session.execute(sql.DROP_GROUPS, {"tenant_id": tenant_id, "ids": sorted(withhold)})
        pending -= withhold
        why["complementary"] += len(withhold)
    session.execute(sql.CONFIRM_GROUPS, {"tenant_id": tenant_id})
    return [by_id[i] for i in ids if i in pending], why


def freeze(session: Session, tenant_id: uuid.UUID, family: str, t_from: dt.datetime,
           t_to: dt.datetime, now: dt.datetime, moving_edge_days: int | None = None) -> int:
    """Freeze the basis of every day of [t_from, t_to) not frozen yet (the caller holds the
    family's lock and has checked the range is settled); returns the days frozen.
    `moving_edge_days` (weakened only): cut at now minus that many days, not whole days."""
    done = {r.day for r in session.execute(sql.FROZEN_DAYS, {"tenant_id": tenant_id,
                                                            "family": family,
                                                            "t_from": t_from, "t_to": t_to})}
    frozen = 0
    for day in rules.days_of(t_from, t_to):
        if day in done:
            continue
        if family == "heatmap":
            cutoff = (now - dt.timedelta(days=moving_edge_days) if moving_edge_days
                      else day)
            atoms = session.execute(sql.FREEZE_CELLS, {"tenant_id": tenant_id, "day": day,
                                                       "cutoff": cutoff}).rowcount
        else:
            atoms = _freeze_travel_day(session, tenant_id, day, now,
                                       aligned=moving_edge_days is None)
        session.execute(sql.MARK_FROZEN, {"tenant_id": tenant_id, "family": family,
                                          "day": day, "now": now, "atoms": atoms})
        frozen += 1
    return frozen


def usable_params(session: Session, now: dt.datetime,
                  day: dt.datetime | None = None) -> tuple[Shape, dict]:
    """Parameters of the `usable` filter (govern/sql/travel_reports.py): the tenant's aggregate
    purposes, which need consent (as of `now`), each one's latest withdrawal cut (`a_bits`,
    `a_ids`: govern.policy.cutoffs) and the window each allows by record start, where the
    window starts where govern.domain.reads.window_start says (never moving back). With
    `day`, one window case: a purpose counts for the whole day or not at all; without it,
    each purpose's edge now (DP reports of any hours). The Shape says what the SQL is
    written for: that many window cases and aggregate purposes."""
    from govern.domain.reads import window_start

    purposes = session.scalars(select(Purpose).where(Purpose.aggregate_use,
                                                     Purpose.archived_at.is_(None))).all()
    # the session's tenant, named by the statements (Citus routes them to its shard)
    params = {"tenant_id": session.info.get("tenant_id"), "now": now, "free_bits": 0,
              "c_bits": [], "c_ids": [],
              "a_bits": [p.bit for p in purposes], "a_ids": [p.purpose_id for p in purposes]}
    for p in purposes:
        if p.requires_consent:
            params["c_bits"].append(p.bit)
            params["c_ids"].append(p.purpose_id)
        else:
            params["free_bits"] |= 1 << p.bit
    starts = {p.bit: window_start(p, now) for p in purposes}
    if day is not None:
        params["wc0"] = day - dt.timedelta(microseconds=1)
        params["wm0"] = rules.window_bits(starts.items(), day)
        return Shape(1, len(purposes)), params
    cutoffs = sorted(set(starts.values()), reverse=True)
    for i, cutoff in enumerate(cutoffs):
        params[f"wc{i}"] = cutoff
        params[f"wm{i}"] = sum(1 << bit for bit, start in starts.items() if start <= cutoff)
    return Shape(len(cutoffs), len(purposes)), params


FREEZE_DAYS_BACK = 62  # the scheduler freezes settled days this far back at most


def freeze_settled(sessions, tenant_id: uuid.UUID, now: dt.datetime) -> int:
    """The scheduler's part: freeze every settled day of the last FREEZE_DAYS_BACK that is
    not frozen yet, for both families, one transaction per family, so a first release reads
    the basis instead of building it. Exact mode only."""
    from govern.db import tenant_session
    from govern.domain.policy import current_policy

    with tenant_session(sessions, tenant_id) as s:
        policy = current_policy(s)
    if policy["dp_epsilon_per_query"] is not None:
        return 0
    edge = rules.settled_at(now, -policy["release_delay_hours"])  # days ended before it
    last = dt.datetime.combine(edge.astimezone(dt.UTC).date(), dt.time(0), dt.UTC)
    first = max(last - dt.timedelta(days=FREEZE_DAYS_BACK),
                rules.retention_cutoff(now, policy["aggregate_retention_days"]))
    frozen = 0
    for family in ("heatmap", "travel"):
        with tenant_session(sessions, tenant_id) as s:
            s.execute(sql.LOCK, {"tenant_id": tenant_id, "family": family})
            frozen += freeze(s, tenant_id, family, first, last, now)
    return frozen


def freeze_all(owner, sessions, now: dt.datetime) -> dict:
    """The scheduler's `release_basis` job: every tenant's settled days (freeze_settled)."""
    from govern.domain.tenants import tenant_ids

    total = {"tenants": 0, "frozen_days": 0}
    for tid in tenant_ids(owner):
        total["tenants"] += 1
        total["frozen_days"] += freeze_settled(sessions, tid, now)
    return total


def _freeze_travel_day(session: Session, tenant_id: uuid.UUID, day: dt.datetime,
                       now: dt.datetime, aligned: bool = True) -> int:
    from govern.sql import travel_reports as trips_sql

    cases, params = usable_params(session, now, day if aligned else None)
    rows = session.execute(trips_sql.freeze_travel_basis(cases), {
        **params, "tenant_id": tenant_id, "t_from": day, "t_to": day + rules.DAY}).all()
    if rows:
        session.execute(trips_sql.SAVE_TRAVEL_ATOM, [
            {**r._mapping, "tenant_id": tenant_id, "t_from": day} for r in rows])
    return len(rows)


def expire(session: Session, now: dt.datetime, retention_days: int) -> None:
    """Aggregate retention of releases: every answer, group and basis day any part of which
    is past the window (the retention run, with the rollups)."""
    from govern.sql import dp as dp_sql

    cutoff = rules.retention_cutoff(now, retention_days)
    for stmt in (*sql.EXPIRE, dp_sql.EXPIRE):
        session.execute(stmt, {"cutoff": cutoff})


# ---- differential privacy ------------------------------------------------------------------

def dp_days(t_from: dt.datetime, t_to: dt.datetime) -> list[dt.date]:
    """The UTC days a range touches: the person-days an answer over it can reveal."""
    first = t_from.astimezone(dt.UTC).date()
    last = (t_to - dt.timedelta(microseconds=1)).astimezone(dt.UTC).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def charge_budget(session: Session, tenant_id: uuid.UUID, plan, policy: dict,
                  t_from: dt.datetime, t_to: dt.datetime) -> dict:
    """Charge one answer's certified epsilon and delta to every UTC day of data it touches
    (all aggregate reports share the budget), or refuse with 429 when one of those days
    would pass `dp_epsilon_per_day`. A day's budget bounds what every answer ever given
    reveals about any one person-day of it; it does not renew."""
    from govern.privacy import dp
    from govern.sql import dp as dp_sql

    eps_day = policy["dp_epsilon_per_day"]
    # delta of a day: at most as many answers as its epsilon allows, each delta at most
    delta_day = dp.DELTA_PER_QUERY * max(1, int(eps_day / policy["dp_epsilon_per_query"]
                                                + 1e-9))
    days = dp_days(t_from, t_to)
    session.execute(dp_sql.LOCK, {"tenant_id": tenant_id})
    spent = session.execute(dp_sql.SPENT, {"tenant_id": tenant_id, "days": days}).one()
    if spent.epsilon + plan.epsilon > eps_day + 1e-9 or \
            spent.delta + plan.delta > delta_day * (1 + 1e-9):
        raise Exhausted(f"The privacy budget of the days asked is spent ({spent.epsilon:g} "
                        f"of {eps_day:g} for the most used one); a day's budget bounds what "
                        "all answers reveal about one person's day and does not renew: ask "
                        "about other days.", code="privacy_budget_spent",
                        details={"epsilon": plan.epsilon, "epsilon_per_day": eps_day,
                                 "spent": spent.epsilon, "unit": "person-day"})
    session.execute(dp_sql.CHARGE, {"tenant_id": tenant_id, "days": days,
                                    "epsilon": plan.epsilon, "delta": plan.delta})
    used_eps, used_delta = spent.epsilon + plan.epsilon, spent.delta + plan.delta
    return {"unit": "person-day", "days": len(days), "epsilon_per_day": eps_day,
            "delta_per_day": delta_day, "spent": used_eps,
            "remaining": max(eps_day - used_eps, 0), "delta_spent": used_delta,
            "delta_remaining": max(delta_day - used_delta, 0)}


@dataclass
class PrivateSpec:
    """What a differentially private report hands the release path: its contributions (one
    per person-day and group), the public domain of groups if it has one, each group's
    identity from its key, and the row it renders."""

    kind: str  # a govern.privacy.dp.BOUNDS entry
    contributions: list
    describe: Callable[[str], dict]
    shape: Callable[[dict, dict], dict]
    domain: list[str] | None = None
    measures: tuple[str, ...] = ()
    quantiles: bool = False


def private(session: Session, tenant_id: uuid.UUID, policy: dict, spec: PrivateSpec,
            t_from: dt.datetime, t_to: dt.datetime, now: dt.datetime,
            safeguards: Safeguards = FULL) -> Release:
    """Differential privacy per person-day: contributions bounded (m groups, clamped
    values), groups chosen privately (public domain or OpenDP's threshold mechanism), noise
    on every value, the answer's epsilon and delta charged to each day of data it touches;
    the k floor on the noisy subject count (post-processing)."""
    from govern.privacy import dp

    k = policy["k_min_subjects"]
    plan = dp.Plan.of(dp.BOUNDS[spec.kind], policy["dp_epsilon_per_query"])
    budget = charge_budget(session, tenant_id, plan, policy, t_from, t_to)
    answer, groups = plan.answer(spec.contributions, spec.measures, spec.domain,
                                 enforce_bounds=safeguards.dp_bound,
                                 private_selection=safeguards.dp_select)
    out, below = [], 0
    for key, values in answer.items():
        if values["subjects"] < k:
            below += 1
            continue
        if spec.quantiles:
            dwells = groups[key].dwells if key in groups else []
            values["median_dwell_s"] = plan.quantile(0.5, dwells)
            values["p90_dwell_s"] = plan.quantile(0.9, dwells)
        out.append(spec.shape(spec.describe(key), values))
    meta = {"unit": "person-day", "max_groups_per_person_day": plan.bounds.m,
            "clamps": dict(plan.bounds.clamps), "delta": plan.delta,
            "selection": "public_domain" if plan.bounds.public_domain else
            "laplace_threshold", "threshold": plan.threshold}
    return Release(_dump(out), k, "differential_privacy",
                   withheld={"below_k": below} if below else {}, epsilon=plan.epsilon,
                   budget=budget, released_at=now, dp=meta)
