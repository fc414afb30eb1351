"""Heatmap cost (issues 6 and 16): a 30-day heatmap for one tenant as the API answers it (a
closed calendar month in exact mode: the tenant's first question, released from the frozen
daily basis with complementary suppression, and the same question again, replayed from the
release ledger), beside the plain hourly-rollups query and the same computed from the raw
pings, at 1M and at 10M pings in those 30 days, in one run on one throwaway cluster with
durable default settings. It also times freezing the basis (the scheduler's
`release_basis` job, govern.domain.release.freeze_settled).

The raw alternative: PostgreSQL has no H3 here (h3 is in Python only), so the raw query
groups by a square grid of the same average cell area as the H3 resolution, computed
arithmetically from each stored point (a bigint key from floor(lat / dlat) and
floor(lon / dlon)): the cheapest cell function SQL has, cheaper than ST_SnapToGrid or a
geohash, and no worse than reading a precomputed cell column. Otherwise it is the rollup
query's own shape over raw rows (per cell and UTC day: pings and an hll sketch of distinct
subjects; then per cell: sums, union and the smallest daily count), restricted, like the
rollups, to pings that serve an aggregate purpose. Both run in the same tenant session
(app role, row-level security on) and fetch every row.

Data: field workers (see bench.retention) over a 30-day calendar month, made set-wise in
SQL as the superuser; the 10M tenant is the 1M one with ten times the workers. Rollups are
derived set-wise from those pings exactly as ingest would have fed them (per hour and H3
resolution-9 cell of the stored point, with its parents 8 to 5: count, and
hll_add_agg(hll_hash_text(subject_id))); the H3 cells of the distinct stored points are
computed in Python.

    .venv/bin/python -m bench.reports [--quick] [--write] [--reps N]
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import math
import statistics
import sys
import time
import uuid

from bench.common import Database, machine, table, throwaway_database, write_section
from bench.retention import (
    CITY,
    PER_SUBJECT_DAY,
    PING_EVERY_S,
    Clock,
    DayLoad,
    Tenant,
    load,
    make_tenant,
)

PURPOSES = [
    {"key": "navigation", "title": "Navigation", "precision_m": 10, "retention_days": 30,
     "individual_access": True, "aggregate_use": False, "reader_roles": ["dispatcher"],
     "requires_consent": True},
    {"key": "analytics", "title": "Analytics", "precision_m": 250, "retention_days": 365,
     "individual_access": False, "aggregate_use": True, "reader_roles": [],
     "requires_consent": True},
]
SOURCES = {"first": "govern, the tenant's first question (release from the frozen basis)",
           "replay": "govern, the same question again (replayed from the ledger)",
           "hourly": "hourly rollups, plain k floor (no ledger)",
           "raw": "raw pings, square grid of the same cell area"}
RESOLUTIONS = (9, 7)  # the rollups' own resolution, and the API's default
TARGET_SPEEDUP = 20.0  # rollups at least 20x faster than raw at 10M
TARGET_GROWTH = 1.5  # rollup time at 10M / at 1M at most 1.5
STATEMENT_TIMEOUT_MS = 900_000  # the API's default, 30 s, would cut the raw query short

RAW_HEATMAP = """
WITH per_day AS (
  SELECT floor((ST_Y(geom) + 90) / %(dlat)s)::bigint * 1000000000
           + floor((ST_X(geom) + 180) / %(dlon)s)::bigint AS cell,
         date_trunc('day', t, 'UTC') AS day,
         count(*) AS pings, hll_add_agg(hll_hash_text(subject_id::text)) AS subjects
  FROM pings
  WHERE t >= %(t_from)s AND t < %(t_to)s AND purpose_mask & %(aggregate)s <> 0
  GROUP BY 1, 2
)
SELECT cell, sum(pings)::bigint AS pings,
       round(hll_cardinality(hll_union_agg(subjects)))::bigint AS subjects,
       min(round(hll_cardinality(subjects)))::bigint AS min_day_subjects
FROM per_day
GROUP BY cell
ORDER BY cell
"""

# Rollups as ingest feeds them, derived set-wise from the stored pings and the H3 cells of
# their stored points (bench_cells, computed in Python).
DERIVE_ROLLUPS = """
INSERT INTO rollups (tenant_id, bucket, cell, r8, r7, r6, r5, pings, subjects)
SELECT p.tenant_id, date_trunc('hour', p.t, 'UTC'), c.cell, c.r8, c.r7, c.r6, c.r5,
       count(*), hll_add_agg(hll_hash_text(p.subject_id::text))
FROM pings p JOIN bench_cells c ON c.lon = ST_X(p.geom) AND c.lat = ST_Y(p.geom)
WHERE p.tenant_id = %(tenant_id)s AND p.purpose_mask & %(aggregate)s <> 0
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY 2, 3
"""


def thirty_day_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """The latest whole calendar month of 30 days before today: an aligned period the
    heatmap releases without differential privacy."""
    first = today.replace(day=1)
    while True:
        first = (first - dt.timedelta(days=1)).replace(day=1)
        days = calendar.monthrange(first.year, first.month)[1]
        if days == 30:
            return first, first + dt.timedelta(days=30)


def grid_step(resolution: int) -> tuple[float, float]:
    """(dlat, dlon) of a square of the H3 resolution's average cell area, at the city."""
    import h3

    side = math.sqrt(h3.average_hexagon_area(resolution, "m^2"))
    return side / 111_320, side / (111_320 * math.cos(math.radians(CITY[0])))


def add_cells(db: Database) -> int:
    """H3 cells (resolution 9 and its parents) of every stored point not yet in bench_cells,
    computed in Python; returns how many points were added."""
    import h3.api.basic_int as h3

    with db.connect() as conn:
        conn.execute("CREATE UNLOGGED TABLE IF NOT EXISTS bench_cells (lon float8, lat float8, "
                     "cell bigint, r8 bigint, r7 bigint, r6 bigint, r5 bigint, "
                     "PRIMARY KEY (lon, lat))")
        conn.commit()
    added = 0
    with db.connect() as reader, db.connect() as writer:
        reader.execute("SET work_mem = '1GB'")
        cur = reader.cursor(name="points", binary=True)
        cur.itersize = 100_000
        cur.execute("SELECT DISTINCT ST_X(geom), ST_Y(geom) FROM pings p WHERE NOT EXISTS "
                    "(SELECT 1 FROM bench_cells c WHERE c.lon = ST_X(p.geom) "
                    "AND c.lat = ST_Y(p.geom))")
        with writer.cursor().copy("COPY bench_cells FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["float8", "float8", "int8", "int8", "int8", "int8", "int8"])
            for lon, lat in cur:
                cell = h3.latlng_to_cell(lat, lon, 9)
                copy.write_row((lon, lat, cell, h3.cell_to_parent(cell, 8),
                                h3.cell_to_parent(cell, 7), h3.cell_to_parent(cell, 6),
                                h3.cell_to_parent(cell, 5)))
                added += 1
        writer.commit()
        cur.close()
    return added


def derive_rollups(db: Database, t: Tenant) -> int:
    with db.connect() as conn:
        conn.execute("SET work_mem = '2GB'")
        conn.execute("DELETE FROM rollups WHERE tenant_id = %s", (t.tenant_id,))
        n = conn.execute(DERIVE_ROLLUPS, {"tenant_id": t.tenant_id,
                                          "aggregate": t.mask("analytics")}).rowcount
        conn.commit()
    with db.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE rollups")
        conn.execute("VACUUM ANALYZE pings")
        conn.execute("CHECKPOINT")
    return n


RELEASE_TABLES = ("release_answers", "release_groups", "release_days", "release_cell_atoms",
                  "release_travel_atoms")


def forget_releases(db: Database, t: Tenant, *, basis: bool) -> None:
    """Empty the tenant's release ledger (answers and released groups) and, with `basis`,
    its frozen basis too: the next question is the tenant's first again."""
    tables = RELEASE_TABLES if basis else RELEASE_TABLES[:2]
    with db.connect() as conn:
        for table_name in tables:
            conn.execute(f"DELETE FROM {table_name} WHERE tenant_id = %s", (t.tenant_id,))
        conn.commit()


def freeze_basis(t: Tenant, now: dt.datetime) -> tuple[float, int]:
    """The scheduler's `release_basis` job for this tenant (govern.domain.release.
    freeze_settled: every settled day not frozen yet, both families), timed."""
    from govern.domain import release

    t0 = time.perf_counter()
    days = release.freeze_settled(t.sessions, t.tenant_id, now)
    seconds = time.perf_counter() - t0
    with t.db.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE release_cell_atoms")
        conn.execute("CHECKPOINT")
    return seconds, days


def basis_rows(db: Database, t: Tenant, month) -> int:
    with db.connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM release_cell_atoms WHERE tenant_id = %s AND bucket >= %s "
            "AND bucket < %s", (t.tenant_id, *(dt.datetime.combine(d, dt.time(0), dt.UTC)
                                               for d in month))).fetchone()[0]


def timed(t: Tenant, query) -> tuple[float, list, float]:
    """One heatmap in a tenant session (app role, RLS on), every row fetched, committed."""
    from govern.db import tenant_session

    with Clock(t.db) as c, tenant_session(t.sessions, t.tenant_id) as s:
        rows = query(s)
    return c.seconds, rows, c.other


def statement(stmt, params: dict):
    return lambda s: s.execute(stmt, params).all()


def principal_of(t: Tenant):
    from govern.auth import Principal

    return Principal(t.tenant_id, "member", None, member_id=uuid.uuid4(), role="owner")


def api_heatmap(t: Tenant, t_from: dt.datetime, t_to: dt.datetime, resolution: int,
                now: dt.datetime):
    """What GET /v1/reports/heatmap runs (govern.domain.reports.heatmap: the release path,
    its audit entry included), its released rows."""
    from govern.domain import reports

    who = principal_of(t)
    return lambda s: reports.heatmap(s, who, t_from, t_to, resolution, now=now).rows


def measure(t: Tenant, month: tuple[dt.date, dt.date], now: dt.datetime, reps: int) -> dict:
    """Every (source, resolution) `reps` times, taking turns; the medians and the rows. A
    "first" run empties the ledger before it (the frozen basis stays, as the scheduler
    leaves it), so each is the tenant's first question; a "replay" asks it again."""
    from sqlalchemy import text

    from govern.sql import reports as sql

    t_from = dt.datetime.combine(month[0], dt.time(0), dt.UTC)
    t_to = dt.datetime.combine(month[1], dt.time(0), dt.UTC)
    raw = text(RAW_HEATMAP.replace("%(", ":").replace(")s", ""))
    cases = []
    for res in RESOLUTIONS:
        dlat, dlon = grid_step(res)
        cases.append(("first", res, api_heatmap(t, t_from, t_to, res, now)))
        cases.append(("hourly", res, statement(sql.heatmap(res), {"tenant_id": t.tenant_id,
                                                                  "t_from": t_from,
                                                                  "t_to": t_to})))
        cases.append(("raw", res, statement(raw, {
            "t_from": t_from, "t_to": t_to, "dlat": dlat, "dlon": dlon,
            "aggregate": t.mask("analytics")})))
    out = {(src, res): {"times": [], "others": [], "rows": None}
           for src in SOURCES for res in RESOLUTIONS}
    for src, _res, query in cases:  # warm: plans, caches, connections
        if src == "first":
            forget_releases(t.db, t, basis=False)
        timed(t, query)
    for rep in range(reps):
        for src, res, query in cases[rep % len(cases):] + cases[:rep % len(cases)]:
            if src == "first":
                forget_releases(t.db, t, basis=False)
            runs = [src] if src != "first" else ["first", "replay"]  # replay: right after
            for name in runs:
                seconds, rows, other = timed(t, query)
                got = out[(name, res)]
                got["times"].append(seconds)
                got["others"].append(other)
                got["rows"] = rows
                print(f"  {name} res {res}: {seconds:.3f} s, {len(rows):,} cells, "
                      f"other load {other:.2f}", file=sys.stderr)
    for (src, _res), got in out.items():
        got["median"] = statistics.median(got["times"])
        get = (lambda r: r["pings"]) if src in ("first", "replay") else (lambda r: r.pings)
        got["pings"] = sum(get(r) for r in got["rows"])
    return out


def check_release(results: dict, res: int) -> None:
    """A released cell is the hourly rollups' cell, counts and all (exact mode only
    withholds); the replay is the first release; raw and hourly count the same pings."""
    truth = {r.cell: r for r in results[("hourly", res)]["rows"]}
    first = results[("first", res)]["rows"]
    assert first == results[("replay", res)]["rows"], res
    for row in first:
        cell = truth[row["cell"]]
        assert (row["pings"], row["subjects"]) == (cell.pings, cell.subjects), (res, row)
    assert results[("hourly", res)]["pings"] == results[("raw", res)]["pings"], res


def counts(db: Database, t: Tenant, month) -> dict:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pings WHERE tenant_id = %(t)s), "
            "(SELECT count(*) FROM rollups WHERE tenant_id = %(t)s), "
            "(SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits "
            " WHERE inhparent = 'pings'::regclass), "
            "pg_size_pretty(pg_total_relation_size('rollups'))", {"t": t.tenant_id}).fetchone()
    return {"pings": row[0], "rollups": row[1], "pings_size": row[2], "rollups_size": row[3]}


def bench(args) -> str:
    month = thirty_day_month(dt.datetime.now(dt.UTC).date())
    days = [month[0] + dt.timedelta(days=k) for k in range(30)]
    now = dt.datetime.combine(month[1], dt.time(0), dt.UTC) + dt.timedelta(days=3)  # settled
    started = time.perf_counter()
    phases = []
    with throwaway_database() as db:
        t = make_tenant(db, "bench-reports", {}, PURPOSES,
                        {"DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS)})
        mask = t.mask("navigation", "analytics")
        done = 0
        for subjects in (args.small_subjects, args.big_subjects):
            t0 = time.perf_counter()
            n = load(db, [DayLoad(t.tenant_id, d, mask, 10, s0, min(s0 + 100, subjects))
                          for d in days for s0 in range(done, subjects, 100)])
            points = add_cells(db)
            rollups = derive_rollups(db, t)
            forget_releases(db, t, basis=True)  # the smaller phase's basis is not this data's
            prep_s = time.perf_counter() - t0
            freeze_s, frozen = freeze_basis(t, now)
            done = subjects
            print(f"{subjects} subjects: +{n:,} pings, +{points:,} points, {rollups:,} rollups "
                  f"in {prep_s:.0f} s; basis of {frozen} days frozen in {freeze_s:.1f} s",
                  file=sys.stderr)
            info = counts(db, t, month)
            info.update(subjects=subjects, prep_s=prep_s, freeze_s=freeze_s, frozen=frozen,
                        basis_rows=basis_rows(db, t, month),
                        results=measure(t, month, now, args.reps))
            for res in RESOLUTIONS:
                check_release(info["results"], res)
            phases.append(info)
        server = db.server_version
    return report(args, month, phases, server, time.perf_counter() - started)


def report(args, month, phases, server, total_s) -> str:
    small, big = phases
    rows = []
    for p in phases:
        for res in RESOLUTIONS:
            for src in SOURCES:
                r = p["results"][(src, res)]
                read = {"first": p["basis_rows"], "replay": 1, "raw": p["pings"],
                        "hourly": p["rollups"]}[src]
                rows.append([f"{p['pings']:,}", res, SOURCES[src], f"{read:,}",
                             f"**{r['median'] * 1000:,.0f}**",
                             f"{min(r['times']) * 1000:,.0f}-{max(r['times']) * 1000:,.0f}",
                             f"{len(r['rows']):,}", f"{max(r['others']):.2f}"])

    def med(p, src, res):
        return p["results"][(src, res)]["median"]

    verdicts = []
    for res in RESOLUTIONS:
        speedup = med(big, "raw", res) / med(big, "replay", res)
        growth = med(big, "replay", res) / med(small, "replay", res)
        verdicts.append(
            f"resolution {res}: the answer as analysts get it again (replay) "
            f"**{speedup:.0f}x** faster than raw at {big['pings']:,} pings (target >= "
            f"{TARGET_SPEEDUP:.0f}x): {'**met**' if speedup >= TARGET_SPEEDUP else '**missed**'};"
            f" its time at {big['pings']:,} / at {small['pings']:,} = **{growth:.2f}** (target "
            f"<= {TARGET_GROWTH}): {'**met**' if growth <= TARGET_GROWTH else '**missed**'} "
            f"(raw: {med(big, 'raw', res) / med(small, 'raw', res):.2f})")
    for res in RESOLUTIONS:
        verdicts.append(
            f"resolution {res}, the tenant's first question: {med(small, 'first', res):.2f} s "
            f"at {small['pings']:,} pings, {med(big, 'first', res):.2f} s at {big['pings']:,} "
            f"({med(big, 'first', res) / med(small, 'first', res):.2f} times; "
            f"{med(big, 'raw', res) / med(big, 'first', res):.1f}x faster than raw, "
            f"{med(big, 'first', res) / med(big, 'hourly', res):.2f} times the plain hourly "
            "query)")
    verdicts.append(
        f"freezing the basis (the `release_basis` job, every settled day not frozen yet, "
        f"{small['frozen']} days of which 30 hold data, one transaction per family): "
        f"{small['freeze_s']:.1f} s at {small['pings']:,} pings, {big['freeze_s']:.1f} s at "
        f"{big['pings']:,}; once per day, in advance")
    cmd = " ".join(args.argv)
    return f"""Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL
{server}, default durable settings. `python -m bench.reports {cmd}`
({total_s / 60:.0f} min in all).

The heatmap of one tenant for the 30-day month {month[0]:%B %Y} ({month[0]} to {month[1]}),
at {small['pings']:,} and at {big['pings']:,} pings in it, asked three days after the
month ended (settled); median of {args.reps} runs each (the range shows the runs' spread):

{table(["pings", "res", "source", "rows read", "median ms", "range ms", "cells", "other load"],
       rows, "rrlrrrrr")}

{chr(10).join(f"- {v}" for v in verdicts)}

Data: {small['subjects']} and then {big['subjects']} field workers (the same
{small['subjects']} plus {big['subjects'] - small['subjects']} more), every day of the month,
{PER_SUBJECT_DAY:,} pings each a day (a ping every {PING_EVERY_S} s, half of every hour at one
of 200 sites in Berlin, half driving to the next), stored at 10 m for navigation and
analytics (aggregate use). Rollups: {small['rollups']:,} cell-hours at {small['pings']:,}
pings ({small['rollups_size']}), {big['rollups']:,} at {big['pings']:,} ({big['rollups_size']};
pings {big['pings_size']} with indexes). The frozen basis holds one row per resolution-9
cell and day: {small['basis_rows']:,} and {big['basis_rows']:,} for the month.

How: govern's answer is `govern.domain.reports.heatmap` as `GET /v1/reports/heatmap` calls
it (the tenant's policy, the period rules, the release ledger, the k floor, complementary
suppression, the audit entry; committed). Its first question reads the month's frozen basis
(frozen beforehand, as the scheduler does) and checks its candidates against the ledger,
emptied before each such run so that every one is the tenant's first; it is then asked
again at once (replay: the stored answer). The bench checks that every released cell has the
hourly query's counts and that the replay is the first answer. The hourly query is the
plain k floor's source before the ledger (every cell-hour of the month); the raw query is
the rollup query's own shape over raw pings (see the module docstring of
`bench/reports.py`), grouping by a square grid of the resolution's average H3 cell area
({grid_step(9)[0] * 111_320:.0f} m and {grid_step(7)[0] * 111_320:.0f} m), so both count the
same pings (checked) in about as many cells. Every query runs in a tenant session (sessions
from `create_app()`, the app role, row-level security on; statement timeout raised to
{STATEMENT_TIMEOUT_MS // 60000} min for the raw query) with every row fetched; a warm-up run of
each first, then they take turns. "Rows read" is what each aggregates (the ledger: one
answer). "Other load" is the most CPU (cores) other processes used during a run. Data
preparation ({small['prep_s']:.0f} s and {big['prep_s']:.0f} s: set-wise inserts, H3 cells of
the distinct stored points in Python, rollups derived in SQL, VACUUM ANALYZE, CHECKPOINT) is
not timed; freezing the basis is timed on its own (above).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-subjects", type=int, default=27,
                        help=f"workers at the small size ({PER_SUBJECT_DAY:,} pings a day)")
    parser.add_argument("--big-subjects", type=int, default=267)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--write", action="store_true",
                        help="update the Reports section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"]
    if args.quick:
        args.small_subjects, args.big_subjects, args.reps = 2, 6, 2
        Clock.quiet_wait = 0
    text = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Reports", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
