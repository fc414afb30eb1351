"""Release modes (issue 16): what exact mode releases, against the plain k floor, and what
it costs; the error of differential privacy's counts.

Data: the reports bench's field workers (bench.reports: pings made set-wise in SQL, rollups
derived from them as ingest would) over a 30-day calendar month. Every day, every ISO week
inside the month and the month itself are asked at every resolution 5 to 9 (175
heatmaps), in one seeded random order, as an analyst could:

- **plain k floor** (before issue 16): k distinct subjects and k on every day, nothing
  else (`release.Safeguards(freeze=False, complementary=False, differences=False)`);
- **regions only** (exact mode before the difference check): complementary suppression
  of sums, without the check of differences and overlaps of distinct counts
  (`release.Safeguards(differences=False)`), on the same tenant with its ledger emptied;
- **no cover check** (exact mode before covers were checked): the difference check of
  nested pairs and two-part overlaps, without the crossings of covers
  (`release.Safeguards(covers=False)`), again from an empty ledger;
- **exact** (the default): the same floor, then complementary suppression against every
  heatmap already released, the difference check and the cover check (crossings of the
  groups that make up another, along chains of levels), over the frozen basis; answers
  stored.

Utility is the share of cells, and of the pings in them, that each mode releases of all the
cells with data. Speed: the month at resolution 7 as the first question of the exact run
(freezing 30 days, then the release), and the same month asked again (a replay).
Differential privacy (`dp_epsilon_per_query` 0.5, the console's default, per
person-day; the subjects consent to analytics so that their pings count): the same 175
questions, the share of cells and pings released, and for the month at resolution 7 the
median relative error of the released subject and ping counts against the true ones over
`--dp-runs` answers, and its time.

    .venv/bin/python -m bench.release [--subjects N] [--quick] [--exact-only] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
import uuid

from bench.common import CpuMeter, machine, table, throwaway_database, write_section
from bench.reports import (
    PURPOSES,
    STATEMENT_TIMEOUT_MS,
    add_cells,
    derive_rollups,
    thirty_day_month,
)
from bench.retention import PER_SUBJECT_DAY, DayLoad, load, make_tenant

RESOLUTIONS = (5, 6, 7, 8, 9)
K = 5


def _modes():
    from govern.domain import release

    return (release.Safeguards(freeze=False, complementary=False, differences=False),
            release.Safeguards(differences=False), release.Safeguards(covers=False))


def asks(month) -> list[tuple[str, dt.datetime, dt.datetime, int]]:
    start = dt.datetime.combine(month[0], dt.time(0), dt.UTC)
    end = dt.datetime.combine(month[1], dt.time(0), dt.UTC)
    ranges = [("day", start + dt.timedelta(days=i), start + dt.timedelta(days=i + 1))
              for i in range(30)]
    week = start + dt.timedelta(days=(7 - start.weekday()) % 7)
    while week + dt.timedelta(days=7) <= end:
        ranges.append(("week", week, week + dt.timedelta(days=7)))
        week += dt.timedelta(days=7)
    ranges.append(("month", start, end))
    out = [(kind, a, b, res) for kind, a, b in ranges for res in RESOLUTIONS]
    random.Random(16).shuffle(out)
    return out


def sample_asks(month) -> list[tuple[str, dt.datetime, dt.datetime, int]]:
    """A fixed sample of the month (--sample-week): its first ISO week inside the month, that
    week's 7 days and the week itself at every resolution (40 heatmaps), in one seeded
    random order; the month and the other days and weeks are not asked."""
    start = dt.datetime.combine(month[0], dt.time(0), dt.UTC)
    week = start + dt.timedelta(days=(7 - start.weekday()) % 7)
    ranges = [("day", week + dt.timedelta(days=i), week + dt.timedelta(days=i + 1))
              for i in range(7)]
    ranges.append(("week", week, week + dt.timedelta(days=7)))
    out = [(kind, a, b, res) for kind, a, b in ranges for res in RESOLUTIONS]
    random.Random(16).shuffle(out)
    return out


CONSENT = """
WITH s AS (
  INSERT INTO subjects (tenant_id, subject_id, external_ref, timezone, collection_blocked,
                        on_duty)
  SELECT %(t)s, md5('sub-' || g)::uuid, 'bench-' || g, 'UTC', false, true
  FROM generate_series(0, %(n)s - 1) AS g
  ON CONFLICT DO NOTHING RETURNING subject_id
)
INSERT INTO consent_events (tenant_id, event_id, subject_id, purpose_id, status, at,
                            recorded_at, policy_version, source, actor_id, evidence)
SELECT %(t)s, gen_random_uuid(), s.subject_id, %(purpose)s, 'granted', '2000-01-01',
       now(), 'bench', 'admin', 'bench', '{}' FROM s
"""


FORGET = """
DELETE FROM release_answers WHERE tenant_id = %(t)s;
DELETE FROM release_groups WHERE tenant_id = %(t)s;
"""


def forget(db, t) -> None:
    """Empty the tenant's release ledger (answers and released groups), keeping the frozen
    basis: the next mode starts as a tenant that was never given anything."""
    with db.connect() as conn:
        for stmt in FORGET.strip().split(";\n"):
            conn.execute(stmt.strip().rstrip(";"), {"t": t.tenant_id})
        conn.commit()


def consent(db, t, n: int) -> None:
    """The bench's field workers as subjects who consented to analytics: under DP the
    heatmap reads their pings (bounded per person-day), which count only with consent."""
    with db.connect() as conn:
        conn.execute(CONSENT, {"t": t.tenant_id, "n": n,
                               "purpose": t.purpose_ids["analytics"]})
        conn.commit()


def run(t, principal, questions, now, safeguards, truth, meter=None) -> dict:
    """Every question under `safeguards`: released and total cells and pings, per period
    kind and resolution; under "_run", the seconds it took and the other load meanwhile."""
    from govern.db import tenant_session
    from govern.domain import reports

    out = {}
    if meter is not None:
        meter.start()
    started = time.perf_counter()
    for kind, a, b, res in questions:
        with tenant_session(t.sessions, t.tenant_id) as s:
            result = reports.heatmap(s, principal, a, b, res, now=now, safeguards=safeguards)
        true = truth[(a, b, res)]
        got = out.setdefault((kind, res), {"cells": 0, "pings": 0, "all_cells": 0,
                                           "all_pings": 0})
        got["cells"] += len(result.rows)
        # the true pings of the released cells: under DP the released counts are noisy
        # and clamped per person-day, so they would understate what the cells show
        got["pings"] += sum(true.get(r["cell"], 0) for r in result.rows)
        got["all_cells"] += len(true)
        got["all_pings"] += sum(true.values())
    out["_run"] = {"seconds": time.perf_counter() - started,
                   "other": meter.stop() if meter is not None else None}
    return out


def true_cells(t, questions) -> dict:
    from govern.db import tenant_session
    from govern.sql import reports as sql

    truth = {}
    with tenant_session(t.sessions, t.tenant_id) as s:
        for _kind, a, b, res in questions:
            rows = s.execute(sql.heatmap(res), {"tenant_id": t.tenant_id, "t_from": a,
                                                "t_to": b}).all()
            truth[(a, b, res)] = {r.cell: r.pings for r in rows}
    return truth


def timed_heatmap(t, principal, a, b, res, now) -> tuple[float, object]:
    from govern.db import tenant_session
    from govern.domain import reports

    t0 = time.perf_counter()
    with tenant_session(t.sessions, t.tenant_id) as s:
        result = reports.heatmap(s, principal, a, b, res, now=now)
    return time.perf_counter() - t0, result


DP_EPSILON = 0.5  # per query: the console's default


def dp_mode(t) -> None:
    from govern.db import tenant_session
    from govern.domain.policy import update_policy

    with tenant_session(t.sessions, t.tenant_id) as s:
        update_policy(s, t.tenant_id, "bench", {"dp_epsilon_per_query": DP_EPSILON,
                                                "dp_epsilon_per_day": 100.0})


def dp_error(t, principal, a, b, now, runs: int) -> dict:
    """[a, b) at resolution 7 under DP, `runs` times: median relative error of the
    released counts against the true ones (hourly rollups: the same pings), and time."""
    from govern.db import tenant_session
    from govern.sql import reports as sql

    with tenant_session(t.sessions, t.tenant_id) as s:
        true = {r.cell: r for r in s.execute(sql.heatmap(7), {"tenant_id": t.tenant_id,
                                                              "t_from": a, "t_to": b})}
    subj, pings, released, seconds, info = [], [], [], [], {}
    for _ in range(runs):
        took, result = timed_heatmap(t, principal, a, b, 7, now)
        seconds.append(took)
        info = result.meta()
        released.append(len(result.rows))
        for row in result.rows:
            r = true.get(row["cell"])
            if r is None:
                continue
            subj.append(abs(row["subjects"] - r.subjects) / r.subjects)
            pings.append(abs(row["pings"] - r.pings) / max(r.pings, 1))
    return {"subjects": statistics.median(subj) if subj else None,
            "pings": statistics.median(pings) if pings else None,
            "released": statistics.median(released), "cells": len(true),
            "rated": len(subj),
            "seconds": statistics.median(seconds), "epsilon": info.get("epsilon"),
            "delta": info.get("delta"), "threshold": (info.get("dp") or {}).get("threshold")}


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return ", ".join(f.read().split()[:3])


def totals(mode: dict) -> dict:
    return {k: sum(v[k] for key, v in mode.items() if key != "_run")
            for k in ("cells", "all_cells", "pings", "all_pings")}


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "—"


def bench(args) -> str:
    from govern.auth import Principal

    month = thirty_day_month(dt.datetime.now(dt.UTC).date())
    days = [month[0] + dt.timedelta(days=k) for k in range(30)]
    now = dt.datetime.combine(month[1], dt.time(0), dt.UTC) + dt.timedelta(days=3)
    started = time.perf_counter()
    with throwaway_database() as db:
        # the API's 30 s statement timeout would cut a DP answer over millions of pings
        # short: the bench measures how long it takes (bench.reports does the same)
        t = make_tenant(db, "bench-release", {}, PURPOSES,
                        {"DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS)})
        mask = t.mask("navigation", "analytics")
        n = load(db, [DayLoad(t.tenant_id, d, mask, 10, s0, min(s0 + 100, args.subjects))
                      for d in days for s0 in range(0, args.subjects, 100)])
        add_cells(db)
        rollups = derive_rollups(db, t)
        consent(db, t, args.subjects)
        print(f"{n:,} pings, {rollups:,} rollups", file=sys.stderr)
        principal = Principal(t.tenant_id, "member", None, member_id=uuid.uuid4(),
                              role="owner")
        questions = (sample_asks(month) if args.sample_week
                     else [q for q in asks(month) if q[0] == "month"] if args.month_only
                     else asks(month))
        truth = true_cells(t, questions)
        if args.sample_week:  # the sampled week stands in for the month
            a = next(q[1] for q in questions if q[0] == "week")
            b = a + dt.timedelta(days=7)
        else:
            a = dt.datetime.combine(month[0], dt.time(0), dt.UTC)
            b = dt.datetime.combine(month[1], dt.time(0), dt.UTC)
        args.span = (a, b)
        from govern.domain import release

        PLAIN, REGIONS_ONLY, NO_COVERS = _modes()
        meter = CpuMeter(db.datadir)
        loads = [load_average()]
        if not args.dp_only:
            first_s, first = timed_heatmap(t, principal, a, b, 7, now)
            replays = [timed_heatmap(t, principal, a, b, 7, now)[0] for _ in range(5)]
            forget(db, t)
            regions = run(t, principal, questions, now, REGIONS_ONLY, truth, meter)
            forget(db, t)
            no_covers = run(t, principal, questions, now, NO_COVERS, truth, meter)
            forget(db, t)
            exact = run(t, principal, questions, now, release.FULL, truth, meter)
            plain = run(t, principal, questions, now, PLAIN, truth, meter)
        private = dp = None
        if not args.exact_only:
            dp_mode(t)
            private = run(t, principal, questions, now, release.FULL, truth, meter)
            meter.start()
            dp = dp_error(t, principal, a, b, now, args.dp_runs)
            dp["questions"] = len(questions)
            dp["other"] = meter.stop()
        loads.append(load_average())
        server = db.server_version
    total_s = time.perf_counter() - started
    args.loads = loads
    if args.dp_only:
        return dp_report(args, month, n, rollups, server, total_s, private, dp)

    modes = {"plain k floor": plain, "regions only": regions, "no cover check": no_covers,
             "exact": exact}
    if private is not None:
        modes["DP"] = private
    rows = []
    for kind in ("day", "week", "month"):
        for res in RESOLUTIONS:
            if (kind, res) not in plain:
                continue
            got = [m[(kind, res)] for m in modes.values()]
            rows.append([kind, res, f"{got[0]['all_cells']:,}",
                         *(pct(g["cells"], g["all_cells"]) for g in got),
                         *(pct(g["pings"], g["all_pings"]) for g in got)])
    tot = [totals(m) for m in modes.values()]
    rows.append([f"all {len(questions)}", "", f"{tot[0]['all_cells']:,}",
                 *(pct(g["cells"], g["all_cells"]) for g in tot),
                 *(pct(g["pings"], g["all_pings"]) for g in tot)])
    utility = table(["period", "res", "cells with data",
                     *(f"cells: {m}" for m in modes), *(f"pings: {m}" for m in modes)],
                    rows, "llr" + "rr" * len(modes))
    if dp is None:
        return exact_report(args, month, n, rollups, server, total_s, questions, utility,
                            modes, first_s, first, replays)
    from govern.privacy.dp import BOUNDS

    bounds = BOUNDS["heatmap"]
    dp_line = (f"{100 * dp['subjects']:.0f}% for subjects and {100 * dp['pings']:.0f}% for "
               f"pings" if dp["subjects"] is not None else "no cell was released")
    asked, span, freeze_days = asked_text(args, questions)
    header = run_header(args, month, n, rollups, server, total_s, asked, modes,
                        f"; the DP error answers: other load {dp['other']:.2f} cores")
    return f"""{header}

{utility}

Share of the cells with data released, and of the pings in them (their true pings, from the
hourly rollups: DP's released counts are noisy and clamped). "Plain k floor" is
the release before issue 16 (k distinct subjects, and k on every day); "regions only"
adds complementary suppression against every heatmap released before, so that no sum or
difference of released pings isolates fewer than k people; "no cover check" also
withholds a cell whose distinct count, against a cell nesting with it, would give 1 to k-1
people; "exact" (the default) also withholds one of the cells that make up another when
their counts exceed its by 1 to k-1 (people crossing between them); "DP" is differential
privacy per
person-day at epsilon {DP_EPSILON} per question (at most {bounds.m} cells a person-day and
{bounds.clamps['pings']} pings in each; cells chosen by OpenDP's threshold mechanism:
threshold {dp['threshold']} person-days at delta {dp['delta']:.1e}; see
[privacy](privacy.md)).

Speed of exact mode: {span} at resolution 7 as the tenant's first question took
{first_s * 1000:.0f} ms (freezing the {freeze_days} days' basis from the hourly rollups, the
floor, the difference and cover checks and the complementary check; {len(first.rows):,}
cells released); asked again, it is
replayed from the ledger in {statistics.median(replays) * 1000:.1f} ms (median of 5).

Differential privacy (epsilon {DP_EPSILON} per question, per person-day; {span} at
resolution 7, {args.dp_runs} answers, each certified by OpenDP at epsilon
{dp['epsilon']:.3f}, delta {dp['delta']:.1e}): median relative error of the released
counts {dp_line} (pings are also clamped per person-day and cell, so they read low), over
the {dp['rated']} cells released in the {args.dp_runs} answers together; a median of
{dp['released']:.0f} of {dp['cells']:,} cells released per answer, in {dp['seconds']:.2f} s
(median; read from the stored pings, bounded per person-day).
"""


def asked_text(args, questions) -> tuple[str, str, int]:
    a, b = args.span
    if args.sample_week:
        return (f"A fixed sample of that month, not all of it: its first ISO week "
                f"({a:%Y-%m-%d} to {b - dt.timedelta(days=1):%Y-%m-%d}), each of its 7 days "
                f"and the week, at resolutions 5 to 9, asked in one seeded random order "
                f"({len(questions)} heatmaps); the month and its other days and weeks were "
                f"not asked.", "the sampled week", 7)
    return ("Every day, ISO week inside the month and the month, at resolutions 5 to 9, "
            f"asked in one seeded random order ({len(questions)} heatmaps).", "the month", 30)


def run_header(args, month, n, rollups, server, total_s, asked, modes, extra="") -> str:
    """The run's description: data, questions, machine load and each mode's time."""
    runs = "; ".join(f"{name} {mode['_run']['seconds'] / 60:.1f} min (other load "
                     f"{mode['_run']['other']:.2f} cores)" for name, mode in modes.items())
    return f"""Run: `python -m bench.release {' '.join(args.argv)}` on {machine()}, PostgreSQL
{server}, {total_s / 60:.0f} minutes in all. {args.subjects} field workers
({PER_SUBJECT_DAY:,} pings a worker-day) over the 30-day month {month[0]:%B %Y}: {n:,}
pings, {rollups:,} hourly rollup rows; k = {K}. {asked}

Machine load (1-, 5-, 15-minute load averages on the 2 cores, other work sharing them):
{args.loads[0]} before the questions, {args.loads[-1]} after. Each mode's questions, and the
CPU other processes than the bench and its PostgreSQL used meanwhile: {runs}{extra}. Times
are upper bounds of an idle machine's."""


def exact_report(args, month, n, rollups, server, total_s, questions, utility, modes,
                 first_s, first, replays) -> str:
    """--exact-only: the modes without noise (differential privacy has its own section)."""
    asked, span, freeze_days = asked_text(args, questions)
    header = run_header(args, month, n, rollups, server, total_s, asked, modes)
    return f"""{header}

{utility}

Share of the cells with data released, and of the pings in them. "Plain k floor" is the
release before issue 16 (k distinct subjects, and k on every day: it leaks); "regions
only" adds complementary suppression against every heatmap released before, so that no
sum or difference of released pings isolates fewer than k people; "no cover check" also
withholds a cell whose distinct count, against a cell nesting with it, would give 1 to k-1
people; "exact" (the default) also withholds one of the cells that make up another when
their counts exceed its by 1 to k-1 (people crossing between them; see
[privacy](privacy.md)). Each mode starts from an empty ledger, on the same frozen basis.
Differential privacy on the same data: [its section](#release-modes-differential-privacy).

Speed of exact mode: {span} at resolution 7 as the tenant's first question took
{first_s * 1000:.0f} ms (freezing the {freeze_days} days' basis from the hourly rollups, the
floor, the difference and cover checks and the complementary check; {len(first.rows):,} cells
released); asked again, it is replayed from the ledger in
{statistics.median(replays) * 1000:.1f} ms (median of 5).
"""


def dp_report(args, month, n, rollups, server, total_s, private, dp) -> str:
    """--dp-only: differential privacy alone (the plain k floor and exact mode of the same
    data are in the Release modes section)."""
    from govern.privacy.dp import BOUNDS

    bounds = BOUNDS["heatmap"]
    rows = []
    for kind in ("day", "week", "month"):
        for res in RESOLUTIONS:
            d = private.get((kind, res))
            if d is not None:
                rows.append([kind, res, f"{d['all_cells']:,}", pct(d["cells"], d["all_cells"]),
                             pct(d["pings"], d["all_pings"])])
    tot = totals(private)
    rows.append([f"all {dp['questions']}", "", f"{tot['all_cells']:,}",
                 pct(tot["cells"], tot["all_cells"]),
                 pct(tot["pings"], tot["all_pings"])])
    utility = table(["period", "res", "cells with data", "cells: DP", "pings: DP"], rows,
                    "llrrr")
    dp_line = (f"{100 * dp['subjects']:.0f}% for subjects and {100 * dp['pings']:.0f}% for "
               f"pings" if dp["subjects"] is not None else "none: no cell was released")
    asked = (f"The month itself at resolutions 5 to 9 ({dp['questions']} heatmaps; its days "
             "and weeks were not asked)." if args.month_only
             else f"The same {dp['questions']} questions as [release modes](#release-modes).")
    return f"""Run: `python -m bench.release {' '.join(args.argv)}` on {machine()}, PostgreSQL
{server}, {total_s / 60:.0f} minutes in all. {args.subjects} field workers
({PER_SUBJECT_DAY:,} pings a worker-day, consenting to analytics) over the 30-day month
{month[0]:%B %Y}: {n:,} pings, {rollups:,} hourly rollup rows; k = {K}. {asked} Under
differential privacy per person-day at
epsilon {DP_EPSILON} per question (at most {bounds.m} cells a person-day and
{bounds.clamps['pings']} pings in each; cells chosen by OpenDP's threshold mechanism:
threshold {dp['threshold']} person-days at delta {dp['delta']:.1e}).

Machine load (1-, 5-, 15-minute load averages on the 2 cores, other work sharing them):
{args.loads[0]} before the questions, {args.loads[-1]} after. The questions took
{private['_run']['seconds'] / 60:.1f} min (other processes than the bench and its PostgreSQL
used {private['_run']['other']:.2f} cores meanwhile); the error answers: other load
{dp['other']:.2f} cores. Times are upper bounds of an idle machine's.

{utility}

Share of the cells with data released, and of the (true) pings in them; compare the plain k
floor and exact mode of the same data in [release modes](#release-modes).

The month at resolution 7, {args.dp_runs} answers (each certified by OpenDP at epsilon
{dp['epsilon']:.3f}, delta {dp['delta']:.1e}): median relative error of the released
counts {dp_line} (pings are also clamped per person-day and cell); a median of
{dp['released']:.0f} of {dp['cells']:,} cells released per answer, in {dp['seconds']:.2f} s
(median; read from the stored pings, bounded per person-day).
"""


def demo_bench(args) -> str:
    """--demo: the demo tenant as `govern demo` seeds it (12 field workers, 3 days, k = 3,
    ingested through govern's own ingest), every day at every resolution, in each mode."""
    from types import SimpleNamespace

    from govern import jsontext
    from govern.auth import Principal
    from govern.config import Config
    from govern.db import make_engine, make_sessionmaker, tenant_session
    from govern.demo import seed_demo
    from govern.domain import release
    from govern.domain.policy import current_policy

    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    now = today + dt.timedelta(days=3)  # every demo day has settled
    started = time.perf_counter()
    with throwaway_database() as db:
        config = Config.from_env({"DATABASE_URL": db.url, "LOG_LEVEL": "WARNING"})
        sessions = make_sessionmaker(make_engine(config.app_database_url, pool_size=1,
                                                 json_serializer=jsontext.dumps))
        seeded = seed_demo(sessions, days=args.demo_days, progress=False, now=today)
        t = SimpleNamespace(sessions=sessions, tenant_id=uuid.UUID(seeded["tenant_id"]))
        with tenant_session(sessions, t.tenant_id) as s:
            k = current_policy(s)["k_min_subjects"]
        principal = Principal(t.tenant_id, "member", None, member_id=uuid.uuid4(),
                              role="owner")
        questions = [("day", today - dt.timedelta(days=d), today - dt.timedelta(days=d - 1),
                      res) for d in range(args.demo_days, 0, -1) for res in RESOLUTIONS]
        random.Random(16).shuffle(questions)
        truth = true_cells(t, questions)
        plain_mode, regions_mode, no_covers_mode = _modes()
        regions = run(t, principal, questions, now, regions_mode, truth)
        forget(db, t)
        no_covers = run(t, principal, questions, now, no_covers_mode, truth)
        forget(db, t)
        exact = run(t, principal, questions, now, release.FULL, truth)
        plain = run(t, principal, questions, now, plain_mode, truth)
        dp_mode(t)
        private = run(t, principal, questions, now, release.FULL, truth)
        server = db.server_version
    total_s = time.perf_counter() - started
    modes = {"plain k floor": plain, "regions only": regions, "no cover check": no_covers,
             "exact": exact, "DP": private}
    rows = []
    for res in RESOLUTIONS:
        got = [m[("day", res)] for m in modes.values()]
        rows.append([res, f"{got[0]['all_cells']:,}",
                     *(pct(g["cells"], g["all_cells"]) for g in got),
                     *(pct(g["pings"], g["all_pings"]) for g in got)])
    tot = [totals(m) for m in modes.values()]
    rows.append([f"all {len(questions)}", f"{tot[0]['all_cells']:,}",
                 *(pct(g["cells"], g["all_cells"]) for g in tot),
                 *(pct(g["pings"], g["all_pings"]) for g in tot)])
    utility = table(["res", "cells with data", *(f"cells: {m}" for m in modes),
                     *(f"pings: {m}" for m in modes)], rows, "lr" + "rr" * len(modes))
    pings = seeded["pings"]
    return f"""Run: `python -m bench.release {' '.join(args.argv)}` on {machine()}, PostgreSQL
{server}, {total_s / 60:.1f} minutes in all. The demo tenant as `govern demo` seeds it
(`govern.demo.seed_demo`: {args.demo_days} days, 12 field workers, one of them never
collected, a fifth declining analytics; {pings['accepted']:,} pings accepted through govern's
ingest, {pings['dropped']:,} dropped by its rules; k = {k}). Every one of the
{args.demo_days} days at resolutions 5 to 9 ({len(questions)} heatmaps) in one seeded
random order, in each mode: plain k floor, regions only (exact mode without the
difference check), no cover check (exact mode without the crossings of covers), exact
(the default), and differential privacy at epsilon {DP_EPSILON} per question.

{utility}

Share of the cells with data (the hourly rollups' cells: every ping an aggregate purpose
may use) released, and of the pings in them. With 11 people collected, a day's cell rarely
holds the threshold's person-days, so differential privacy releases little here; exact
mode withholds what a difference of two released heatmaps would narrow below k.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=27,
                        help=f"field workers ({PER_SUBJECT_DAY:,} pings a day; 27 is 1M "
                             "pings in the month)")
    parser.add_argument("--dp-runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--sample-week", action="store_true",
                        help="ask only the month's first ISO week and its days (40 heatmaps)")
    parser.add_argument("--month-only", action="store_true",
                        help="ask only the month itself, at every resolution (5 heatmaps)")
    parser.add_argument("--exact-only", action="store_true",
                        help="the modes without noise only (differential privacy has its "
                             "own section)")
    parser.add_argument("--dp-only", action="store_true",
                        help="differential privacy only (its own section)")
    parser.add_argument("--demo", action="store_true",
                        help="the demo tenant's data instead (its own section)")
    parser.add_argument("--demo-days", type=int, default=3)
    parser.add_argument("--write", action="store_true",
                        help="update the Release modes section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"]
    if args.quick:
        args.subjects, args.dp_runs = 6, 2
    if args.demo:
        text = demo_bench(args)
        section = "Release modes: demo data"
    else:
        text = bench(args)
        size = (", 10M sample" if args.sample_week else ", 10M month") \
            if args.subjects > 27 else ""
        section = (f"Release modes: without noise{size}" if args.exact_only
                   else f"Release modes: differential privacy{size}" if args.dp_only
                   else "Release modes: 10M sample" if args.sample_week and args.subjects > 27
                   else "Release modes: 10M month" if args.subjects > 27
                   else "Release modes")
    print(text)
    if args.write and not args.quick:
        write_section(section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
