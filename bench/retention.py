"""Retention cost (issue 5): a purge must cost what it removes, not what the table holds.
Side by side in one run, on one throwaway cluster with durable default settings:

(a) purging one day of pings, each way on its own fresh copy of the same day (same rows,
    vacuumed and checkpointed first): the `partitions` job
    (govern.domain.retention.maintain_partitions, which drops the day partition), a bare
    DROP TABLE of it, one DELETE of the day's rows + VACUUM, and govern's own batched deletes
    (run_tenant once every window has closed) + VACUUM;
(b) ageing: the same 100,000 rows (the oldest day that still serves `navigation`) lose that
    purpose and are coarsened from 10 m to 250 m by govern.domain.retention.run_tenant, on a
    1M-ping and on a 10M-ping table (two databases in the same cluster, same day layout; the
    10M table's older days were aged earlier, as a daily scheduler leaves them), in rounds
    that alternate between the two; each round moves `now` one day on.

Pings are generated set-wise in SQL (INSERT ... SELECT FROM generate_series) as the
superuser: field workers staying at and driving between sites in a city, a ping every 30 s,
stored as ingest stores them (govern_snap at the purpose's precision, masks with the bits
of purposes made by govern.domain.purposes.create_purpose).

    .venv/bin/python -m bench.retention [--quick] [--write] [--rounds N] [--big-days D]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.common import (
    CpuMeter,
    Database,
    machine,
    table,
    throwaway_database,
    wait_for_quiet,
    write_section,
)

CITY = (52.52, 13.405)  # Berlin
CITY_HALF_M = (9_000, 12_000)  # sites within +-9 km north-south, +-12 km east-west
N_SITES = 200
PING_EVERY_S = 30
LEG = 120  # pings per leg: an hour, half of it at a site, half driving to the next one
PER_SUBJECT_DAY = 1250  # pings per subject and day: 10 h 25 min at 30 s
DAY_SUBJECTS = 80  # 80 x 1,250 = 100,000 pings a day
PURPOSES = [
    {"key": "navigation", "title": "Navigation", "precision_m": 10, "retention_days": 9,
     "individual_access": True, "aggregate_use": False, "reader_roles": ["dispatcher"],
     "requires_consent": True},
    {"key": "analytics", "title": "Analytics", "precision_m": 250, "retention_days": 365,
     "individual_access": False, "aggregate_use": True, "reader_roles": [],
     "requires_consent": True},
]
TARGET_DROP = 10.0  # (a): DROP at least 10x faster than DELETE + VACUUM
TARGET_AGEING = 1.5  # (b): ageing time at 10M / at 1M at most 1.5
EPOCH = dt.date(2000, 1, 1)

# One day of pings for subjects [s0, s1). Leg j of subject s on day d goes from site a(j) to
# site a(j + 1): the first half of the hour at a(j) (GPS noise +-15 m), the second half
# driving there in a straight line (noise +-5 m). Hash-based noise, so a day is the same
# rows every time it is generated.
PINGS_SQL = """
INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask, precision_m,
                   geom, acc, alt, speed, heading, battery, activity)
SELECT %(tenant_id)s, md5('dev-' || v.s)::uuid, md5('sub-' || v.s)::uuid,
       %(start)s::timestamptz + make_interval(mins => mod(v.s, 60)::int,
                                             secs => v.k * %(every)s),
       '', %(mask)s, %(prec)s,
       govern_snap(v.lon, v.lat, %(prec)s),
       greatest(v.acc, %(prec)s), round(v.alt / %(prec)s) * %(prec)s,
       v.speed, v.heading, round(100 - v.k * 0.05), v.activity
FROM (
  SELECT w.s, w.k,
         w.lat0 + (w.lat1 - w.lat0) * w.f + w.n1 * w.r / 111320.0 AS lat,
         w.lon0 + (w.lon1 - w.lon0) * w.f + w.n2 * w.r / (111320.0 * cos(radians(w.lat0)))
           AS lon,
         3 + abs(mod(w.h, 22)) AS acc, 45 + mod(w.h, 8) AS alt,
         CASE WHEN w.stay THEN 'still' ELSE 'in_vehicle' END AS activity,
         CASE WHEN w.stay THEN 0 ELSE round((sqrt(((w.lat1 - w.lat0) * 111320.0) ^ 2
              + ((w.lon1 - w.lon0) * 111320.0 * cos(radians(w.lat0))) ^ 2) / 1800.0)
              ::numeric, 1) END AS speed,
         CASE WHEN w.stay THEN 0 ELSE round(degrees(atan2(w.lon1 - w.lon0 + 1e-12,
              w.lat1 - w.lat0))::numeric + 360) %% 360 END AS heading
  FROM (
    SELECT x.s, x.k, x.stay, x.f, x.h,
           c.lats[x.a] AS lat0, c.lons[x.a] AS lon0, c.lats[x.b] AS lat1, c.lons[x.b] AS lon1,
           CASE WHEN x.stay THEN 15 ELSE 5 END AS r,
           mod(x.h, 1000) / 1000.0 AS n1, mod(hashint8(x.h), 1000) / 1000.0 AS n2
    FROM (
      SELECT g.s, g2.k, mod(g2.k, %(leg)s) < %(leg)s / 2 AS stay,
             greatest(mod(g2.k, %(leg)s) - %(leg)s / 2 + 1, 0)::float8 / (%(leg)s / 2) AS f,
             1 + mod(hashint8(g.s * 1000003 + %(day_no)s * 1009 + g2.k / %(leg)s)
                     & 2147483647, %(n_sites)s)::int AS a,
             1 + mod(hashint8(g.s * 1000003 + %(day_no)s * 1009 + g2.k / %(leg)s + 1)
                     & 2147483647, %(n_sites)s)::int AS b,
             hashint8(g.s * 7919 + %(day_no)s * 104729 + g2.k * 31) AS h
      FROM generate_series(%(s0)s::bigint, %(s1)s::bigint - 1) AS g(s)
           CROSS JOIN generate_series(0::bigint, %(per)s::bigint - 1) AS g2(k)
    ) x CROSS JOIN (SELECT %(lats)s::float8[] AS lats, %(lons)s::float8[] AS lons) c
  ) w
) v
"""


def city_sites(seed: int = 5) -> tuple[list[float], list[float]]:
    """N_SITES (lat, lon) places spread over the city."""
    rng = random.Random(seed)
    lats, lons = [], []
    for _ in range(N_SITES):
        north, east = (rng.uniform(-CITY_HALF_M[0], CITY_HALF_M[0]),
                       rng.uniform(-CITY_HALF_M[1], CITY_HALF_M[1]))
        lats.append(CITY[0] + north / 111_320)
        lons.append(CITY[1] + east / (111_320 * math.cos(math.radians(CITY[0]))))
    return lats, lons


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), dt.UTC)


@dataclass
class DayLoad:
    """One day of pings for subjects [s0, s1), stored with `mask` at `prec` metres."""

    tenant_id: uuid.UUID
    day: dt.date
    mask: int
    prec: int
    s0: int = 0
    s1: int = DAY_SUBJECTS
    per: int = PER_SUBJECT_DAY

    @property
    def rows(self) -> int:
        return (self.s1 - self.s0) * self.per

    def params(self) -> dict:
        lats, lons = city_sites()
        start = day_start(self.day) + dt.timedelta(hours=6)
        return {"tenant_id": self.tenant_id, "start": start, "every": PING_EVERY_S,
                "mask": self.mask, "prec": self.prec, "leg": LEG,
                "day_no": (self.day - EPOCH).days, "n_sites": N_SITES, "s0": self.s0,
                "s1": self.s1, "per": self.per, "lats": lats, "lons": lons}


def load(db: Database, loads: list[DayLoad], workers: int = 2) -> int:
    """Make the day partitions, then insert every load (one statement and commit each), on
    `workers` connections in parallel. Returns the rows inserted."""
    with db.connect(autocommit=True) as conn:
        for day in sorted({x.day for x in loads}):
            conn.execute("SELECT govern_ensure_ping_partition(%s)", (day,))

    def one(chunk: list[DayLoad]) -> int:
        n = 0
        with db.connect(autocommit=True) as conn:
            for x in chunk:
                n += conn.execute(PINGS_SQL, x.params()).rowcount
        return n

    chunks = [loads[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, [c for c in chunks if c]))


STAGING_COLUMNS = ("tenant_id, device_id, subject_id, t, client_key, received_at, purpose_mask, "
                   "precision_m, geom, acc, alt, speed, heading, battery, activity")


def stage(db: Database, x: DayLoad, name: str = "bench_staging") -> None:
    """Generate one day into an unlogged side table, to copy it cheaply later."""
    with db.connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE UNLOGGED TABLE {name} (LIKE pings INCLUDING DEFAULTS)")
        conn.execute(PINGS_SQL.replace("INSERT INTO pings", f"INSERT INTO {name}", 1),
                     x.params())
        conn.commit()


def copy_days(db: Database, days: list[dt.date], name: str = "bench_staging",
              workers: int = 2) -> int:
    """Insert the staged day once per day in `days` (shifted in time), in parallel."""
    with db.connect(autocommit=True) as conn:
        first = conn.execute(f"SELECT min(t) FROM {name}").fetchone()[0]
        for day in days:
            conn.execute("SELECT govern_ensure_ping_partition(%s)", (day,))
    base = first.date()

    def one(chunk: list[dt.date]) -> int:
        n = 0
        with db.connect(autocommit=True) as conn:
            for day in chunk:
                n += conn.execute(
                    f"INSERT INTO pings ({STAGING_COLUMNS}) SELECT "
                    + STAGING_COLUMNS.replace("t, client_key", "t + %s, client_key")
                    + f" FROM {name}", (day - base,)).rowcount
        return n

    chunks = [days[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, [c for c in chunks if c]))


def partition_name(day: dt.date) -> str:
    return f"pings_{day:%Y%m%d}"


def clone_database(db: Database, name: str) -> Database:
    """A second database at head in the same cluster (roles are shared)."""
    from govern import migrate

    with db.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = db.url.replace("/govern?", f"/{name}?", 1)
    assert url != db.url
    migrate.upgrade(url)
    return Database(url, db.base, db.server_version)


@dataclass
class Tenant:
    db: Database
    sessions: object  # sessionmaker, from the app as the API builds it
    tenant_id: uuid.UUID
    bits: dict[str, int]
    purpose_ids: dict[str, uuid.UUID]

    def mask(self, *keys: str) -> int:
        return sum(1 << self.bits[k] for k in keys)


def make_tenant(db: Database, name: str, app_cache: dict, purposes: list[dict] | None = None,
                env: dict | None = None) -> Tenant:
    """A tenant made by govern's own code, with `purposes` (PURPOSES by default); sessions
    from create_app() (`env` adds to its environment)."""
    from govern.app import create_app
    from govern.config import Config
    from govern.db import tenant_session
    from govern.domain.purposes import create_purpose
    from govern.domain.tenants import create_tenant

    if db.url not in app_cache:
        config = Config.from_env({"DATABASE_URL": db.url, "LOG_LEVEL": "WARNING", **(env or {})})
        app_cache[db.url] = create_app(config).extensions["govern"].sessions
    sessions = app_cache[db.url]
    with tenant_session(sessions, None) as s:
        tid = create_tenant(s, name).tenant_id
    with tenant_session(sessions, tid) as s:
        made = [create_purpose(s, tid, "cli:bench", dict(spec)) for spec in purposes or PURPOSES]
        bits = {p.key: p.bit for p in made}
        ids = {p.key: p.purpose_id for p in made}
    return Tenant(db, sessions, tid, bits, ids)


def set_aged_until(t: Tenant, until: dict[str, dt.datetime]) -> None:
    """Where each purpose's ageing stands, as an earlier run would have left it."""
    with t.db.connect() as conn:
        for key, at in until.items():
            conn.execute("UPDATE retention_state SET aged_until = %s "
                         "WHERE tenant_id = %s AND purpose_id = %s",
                         (at, t.tenant_id, t.purpose_ids[key]))
        conn.commit()


def settle(db: Database, *tables: str, freeze: bool = False) -> None:
    """VACUUM (ANALYZE) what was loaded, as autovacuum would have long since, and CHECKPOINT
    so that the timed step does not pay for writing the load's dirty pages."""
    with db.connect(autocommit=True) as conn:
        opts = "FREEZE, ANALYZE" if freeze else "ANALYZE"
        for name in tables or ("pings",):
            conn.execute(f"VACUUM ({opts}) {name}")
        conn.execute("CHECKPOINT")


class Clock:
    """Wall time of a step, and the CPU other processes used meanwhile. Waits (up to
    `Clock.quiet_wait` seconds) for other processes to calm down before it starts."""

    quiet_wait = 10.0

    def __init__(self, db: Database):
        self.meter = CpuMeter(db.datadir)
        self.seconds = 0.0
        self.other = 0.0

    def __enter__(self):
        if self.quiet_wait > 0:
            wait_for_quiet(self.meter, max_wait=self.quiet_wait)
        self.meter.start()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.other = self.meter.stop()


# ---- (a) purge one day --------------------------------------------------------------------

@dataclass
class PurgeResult:
    rows: int
    way: str
    seconds: float
    parts: str = ""
    other: float = 0.0
    kind: str = ""  # job, drop, drop_empty, delete, flat, batched
    group: int = 0  # the size of the day this result belongs to


FLAT_INDEXES = [  # the indexes pings has (migrations 0003, 0007), on an unpartitioned table
    "ALTER TABLE bench_flat ADD PRIMARY KEY (tenant_id, device_id, t, client_key)",
    "CREATE INDEX ON bench_flat (tenant_id, subject_id, t)",
    "CREATE INDEX ON bench_flat USING brin (received_at) WITH (pages_per_range = 32)",
]


def flat_delete(db: Database, day: dt.date, days: int) -> PurgeResult:
    """The design partitioning replaces: the staged day copied into one unpartitioned table
    for `days` days from `day` (the oldest), with pings' indexes; then the oldest day's rows
    deleted + VACUUM of the table (which scans every index whole)."""
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_flat")
        conn.execute("CREATE TABLE bench_flat (LIKE pings INCLUDING DEFAULTS "
                     "INCLUDING CONSTRAINTS)")
        for stmt in FLAT_INDEXES:
            conn.execute(stmt)
        base = conn.execute("SELECT min(t) FROM bench_staging").fetchone()[0].date()
    n_day = 0
    for k in range(days):  # in day order, as the table would have filled
        with db.connect(autocommit=True) as conn:
            n = conn.execute(
                f"INSERT INTO bench_flat ({STAGING_COLUMNS}) SELECT "
                + STAGING_COLUMNS.replace("t, client_key", "t + %s, client_key")
                + " FROM bench_staging", (day + dt.timedelta(k) - base,)).rowcount
            n_day = n_day or n
    settle(db, "bench_flat", freeze=True)
    with db.connect(autocommit=True) as conn, Clock(db) as c1:
        deleted = conn.execute("DELETE FROM bench_flat WHERE t >= %s AND t < %s",
                               (day_start(day), day_start(day) + dt.timedelta(days=1))).rowcount
    with db.connect(autocommit=True) as conn, Clock(db) as c2:
        conn.execute("VACUUM bench_flat")
    assert deleted == n_day, (deleted, n_day)
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE bench_flat")
        conn.execute("CHECKPOINT")
    return PurgeResult(n_day, f"DELETE of the day's rows from an unpartitioned {days}-day "
                       "table + VACUUM", c1.seconds + c2.seconds,
                       f"{c1.seconds:.2f} + {c2.seconds:.2f}", max(c1.other, c2.other), "flat")


def purge_day(db: Database, t: Tenant, day: dt.date, subjects: int,
              flat_days: int) -> list[PurgeResult]:
    """Each way of removing the day's rows, each on a fresh copy of the same rows."""
    from govern.db import make_engine
    from govern.domain.retention import maintain_partitions, run_tenant

    longest = max(p["retention_days"] for p in PURPOSES)
    now = day_start(day) + dt.timedelta(days=1 + longest)  # only this day is past every window
    stage(db, DayLoad(t.tenant_id, day, t.mask("navigation", "analytics"), 10, 0, subjects))
    owner = make_engine(db.url, pool_size=1)
    with owner.connect() as conn:  # connected before the clock starts, as in the scheduler
        conn.exec_driver_sql("SELECT 1")
    with db.connect(autocommit=True) as conn:  # the job's days ahead exist, as every hour
        for k in range(-1, 8):
            conn.execute("SELECT govern_ensure_ping_partition(%s)",
                         (now.date() + dt.timedelta(days=k),))
    name = partition_name(day)
    results = []

    def fresh() -> int:
        set_aged_until(t, {k: NEVER_AGED for k in t.bits})
        n = copy_days(db, [day], workers=1)
        settle(db, name, freeze=True)
        return n

    n = fresh()
    with Clock(db) as c:
        report = maintain_partitions(owner, t.sessions, now)
    assert report["dropped"] == 1 and report["created"] == 0, report
    results.append(PurgeResult(n, "`partitions` job: maintain_partitions() drops the day",
                               c.seconds, other=c.other, kind="job"))

    n = fresh()
    with db.connect(autocommit=True) as conn, Clock(db) as c:
        conn.execute(f"DROP TABLE {name}")
    results.append(PurgeResult(n, "DROP TABLE of the day partition", c.seconds, other=c.other,
                               kind="drop"))

    empty = partition_name(day - dt.timedelta(days=1))  # what a DROP costs whatever the size
    with db.connect(autocommit=True) as conn:
        conn.execute("SELECT govern_ensure_ping_partition(%s)", (day - dt.timedelta(days=1),))
        conn.execute("CHECKPOINT")
    with db.connect(autocommit=True) as conn, Clock(db) as c:
        conn.execute(f"DROP TABLE {empty}")
    results.append(PurgeResult(0, "DROP TABLE of an empty day partition (fixed cost)",
                               c.seconds, other=c.other, kind="drop_empty"))

    n = fresh()
    with db.connect(autocommit=True) as conn, Clock(db) as c1:
        deleted = conn.execute("DELETE FROM pings WHERE t >= %s AND t < %s",
                               (day_start(day), day_start(day) + dt.timedelta(days=1))).rowcount
    with db.connect(autocommit=True) as conn, Clock(db) as c2:
        conn.execute(f"VACUUM {name}")
    assert deleted == n, (deleted, n)
    results.append(PurgeResult(n, "DELETE of the day's rows from its partition + VACUUM",
                               c1.seconds + c2.seconds, f"{c1.seconds:.2f} + {c2.seconds:.2f}",
                               max(c1.other, c2.other), "delete"))

    n = fresh()
    with Clock(db) as c1:
        run = run_tenant(t.sessions, t.tenant_id, now)
    with db.connect(autocommit=True) as conn, Clock(db) as c2:
        conn.execute(f"VACUUM {name}")
    assert run.totals()["deleted"] == n, run.totals()
    results.append(PurgeResult(n, "run_tenant(): batched deletes (5,000 a transaction) "
                               "+ VACUUM", c1.seconds + c2.seconds,
                               f"{c1.seconds:.2f} + {c2.seconds:.2f}",
                               max(c1.other, c2.other), "batched"))
    with db.connect(autocommit=True) as conn:
        conn.execute(f"DROP TABLE {name}")
        for k in range(-1, 8):  # the job's days ahead, not wanted in (b)
            conn.execute(f"DROP TABLE IF EXISTS {partition_name(now.date() + dt.timedelta(k))}")
    if flat_days:
        results.append(flat_delete(db, day, flat_days))
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE bench_staging")
    owner.dispose()
    for r in results:
        r.group = n
    return results


NEVER_AGED = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# ---- (b) ageing on a small and a big table -------------------------------------------------

@dataclass
class AgeingTable:
    label: str
    tenant: Tenant
    pings: int
    times: list[float]
    others: list[float]
    batches: list[int]
    aged: int = 0


def build_ageing_table(t: Tenant, first: dt.date, days: int, fresh_days: int,
                       subjects: int) -> int:
    """`days` days of pings from `first`; all but the last `fresh_days` already aged (only
    `analytics`, 250 m), as a daily retention run leaves them. Returns the row count."""
    db = t.db
    aged_days = [first + dt.timedelta(k) for k in range(days - fresh_days)]
    fresh = [first + dt.timedelta(k) for k in range(days - fresh_days, days)]
    n = 0
    if aged_days:
        stage(db, DayLoad(t.tenant_id, aged_days[0], t.mask("analytics"), 250, 0, subjects))
        n += copy_days(db, aged_days)
        with db.connect(autocommit=True) as conn:
            conn.execute("DROP TABLE bench_staging")
    mask = t.mask("navigation", "analytics")
    n += load(db, [DayLoad(t.tenant_id, d, mask, 10, 0, subjects) for d in fresh])
    settle(db)
    return n


def hourly_job(t: Tenant, now: dt.datetime) -> None:
    """The `partitions` job, untimed, as the scheduler runs it every hour between two
    retention runs (it creates the days ahead and summarizes the arrival-time BRIN of the
    days that have ended; nothing here is old enough to drop)."""
    from govern.db import make_engine
    from govern.domain.retention import maintain_partitions

    owner = make_engine(t.db.url, pool_size=1)
    try:
        assert maintain_partitions(owner, t.sessions, now)["dropped"] == 0
    finally:
        owner.dispose()


def ageing_rounds(tables: list[AgeingTable], first_fresh: dt.date, end: dt.date,
                  rounds: int, per_day: int) -> None:
    """Round r: now = end + r days, so the navigation window (9 days) closes over exactly one
    more day, first_fresh + r, in every table; the tables take turns, alternating order."""
    from govern.domain.retention import Budget, run_tenant

    nav_days = next(p["retention_days"] for p in PURPOSES if p["key"] == "navigation")
    an_days = next(p["retention_days"] for p in PURPOSES if p["key"] == "analytics")
    start = day_start(end)
    for a in tables:  # as yesterday's run left it
        set_aged_until(a.tenant, {
            "navigation": day_start(first_fresh),
            "analytics": start - dt.timedelta(days=an_days + 1)})
        assert start - dt.timedelta(days=nav_days + 1) == day_start(first_fresh)
    for a in tables:  # connections, statements and caches warm: a run with nothing due
        run = run_tenant(a.tenant.sessions, a.tenant.tenant_id, start - dt.timedelta(days=1))
        assert run.totals() == {"aged": 0, "deleted": 0, "dropped": 0}, run.totals()
    for r in range(rounds):
        now = start + dt.timedelta(days=r)
        for a in tables if r % 2 == 0 else tables[::-1]:
            hourly_job(a.tenant, now)
            with a.tenant.db.connect(autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            batches = Budget()
            with Clock(a.tenant.db) as c:
                run = run_tenant(a.tenant.sessions, a.tenant.tenant_id, now, budget=batches)
            totals = run.totals()
            assert totals["aged"] == per_day and totals["deleted"] == 0, (a.label, totals)
            a.aged = totals["aged"]
            a.times.append(c.seconds)
            a.others.append(c.other)
            a.batches.append(batches.used)
            print(f"  {a.label} round {r + 1}: aged {totals['aged']:,} in {c.seconds:.2f} s "
                  f"({batches.used} batches, other load {c.other:.2f})", file=sys.stderr)


def planning_ms(a: AgeingTable, since: dt.datetime, now: dt.datetime, reps: int = 5) -> float:
    """Median time PostgreSQL takes to plan one batch of run_tenant()'s navigation pass
    (govern.sql.retention.APPLY_BATCH with the parameters it passes), not executing it."""
    from sqlalchemy import select, text

    from govern.db import tenant_session
    from govern.domain.retention import DEFAULT_BATCH, Rules
    from govern.models import Purpose
    from govern.sql import retention as sql

    t = a.tenant
    nav_days = next(p["retention_days"] for p in PURPOSES if p["key"] == "navigation")
    times = []
    with tenant_session(t.sessions, t.tenant_id) as s:
        rules = Rules.of(list(s.scalars(select(Purpose).order_by(Purpose.bit))), now)
        params = {**rules.params(), "tenant_id": t.tenant_id, "t_from": since,
                  "t_to": now - dt.timedelta(days=nav_days), "subject_id": None, "held": [],
                  "touch_bits": 1 << t.bits["navigation"], "extra_clear": 0,
                  "batch": DEFAULT_BATCH}
        for _ in range(reps):
            plan = s.execute(text("EXPLAIN (SUMMARY) " + sql.APPLY_BATCH.text), params).all()
            line = next(r[0] for r in plan if r[0].startswith("Planning Time"))
            times.append(float(line.split(":")[1].split()[0]))
    return statistics.median(times)


def unstated_run(tables: list[AgeingTable], first_fresh: dt.date, end: dt.date,
                 rounds: int, per_day: int) -> list[tuple[str, float, float, int]]:
    """One more day each, with no ageing state (a first run, or the run after a tenant-wide
    hold ends: every purpose is aged from 1970 again)."""
    from govern.domain.retention import Budget, run_tenant

    out = []
    now = day_start(end) + dt.timedelta(days=rounds)
    for a in tables:
        set_aged_until(a.tenant, {k: NEVER_AGED for k in a.tenant.bits})
        hourly_job(a.tenant, now)
        with a.tenant.db.connect(autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        batches = Budget()
        with Clock(a.tenant.db) as c:
            run = run_tenant(a.tenant.sessions, a.tenant.tenant_id, now, budget=batches)
        assert run.totals()["aged"] == per_day, run.totals()
        out.append((a.label, c.seconds, c.other, batches.used))
        print(f"  {a.label} without state: {c.seconds:.2f} s", file=sys.stderr)
    return out


# ---- the run ------------------------------------------------------------------------------

def bench(args) -> str:
    per_day = args.day_subjects * PER_SUBJECT_DAY
    today = dt.datetime.now(dt.UTC).date()
    end = today - dt.timedelta(days=10)  # the day after the last day of pings
    purge_day_ = end - dt.timedelta(days=args.big_days + 400)
    apps: dict = {}
    started = time.perf_counter()
    with throwaway_database() as db:
        big_db = clone_database(db, "govern_big")
        print(f"cluster up in {time.perf_counter() - started:.0f} s", file=sys.stderr)

        purge = make_tenant(db, "bench-purge", apps)
        purged = []
        for subjects in args.purge_subjects:
            these = purge_day(db, purge, purge_day_, subjects, args.flat_days)
            purged += these
            print(f"(a) {subjects * PER_SUBJECT_DAY:,} rows: "
                  + ", ".join(f"{r.kind} {r.seconds:.3f}" for r in these), file=sys.stderr)

        small = make_tenant(db, "bench-small", apps)
        big = make_tenant(big_db, "bench-big", apps)
        fresh_days = args.small_days
        t0 = time.perf_counter()
        n_small = build_ageing_table(small, end - dt.timedelta(args.small_days), args.small_days,
                                     fresh_days, args.day_subjects)
        n_big = build_ageing_table(big, end - dt.timedelta(args.big_days), args.big_days,
                                   fresh_days, args.day_subjects)
        load_s = time.perf_counter() - t0
        print(f"(b) loaded {n_small:,} + {n_big:,} pings in {load_s:.0f} s", file=sys.stderr)
        tables = [AgeingTable(f"{n_small:,}-ping table", small, n_small, [], [], []),
                  AgeingTable(f"{n_big:,}-ping table", big, n_big, [], [], [])]
        first_fresh = end - dt.timedelta(fresh_days)
        ageing_rounds(tables, first_fresh, end, args.rounds, per_day)
        next_now = day_start(end) + dt.timedelta(days=args.rounds)
        plans = [planning_ms(a, day_start(first_fresh + dt.timedelta(args.rounds)), next_now)
                 for a in tables]
        unstated = unstated_run(tables, first_fresh, end, args.rounds, per_day) \
            if args.unstated else []
        sizes = {}
        for a in tables:
            with a.tenant.db.connect() as conn:
                sizes[a.label] = conn.execute(
                    "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))), count(*) "
                    "FROM pg_inherits WHERE inhparent = 'pings'::regclass").fetchone()
        server = db.server_version
    total_s = time.perf_counter() - started
    return report(args, purged, tables, unstated, plans, sizes, per_day, server, load_s,
                  total_s)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "-"


def report(args, purged, tables, unstated, plans, sizes, per_day, server, load_s,
           total_s) -> str:
    flat_days = args.flat_days
    rows_a, verdicts_a = [], []
    for size in sorted({r.group for r in purged}):
        group = [r for r in purged if r.group == size]
        by = {r.kind: r for r in group}
        delete, flat = by["delete"], by.get("flat")
        for r in group:
            rows_a.append([f"{r.rows:,}", r.way, f"{r.seconds:.3f}", r.parts or "-",
                           _ratio(delete.seconds, r.seconds),
                           _ratio(flat.seconds, r.seconds) if flat else "-",
                           f"{r.other:.2f}"])
        for r in (by["job"], by["drop"]):
            who = "the job" if r.kind == "job" else "bare DROP"
            for base, what in ((delete, "DELETE + VACUUM of the same rows in their partition"),
                               (flat, f"DELETE + VACUUM of the same rows in an unpartitioned "
                                      f"{args.flat_days}-day table")):
                if base is None:
                    continue
                x = base.seconds / r.seconds
                verdicts_a.append(
                    f"{size:,} rows, {who}: **{x:.1f}x** faster than {what} "
                    f"(target >= {TARGET_DROP:.0f}x): "
                    f"{'**met**' if x >= TARGET_DROP else '**missed**'}")
    rows_b = []
    for a in tables:
        med = statistics.median(a.times)
        rows_b.append([a.label, sizes[a.label][0], str(sizes[a.label][1]), f"{a.aged:,}",
                       ", ".join(f"{s:.2f}" for s in a.times), f"**{med:.2f}**",
                       f"{a.aged / med:,.0f}", ", ".join(str(b) for b in a.batches),
                       f"{max(a.others):.2f}"])
    small, big = (statistics.median(a.times) for a in tables)
    ratio = big / small
    per_round = [b / s for s, b in zip(tables[0].times, tables[1].times, strict=True)]
    met = "**met**" if ratio <= TARGET_AGEING else "**missed**"
    verdict_b = (f"time at {tables[1].pings:,} / at {tables[0].pings:,} = **{ratio:.2f}** "
                 f"(target <= {TARGET_AGEING}): {met}; per round "
                 f"{min(per_round):.2f}-{max(per_round):.2f}")
    plan_lines = [[a.label, str(sizes[a.label][1]), f"{ms:.1f}",
                   f"{ms * statistics.median(a.batches) / 1000:.2f}",
                   f"{statistics.median(a.times):.2f}"]
                  for a, ms in zip(tables, plans, strict=True)]
    extra = f"""
Planning alone: how long PostgreSQL takes to plan one batch statement of the navigation
pass (`EXPLAIN (SUMMARY)` of `govern.sql.retention.APPLY_BATCH` with run_tenant()'s
parameters for the next day, median of 5), against the whole run:

{table(["table", "day partitions", "planning ms a batch", "x batches, s", "run median s"],
       plan_lines)}
"""
    if unstated:
        lines = [[label, f"{s:.2f}", str(b), f"{o:.2f}"] for label, s, o, b in unstated]
        extra += f"""
The same run with no ageing state (every purpose aged "from 1970": the first run on a
tenant, and the run after a tenant-wide legal hold ends, which starts the passes over), one
more day each:

{table(["table", "seconds", "batches", "other load"], lines)}
"""
    cmd = " ".join(args.argv)
    return f"""Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL
{server}, default durable settings (fsync on). `python -m bench.retention {cmd}`
({total_s / 60:.0f} min in all, {load_s / 60:.1f} of them loading (b)).

### (a) Purging one day: drop its partition, or delete its rows

{table(["rows in the day", "way", "seconds", "of which", "partition DELETE + VACUUM / this",
        "unpartitioned DELETE + VACUUM / this", "other load"], rows_a, "rlrrrrr")}

{chr(10).join(f"- {v}" for v in verdicts_a)}

Each way starts from a fresh copy of the same day (the same rows inserted again into a new
day partition, then `VACUUM (FREEZE, ANALYZE)` and `CHECKPOINT`, as an old day would be).
The job is `maintain_partitions()` as the scheduler calls it (the owner engine, `now` one
day past the longest window, 365 days, of this day, so this day alone is due; its days
ahead already exist): in one transaction it checks the active legal holds against the day,
counts the day's pings per tenant for the evidence, drops the table and records
`partition_drop`. The empty partition's DROP is what a DROP costs whatever the size (catalog
work and the commit); the rest of a DROP's time grows with the files it removes. Two
baselines: DELETE of the same rows from their own day partition, then `VACUUM` of that
partition (the strict one: that partition holds nothing else, so its VACUUM is small too),
and the design partitioning replaces: the same day as the oldest of {flat_days} days in one
unpartitioned table with the same indexes (primary key, subject-time, BRIN on arrival),
DELETE of that day's rows then `VACUUM` of the table, which scans every index whole.
DELETEs are one statement as the superuser; run_tenant() deletes through govern's own
batches (every window of the day closed) as the app role. "Other load" is the most CPU
(cores) other processes used during the step.

### (b) Ageing the same {per_day:,} rows in a small and a big table

{table(["table", "size", "day partitions", "rows aged", "rounds' seconds", "median s",
        "rows/s", "batches", "other load"], rows_b, "lrrrrrrrr")}

- {verdict_b}
{extra}
Both tables are one tenant's pings ({args.day_subjects} field workers, {PER_SUBJECT_DAY:,}
pings each a day: a ping every {PING_EVERY_S} s, half of every hour at one of {N_SITES}
sites in Berlin, half driving to the next, so {per_day:,} pings a day), in two databases of
the same cluster: {tables[0].pings:,} pings over {args.small_days} days and
{tables[1].pings:,} over {args.big_days} days ("day partitions" also counts the ten empty
ones around today that the migration makes). Purposes: navigation (10 m, 9 days) and
analytics (250 m, 365 days). The last {args.small_days} days of each still serve both and
are stored at 10 m; the big table's older days are stored as ageing leaves them
(analytics only, 250 m), and each purpose's ageing state is where yesterday's run left it.
Round r sets `now` r days later than the day after the last pings, so the navigation
window closes over exactly one more day in each table: `run_tenant()` (sessions from
`create_app()`, row-level security on, 5,000 pings a transaction) removes navigation from
that day's {per_day:,} pings and re-snaps them to 250 m. Before each run the `partitions`
job runs untimed, as the scheduler runs it every hour between two daily retention runs
(it summarizes the arrival-time BRIN of the days that have ended). The tables take turns,
in alternating order, each after a `CHECKPOINT`; the medians are compared. Pings are made
set-wise (INSERT ... SELECT from generate_series, geometry by `govern_snap`) and vacuumed
before the rounds.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--day-subjects", type=int, default=DAY_SUBJECTS,
                        help=f"subjects a day in (b), {PER_SUBJECT_DAY:,} pings each")
    parser.add_argument("--small-days", type=int, default=10)
    parser.add_argument("--big-days", type=int, default=100)
    parser.add_argument("--purge-subjects", type=int, nargs="+", default=[80, 800],
                        help=f"(a): the day's subjects, {PER_SUBJECT_DAY:,} pings each")
    parser.add_argument("--flat-days", type=int, default=10,
                        help="(a): days in the unpartitioned baseline table (0: skip it)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-unstated", dest="unstated", action="store_false",
                        help="skip the run without ageing state")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--write", action="store_true",
                        help="update the Retention section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"]
    if args.quick:
        args.day_subjects, args.big_days, args.rounds = 4, 30, 2
        args.purge_subjects = [4, 40]
        args.flat_days = min(args.flat_days, 3)
        Clock.quiet_wait = 0
    text = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Retention", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
