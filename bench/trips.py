"""Trip building and travel reports on one throwaway database:

(a) load: synthetic workdays (depot, 3-5 customer sites with stays, depot) for N subjects over
    the previous calendar month, COPYed into `pings` as the superuser (context only);
(b) full build: `govern.domain.trips.build_all` over all of it, as the first scheduler run
    after a backfill would do (pings read per subject, stays detected, stops and trips
    written), with row-level security on;
(c) incremental builds: one more day for every subject (the daily steady state), then late
    pings in the middle of an already-built day for a tenth of the subjects;
(d) report latency from the derived tables over HTTP (Flask test client, no network): the
    travel, visits and origin-destination reports for a day, an ISO week and the month.

    .venv/bin/python -m bench.trips [--subjects N] [--days D] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import io
import math
import random
import statistics
import sys
import time

from bench.common import machine, table, throwaway_database, write_section
from govern.synthetic import distance_m, offset

CITY = (52.52, 13.405)
PURPOSES = [
    {"key": "navigation", "title": "Navigation", "precision_m": 10, "retention_days": 30,
     "individual_access": True, "aggregate_use": False, "reader_roles": ["dispatcher"]},
    {"key": "analytics", "title": "Analytics", "precision_m": 250, "retention_days": 365,
     "individual_access": False, "aggregate_use": True, "reader_roles": []},
    {"key": "time_tracking", "title": "Time and mileage", "precision_m": 250,
     "retention_days": 400, "individual_access": True, "aggregate_use": False,
     "reader_roles": ["admin"]},
]
MASK, PRECISION = 0b111, 10
N_SITES = 40
MOVE_EVERY, STAY_EVERY = 30, 120


def workday(rng: random.Random, sites: list, day: dt.date):
    """(epoch seconds, lon, lat) of one worker's day: a ping every 30 s while driving at
    8-14 m/s, every 2 min while at a site (15-60 min), depot first and last."""
    depot = sites[0]
    plan = [(depot, rng.uniform(15, 30))]
    plan += [(s, rng.uniform(15, 60)) for s in rng.sample(sites[1:], rng.randint(3, 5))]
    plan += [(depot, rng.uniform(10, 20))]
    t = dt.datetime.combine(day, dt.time(6, 0), dt.UTC).timestamp() + rng.uniform(0, 5400)
    pos, out = depot, []
    for n, (site, stay_min) in enumerate(plan):
        if n:
            speed = rng.uniform(8, 14)
            steps = max(1, math.ceil(distance_m(pos, site) / (speed * MOVE_EVERY)))
            for s in range(1, steps + 1):
                f = s / steps
                t += MOVE_EVERY
                lat, lon = offset(pos[0] + (site[0] - pos[0]) * f,
                                   pos[1] + (site[1] - pos[1]) * f,
                                   rng.gauss(0, 5), rng.gauss(0, 5))
                out.append((t, lon, lat))
        end = t + stay_min * 60
        while t < end:
            lat, lon = offset(*site, rng.gauss(0, 8), rng.gauss(0, 8))
            out.append((t, lon, lat))
            t += STAY_EVERY
        pos = site
    return out


def setup(db, n_subjects: int, rng: random.Random):
    """A tenant with purposes, sites (80 m circles), subjects with devices and consent."""
    from govern.config import Config
    from govern.db import make_engine, make_sessionmaker, tenant_session
    from govern.domain import consents, purposes, sites, subjects
    from govern.domain.tenants import create_tenant

    config = Config.from_env({"DATABASE_URL": db.url, "LOG_LEVEL": "WARNING"})
    sessions = make_sessionmaker(make_engine(config.app_database_url, pool_size=2,
                                             statement_timeout_ms=600_000))
    with tenant_session(sessions, None) as s:
        created = create_tenant(s, "bench")
    tid, actor = created.tenant_id, "cli:bench"
    places = [offset(*CITY, rng.uniform(-7000, 7000), rng.uniform(-9000, 9000))
              for _ in range(N_SITES)]
    workers = []
    with tenant_session(sessions, tid) as s:
        for spec in PURPOSES:
            purposes.create_purpose(s, tid, actor, dict(spec, requires_consent=True))
        for k, (lat, lon) in enumerate(places):
            sites.create_site(s, tid, actor, name=f"{'depot' if k == 0 else 'site'}-{k:02d}",
                              geometry={"type": "Point", "coordinates": [lon, lat]},
                              radius_m=80, kind="depot" if k == 0 else "customer",
                              max_vertices=10_000)
        granted = dt.datetime.now(dt.UTC) - dt.timedelta(days=120)
        for n in range(n_subjects):
            subject = subjects.create_subject(s, tid, actor, {"external_ref": f"w{n:04d}"})
            device, _ = subjects.enrol_device(s, tid, actor, subject.subject_id)
            for spec in PURPOSES:
                consents.record_consent(s, tid, subject.subject_id, purpose_key=spec["key"],
                                        status="granted", at=granted, policy_version="b",
                                        evidence={"bench": True}, source="admin", actor=actor)
            workers.append((subject.subject_id, device.device_id))
    return config, sessions, tid, created.owner_token, places, workers


def load(db, tid, workers, places, days: list[dt.date], rng: random.Random,
         tag: str = "") -> int:
    """COPY the workers' days into pings (text COPY, 1,000 worker-days per transaction)."""
    with db.connect(autocommit=True) as conn:
        for day in days:
            conn.execute("SELECT govern_ensure_ping_partition(%s)", (day,))
    n = 0
    with db.connect() as conn:
        buf, pending = io.StringIO(), 0
        for day in days:
            for subject_id, device_id in workers:
                prefix = f"{tid}\t{device_id}\t{subject_id}\t"
                for k, (t, lon, lat) in enumerate(workday(rng, places, day)):
                    stamp = dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
                    buf.write(f"{prefix}{stamp}\t{tag}{day.isoformat()}-{k}\t{MASK}\t"
                              f"{PRECISION}\tSRID=4326;POINT({lon:.7f} {lat:.7f})\n")
                    n += 1
                pending += 1
                if pending >= 1000:
                    _copy(conn, buf)
                    buf, pending = io.StringIO(), 0
        _copy(conn, buf)
    return n


def _copy(conn, buf: io.StringIO) -> None:
    with conn.cursor().copy("COPY pings (tenant_id, device_id, subject_id, t, client_key, "
                            "purpose_mask, precision_m, geom) FROM STDIN") as copy:
        copy.write(buf.getvalue())
    conn.commit()


def timed_build(db, sessions, tid) -> tuple[dict, float]:
    from govern.db import make_engine
    from govern.domain.trips import build_all

    owner = make_engine(db.url, pool_size=1)
    started = time.perf_counter()
    report = build_all(owner, sessions, tenant_id=tid)
    seconds = time.perf_counter() - started
    owner.dispose()
    return report, seconds


def report_latency(config, token: str, month: tuple[dt.date, dt.date], reps: int) -> list:
    from govern.app import create_app

    app = create_app(config)
    client = app.test_client()
    first, end = month
    monday = first + dt.timedelta(days=(7 - first.weekday()) % 7)
    periods = [("day", monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)),
               ("ISO week", monday, monday + dt.timedelta(days=7)),
               ("month", first, end)]
    reports = [("travel", {"bucket": "day"}), ("visits", {"bucket": "day"}),
               ("od", {"zones": "sites"}), ("od", {"zones": "h3:7"})]
    rows = []
    for kind, params in reports:
        for label, a, b in periods:
            q = {"from": f"{a.isoformat()}T00:00:00Z", "to": f"{b.isoformat()}T00:00:00Z",
                 **params}
            times, body = [], None
            for _ in range(reps):
                started = time.perf_counter()
                resp = client.get(f"/v1/reports/{kind}", query_string=q,
                                  headers={"Authorization": f"Bearer {token}"})
                times.append((time.perf_counter() - started) * 1000)
                assert resp.status_code == 200, resp.get_json()
                body = resp.get_json()
            released = len(next(v for k, v in body.items() if k != "properties"))
            name = f"{kind} ({', '.join(f'{k}={v}' for k, v in params.items())})"
            rows.append([name, label, f"{statistics.median(times):.0f}", f"{max(times):.0f}",
                         released, body["properties"]["suppressed"]])
    return rows


def previous_month(today: dt.date) -> tuple[dt.date, dt.date]:
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return first, first + dt.timedelta(days=calendar.monthrange(first.year, first.month)[1])


def bench(args) -> str:
    rng = random.Random(args.seed)
    month = previous_month(dt.datetime.now(dt.UTC).date())
    days = [month[0] + dt.timedelta(days=k) for k in range(min(args.days,
                                                               (month[1] - month[0]).days))]
    with throwaway_database() as db:
        config, sessions, tid, token, places, workers = setup(db, args.subjects, rng)
        started = time.perf_counter()
        n = load(db, tid, workers, places, days, rng)
        load_s = time.perf_counter() - started
        print(f"loaded {n:,} pings in {load_s:.0f} s", file=sys.stderr)
        with db.connect(autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE pings")
            conn.execute("CHECKPOINT")
        full, full_s = timed_build(db, sessions, tid)
        print(f"built {full['trips']:,} trips in {full_s:.0f} s", file=sys.stderr)

        today = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        load(db, tid, workers, places, [today], rng, tag="new-")
        day_build, day_s = timed_build(db, sessions, tid)
        late_workers = workers[:max(1, len(workers) // 10)]
        late_day = days[len(days) // 2]
        n_late = load(db, tid, late_workers, places, [late_day], rng, tag="late-")
        late_build, late_s = timed_build(db, sessions, tid)
        with db.connect() as conn:
            stops, trips = conn.execute(
                "SELECT (SELECT count(*) FROM stops), (SELECT count(*) FROM trips)").fetchone()
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('trips') + "
                                "pg_total_relation_size('stops'))").fetchone()[0]
        latency = report_latency(config, token, month, args.reps)
        server = db.server_version

    rows = [
        ["(a) load: COPY into pings (context)", f"{n:,}", f"{load_s:.1f}",
         f"{n / load_s:,.0f}", "-", "-"],
        ["(b) full build (backfill)", f"{full['pings']:,}", f"{full_s:.1f}",
         f"**{full['pings'] / full_s:,.0f}**", f"{full['stops']:,}", f"{full['trips']:,}"],
        ["(c) next day, every subject", f"{day_build['pings']:,}", f"{day_s:.1f}",
         f"{day_build['pings'] / day_s:,.0f}", f"{day_build['stops']:,}",
         f"{day_build['trips']:,}"],
        [f"(c) late pings, {len(late_workers)} subjects ({n_late:,} new)",
         f"{late_build['pings']:,}", f"{late_s:.1f}", f"{late_build['pings'] / late_s:,.0f}",
         f"{late_build['stops']:,}", f"{late_build['trips']:,}"],
    ]
    per_day = n / (len(days) * len(workers))
    return f"""Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL
{server}, default durable settings. `{' '.join(['python -m bench.trips', *args.argv])}`.

Data: {len(workers)} subjects x {len(days)} days ({month[0]:%B %Y}) = **{n:,} pings**
(about {per_day:.0f} per worker-day: a ping every {MOVE_EVERY} s while driving at 8-14 m/s,
every {STAY_EVERY} s during 15-60 minute stays at 3-5 of {N_SITES} sites (80 m circles),
depot first and last). The whole run (set-up, load, builds, reports) took
{(time.perf_counter() - args.started) / 60:.0f} minutes, about the most that fits in five
here; 40M pings (500 subjects x 30 days pinging every 30 s all day) would take about
{40e6 / (full['pings'] / full_s) / 60:.0f} minutes to build at the rate measured, and longer
to load.

| step | pings read | seconds | pings/s | stops written | trips written |
|------|-----------:|--------:|--------:|--------------:|--------------:|
{chr(10).join('| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows)}

After it: {stops:,} stops and {trips:,} trips ({size} with indexes). "pings read" counts
every ping a build re-read: a subject with new pings is rebuilt from the start of its last
stop before the earliest new ping, so the steady state re-reads a little (the stop it was
in), and late pings cost the rest of their day.

Report latency from the derived tables (HTTP through the Flask test client, {args.reps}
runs each, no differential privacy, k = 5; "released" are buckets, site-buckets or pairs):

{table(["report", "period", "p50 ms", "max ms", "released", "suppressed"], latency,
       "llrrrr")}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trips", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--days", type=int, default=31, help="days of the previous month")
    parser.add_argument("--reps", type=int, default=5, help="runs of each report")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--write", action="store_true",
                        help="update the Trips section of docs/benchmarks.md (not with --quick)")
    args = parser.parse_args(argv)
    args.argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"]
    if args.quick:
        args.subjects, args.days, args.reps = min(args.subjects, 10), min(args.days, 3), 2
    args.started = time.perf_counter()
    text = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Trips", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
