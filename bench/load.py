"""Mixed load against gunicorn for a few minutes: many devices posting ping batches while
analysts pull heatmaps and dispatchers read live positions.

A throwaway cluster (bench.common) is seeded with the demo tenant (`govern.demo`, 20 workers,
2 days) plus one subject with one phone and consent per device thread; then
`python -m gunicorn -w 4 wsgi:app` serves it on 127.0.0.1 (RATE_LIMITS=off) and, for
`--seconds` (180; `--quick` 20), the bench's threads

- devices: each posts a native batch (`POST /v1/pings`, 100 pings of a moving phone,
  timestamps up to now) about every second;
- analysts: `GET /v1/reports/heatmap` for yesterday (a whole UTC day), resolution 7, about
  every 2 s;
- dispatchers: `GET /v1/positions/latest?purpose=dispatch` about every second.

Measured per endpoint: requests, requests/s, p50/p95/p99 latency and errors (non-2xx or
exceptions, by kind); pings accepted per second; CPU of PostgreSQL (the postmaster and its
children, from /proc), of gunicorn and of the load generator; what active backends waited on.
Everything is on loopback (PostgreSQL on a Unix socket only), bounded in threads and time,
and stops by itself.

    .venv/bin/python -m bench.load [--seconds N] [--quick] [--write]

`--write` updates the Load section of docs/benchmarks.md and docs/images/load.png; without
it the plot goes to a temporary file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import math
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import orjson

from bench.common import (
    ROOT,
    AppServer,
    CpuMeter,
    Database,
    machine,
    table,
    throwaway_database,
    wait_for_quiet,
    write_section,
)
from govern.synthetic import offset

PLOT = ROOT / "docs" / "images" / "load.png"
CITY = (52.52, 13.405)  # Berlin, where the demo tenant works
CITY_RADIUS_M = 12_000
# (activity, lowest and highest speed in m/s, weight)
MODES = [("on_foot", 1.2, 2.0, 2), ("on_bicycle", 3.0, 7.0, 2), ("in_vehicle", 6.0, 14.0, 5)]
MAX_SECONDS = 1800  # bounds, whatever the arguments
MAX_THREADS = 200
REQUEST_TIMEOUT = 60.0
TICK = os.sysconf("SC_CLK_TCK")


# ---- endpoints --------------------------------------------------------------------------------

@dataclass
class Endpoint:
    key: str
    label: str  # as the table shows it
    colour: str
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (start, s, status)
    errors: Counter = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    accepted: int = 0  # pings, for POST /v1/pings
    posted: int = 0
    dropped: Counter = field(default_factory=Counter)
    returned: list[int] = field(default_factory=list)  # features per answer, for the reads
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str, example: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.error_examples) < 5:
                self.error_examples.append(example[:300])


PINGS = "pings"
HEATMAP = "heatmap"
POSITIONS = "positions"


# ---- synthetic phones -------------------------------------------------------------------------

class Phone:
    """A phone moving around the city (legs on foot, by bike or by car); each batch holds the
    fixes taken since the previous one, evenly spaced, ending now."""

    def __init__(self, rng: random.Random, n: int, token: str):
        self.rng, self.n, self.token = rng, n, token
        self.lat, self.lon = offset(*CITY, rng.uniform(-8000, 8000), rng.uniform(-8000, 8000))
        self.heading = rng.uniform(0, 360)
        self.battery = rng.uniform(40, 100)
        self.seq = 0
        self.leg_left = 0.0
        self.activity, self.speed = "still", 0.0
        self.last = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    def _step(self, seconds: float) -> None:
        rng = self.rng
        if self.leg_left <= 0:
            self.activity, lo, hi, _ = rng.choices(MODES, weights=[m[3] for m in MODES])[0]
            self.speed = rng.uniform(lo, hi)
            self.leg_left = rng.uniform(60, 600)
        self.leg_left -= seconds
        north = (self.lat - CITY[0]) * 111_320
        east = (self.lon - CITY[1]) * 111_320 * math.cos(math.radians(CITY[0]))
        if math.hypot(north, east) > CITY_RADIUS_M:  # turn back towards the centre
            self.heading = math.degrees(math.atan2(-east, -north))
        self.heading = (self.heading + rng.gauss(0, 2)) % 360
        dist = self.speed * seconds
        self.lat, self.lon = offset(self.lat, self.lon,
                                     dist * math.cos(math.radians(self.heading)),
                                     dist * math.sin(math.radians(self.heading)))

    def batch(self, size: int) -> bytes:
        now = dt.datetime.now(dt.UTC)
        span = max((now - self.last).total_seconds(), 0.001 * size)
        start, self.last = now - dt.timedelta(seconds=span), now
        rng, pings = self.rng, []
        for i in range(size):
            self._step(span / size)
            acc = rng.uniform(3, 25)
            lat, lon = offset(self.lat, self.lon, rng.gauss(0, acc / 2), rng.gauss(0, acc / 2))
            self.battery = self.battery - 0.001 if self.battery > 15 else 100.0
            self.seq += 1
            t = start + dt.timedelta(seconds=span * (i + 1) / size)
            pings.append({
                "id": f"d{self.n}-{self.seq}", "t": t.isoformat(timespec="milliseconds"),
                "lat": round(lat, 6), "lon": round(lon, 6), "acc": round(acc, 1),
                "alt": round(rng.gauss(45, 5), 1),
                "speed": round(max(0.0, rng.gauss(self.speed, 0.3)), 1),
                "heading": round(self.heading, 1), "battery": round(self.battery),
                "activity": self.activity})
        return orjson.dumps({"pings": pings})


# ---- set-up -----------------------------------------------------------------------------------

@dataclass
class Tenant:
    tokens: dict[str, str]
    phones: list[Phone]
    subjects: int
    seeded: dict
    day: dt.date  # the heatmap's day (yesterday)


def set_up(db: Database, devices: int, seed: int) -> Tenant:
    """The demo tenant (2 days of movement, 20 workers), collection all day, and one more
    subject with a phone and every consent per device thread."""
    from govern import jsontext
    from govern.config import Config
    from govern.db import make_engine, make_sessionmaker, tenant_session
    from govern.demo import PURPOSES, seed_demo
    from govern.domain import consents, policy, subjects

    config = Config.from_env({"DATABASE_URL": db.url, "LOG_LEVEL": "WARNING"})
    engine = make_engine(config.app_database_url, pool_size=1,
                         json_serializer=jsontext.dumps)
    sessions = make_sessionmaker(engine)
    seeded = seed_demo(sessions, days=2, n_subjects=20, progress=False)
    tid = uuid.UUID(seeded["tenant_id"])
    rng = random.Random(seed)
    actor = "cli:bench"
    phones = []
    now = dt.datetime.now(dt.UTC)
    with tenant_session(sessions, tid) as s:
        # The demo collects 06:00-21:00 Berlin time; the bench must store pings at any hour.
        policy.update_policy(s, tid, actor, {"collection_windows": []})
        for n in range(devices):
            subject = subjects.create_subject(s, tid, actor, {
                "external_ref": f"load-{n:03d}", "display_name": f"Load phone {n}",
                "timezone": "Europe/Berlin"})
            _, token = subjects.enrol_device(s, tid, actor, subject.subject_id,
                                             platform="android")
            for spec in PURPOSES:
                consents.record_consent(s, tid, subject.subject_id, purpose_key=spec["key"],
                                        status="granted", at=now - dt.timedelta(days=1),
                                        policy_version="2026-01", source="admin", actor=actor,
                                        evidence={"form": "bench"})
            phones.append(Phone(random.Random(rng.random()), n, token))
    engine.dispose()
    with db.connect(autocommit=True) as conn:
        for day in (now.date(), now.date() + dt.timedelta(days=1)):
            conn.execute("SELECT govern_ensure_ping_partition(%s)", (day,))
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return Tenant(seeded["tokens"], phones, 20 + devices, seeded["pings"],
                  now.date() - dt.timedelta(days=1))


class Server(AppServer):
    """gunicorn (sync workers) serving wsgi:app on a free loopback port."""

    def __init__(self, db: Database, workers: int):
        super().__init__(
            db, lambda port: ["-m", "gunicorn", "--chdir", str(ROOT), "-w", str(workers),
                              "-b", f"127.0.0.1:{port}", "wsgi:app"],
            # the bench's analysts share one tenant: allow each worker a heavy read, so
            # the per-tenant bound (HEAVY_READS_PER_TENANT) never refuses them here
            {"RATE_LIMITS": "off", "LOG_LEVEL": "WARNING",
             "HEAVY_READS_PER_TENANT": str(workers)}, "govern-load-http-",
            log_name="gunicorn.log")

    def problems(self, limit: int = 8) -> list[str]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        keys = ("error", "Error", "CRITICAL", "WORKER TIMEOUT", "Traceback", "warning")
        return [ln[:300] for ln in lines if any(k in ln for k in keys)][:limit]


# ---- CPU and waits ----------------------------------------------------------------------------

def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, utime+stime, cutime+cstime) in clock ticks."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = raw[raw.rfind(")") + 2:].split()
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14])


def tree_ticks(root: int) -> int:
    """CPU ticks of a process, its children's, and its reaped children's (so backends that
    exit in between still count)."""
    me = _stat(root)
    if me is None:
        return 0
    total = me[1] + me[2]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st and st[0] == root:
                total += st[1]
    return total


def run_delays(root: int) -> dict[int, int]:
    """{pid: ns spent runnable but waiting for a CPU} of a process and its children
    (/proc/<pid>/schedstat; only processes alive at both readings are compared)."""
    pids = [root] + [int(e) for e in os.listdir("/proc")
                     if e.isdigit() and (_stat(int(e)) or (0,))[0] == root]
    out = {}
    for pid in pids:
        try:
            out[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return out


def delay_between(before: dict[int, int], after: dict[int, int]) -> float:
    return sum(v - before[pid] for pid, v in after.items() if pid in before) / 1e9


def machine_ticks() -> int:
    """Busy ticks of all cores (/proc/stat: user, nice, system, irq, softirq)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:3]) + sum(values[5:7])


def own_ticks() -> int:
    t = os.times()
    return round((t.user + t.system) * TICK)


class Sampler(threading.Thread):
    """Every second: CPU ticks of PostgreSQL, gunicorn and this process; what the app's
    active backends wait on."""

    def __init__(self, db: Database, postmaster: int, gunicorn: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.db, self.postmaster, self.gunicorn, self.stop_ = db, postmaster, gunicorn, stop
        # (monotonic, postgres, gunicorn, load generator, whole machine) in clock ticks
        self.ticks: list[tuple[float, int, int, int, int]] = []
        self.waits: Counter = Counter()
        self.active: list[int] = []
        self.delays: list[tuple[dict, dict]] = []  # (postgres, gunicorn) run delays

    def delay_snapshot(self) -> None:
        self.delays.append((run_delays(self.postmaster), run_delays(self.gunicorn)))

    def snapshot(self) -> tuple[float, int, int, int, int]:
        now = (time.monotonic(), tree_ticks(self.postmaster), tree_ticks(self.gunicorn),
               own_ticks(), machine_ticks())
        self.ticks.append(now)
        return now

    def run(self) -> None:
        with self.db.connect(autocommit=True) as conn:
            while not self.stop_.wait(1.0):
                self.snapshot()
                rows = conn.execute(
                    "SELECT wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE application_name = 'govern' AND state = 'active' "
                    "AND pid <> pg_backend_pid()").fetchall()
                self.active.append(len(rows))
                for kind, event in rows:
                    self.waits["CPU (no wait)" if kind is None else f"{kind}: {event}"] += 1


def postmaster_pid(db: Database) -> int:
    return int((db.datadir / "postmaster.pid").read_text().split("\n", 1)[0])


# ---- the load ---------------------------------------------------------------------------------

class Client:
    """One keep-alive connection per thread (gunicorn's sync workers close it after each
    answer; http.client then reconnects)."""

    def __init__(self, port: int, token: str, endpoint: Endpoint, t0: float):
        self.port, self.endpoint, self.t0 = port, endpoint, t0
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.retry_after: str | None = None  # the last answer's Retry-After, if any

    def call(self, method: str, path: str, body: bytes | None = None) -> dict | None:
        ep = self.endpoint
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except Exception as exc:  # a client must report, never hang the bench
            ep.samples.append((started - self.t0, time.perf_counter() - started, 0))
            ep.error(f"exception {type(exc).__name__}", repr(exc))
            self.conn.close()
            return None
        ep.samples.append((started - self.t0, time.perf_counter() - started, resp.status))
        self.retry_after = resp.getheader("Retry-After")
        if not 200 <= resp.status < 300:
            try:
                code = orjson.loads(data)["error"]["code"]
            except Exception:
                code = "?"
            ep.error(f"HTTP {resp.status} {code}", f"{resp.status} {data[:250]!r}")
            return None
        return orjson.loads(data)

    def close(self) -> None:
        self.conn.close()


def paced(interval: float, deadline: float, rng: random.Random, work) -> None:
    """Call work() about every `interval` s (±10 %), starting at a random offset; a late call
    is not made up for (a busy server sees fewer requests, as from real clients)."""
    due = time.monotonic() + rng.uniform(0, interval)
    while True:
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, max(0.0, deadline - now)))
        if time.monotonic() >= deadline:
            return
        work()
        due = max(due + interval * rng.uniform(0.9, 1.1), time.monotonic())


def device_thread(port, phone: Phone, batch: int, interval: float, ep: Endpoint, t0: float,
                  deadline: float) -> None:
    client = Client(port, phone.token, ep, t0)

    def work():
        body = phone.batch(batch)
        answer = client.call("POST", "/v1/pings", body)
        with ep.lock:
            ep.posted += batch
            if answer is not None:
                ep.accepted += answer["accepted"]
                ep.dropped.update(answer["dropped"])
                if answer["rejected"]:
                    ep.dropped["rejected"] += len(answer["rejected"])

    try:
        paced(interval, deadline, phone.rng, work)
    finally:
        client.close()


def reader_thread(port, token: str, path: str, interval: float, ep: Endpoint, t0: float,
                  deadline: float, seed: float) -> None:
    client = Client(port, token, ep, t0)

    def work():
        answer = client.call("GET", path)
        if answer is not None:
            ep.returned.append(len(answer["features"]))

    try:
        paced(interval, deadline, random.Random(seed), work)
    finally:
        client.close()


def heatmap_path(day: dt.date, resolution: int = 7) -> str:
    start = dt.datetime.combine(day, dt.time(0), dt.UTC)
    return "/v1/reports/heatmap?" + urlencode({
        "from": start.isoformat().replace("+00:00", "Z"),
        "to": (start + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        "resolution": resolution})


POSITIONS_PATH = "/v1/positions/latest?purpose=dispatch"


def warm_up(port: int, tenant: Tenant, workers: int) -> None:
    """Every worker imported, connected and through each endpoint before the clock starts."""
    eps = {k: Endpoint(k, k, "") for k in (PINGS, HEATMAP, POSITIONS)}
    t0 = time.perf_counter()
    jobs = []
    for i in range(2 * workers):
        phone = tenant.phones[i % len(tenant.phones)]
        jobs.append(lambda p=phone: Client(port, p.token, eps[PINGS], t0).call(
            "POST", "/v1/pings", p.batch(10)))
        jobs.append(lambda: Client(port, tenant.tokens["analyst"], eps[HEATMAP], t0).call(
            "GET", heatmap_path(tenant.day)))
        jobs.append(lambda: Client(port, tenant.tokens["dispatcher"], eps[POSITIONS], t0).call(
            "GET", POSITIONS_PATH))
    threads = [threading.Thread(target=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REQUEST_TIMEOUT + 5)
    failed = {k: ep.error_examples for k, ep in eps.items() if ep.errors}
    if failed:
        raise RuntimeError(f"warm-up failed: {failed}")


@dataclass
class Run:
    endpoints: dict[str, Endpoint]
    seconds: float
    cpu: dict[str, float]  # cores, averaged over the run
    other_cpu: float
    sampler: Sampler
    t0: float  # monotonic start of the load
    server_problems: list[str]
    db_problems: list[str]


def run_load(db: Database, tenant: Tenant, server: Server, args) -> Run:
    endpoints = {
        PINGS: Endpoint(PINGS, f"POST /v1/pings ({args.batch} pings)", "tab:blue"),
        HEATMAP: Endpoint(HEATMAP, "GET /v1/reports/heatmap (1 day, res 7)", "tab:orange"),
        POSITIONS: Endpoint(POSITIONS, "GET /v1/positions/latest (dispatch)", "tab:green"),
    }
    stop = threading.Event()
    sampler = Sampler(db, postmaster_pid(db), server.proc.pid, stop)
    meter = CpuMeter(db.datadir)
    other = wait_for_quiet(meter, max_wait=args.quiet_wait)
    print(f"other load before the run: {other:.2f} cores", file=sys.stderr)
    t0 = time.perf_counter()
    start = time.monotonic()
    deadline = start + args.seconds
    threads = []
    for phone in tenant.phones:
        threads.append(threading.Thread(target=device_thread, daemon=True, args=(
            server.port, phone, args.batch, 1.0, endpoints[PINGS], t0, deadline)))
    path = heatmap_path(tenant.day)
    for i in range(args.analysts):
        threads.append(threading.Thread(target=reader_thread, daemon=True, args=(
            server.port, tenant.tokens["analyst"], path, 2.0, endpoints[HEATMAP], t0,
            deadline, 1000 + i)))
    for i in range(args.dispatchers):
        threads.append(threading.Thread(target=reader_thread, daemon=True, args=(
            server.port, tenant.tokens["dispatcher"], POSITIONS_PATH, 1.0,
            endpoints[POSITIONS], t0, deadline, 2000 + i)))
    meter.start()
    first = sampler.snapshot()
    sampler.delay_snapshot()
    sampler.start()
    for t in threads:
        t.start()
    while time.monotonic() < deadline:  # the window ends when requests stop being sent
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    last = sampler.snapshot()
    sampler.delay_snapshot()
    seconds = last[0] - first[0]
    other = meter.stop()
    for t in threads:  # in-flight requests end within their timeout
        t.join(REQUEST_TIMEOUT + 5)
    stop.set()
    sampler.join(5)
    cores = os.cpu_count() or 1
    cpu = {name: (last[k] - first[k]) / TICK / seconds
           for k, name in ((1, "PostgreSQL"), (2, "gunicorn"), (3, "load generator"))}
    cpu["cores"] = cores
    (pg0, web0), (pg1, web1) = sampler.delays
    cpu["PostgreSQL waiting"] = delay_between(pg0, pg1) / seconds
    cpu["gunicorn waiting"] = delay_between(web0, web1) / seconds
    log = db.base / "postgres.log"
    db_problems = []
    if log.exists():
        db_problems = [ln[:300] for ln in log.read_text(errors="replace").splitlines()
                       if "ERROR" in ln or "FATAL" in ln or "PANIC" in ln][:8]
    return Run(endpoints, seconds, cpu, other, sampler, start, server.problems(), db_problems)


# ---- statistics, plot, report -----------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.0f}"


def plot(run: Run, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bucket = 5.0 if args.seconds >= 60 else 2.0
    n = max(1, math.ceil(args.seconds / bucket))
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    order = [PINGS, HEATMAP, POSITIONS]
    for ax, key in zip([axes[0][0], axes[0][1], axes[1][0]], order, strict=True):
        ep = run.endpoints[key]
        xs, lines = [], {50: [], 95: [], 99: []}
        for b in range(n):
            lat = [s * 1000 for start, s, _ in ep.samples if b * bucket <= start < (b + 1) * bucket]
            if not lat:
                continue
            xs.append((b + 0.5) * bucket)
            for q in lines:
                lines[q].append(percentile(lat, q))
        for q, style in ((99, ":"), (95, "--"), (50, "-")):
            ax.plot(xs, lines[q], style, color=ep.colour, lw=2 if q == 50 else 1.5,
                    label=f"p{q}")
        ax.set_title(ep.label, fontsize=11)
        ax.set_ylabel("latency, ms")
        ax.set_xlabel(f"seconds into the run ({bucket:g} s buckets)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(0, args.seconds)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=9)
    # throughput and database CPU
    ax = axes[1][1]
    xs = [(b + 0.5) * bucket for b in range(n)]
    for key in order:
        ep = run.endpoints[key]
        counts = [0] * n
        for start, _, status in ep.samples:
            b = int(start // bucket)
            if 0 <= b < n and 200 <= status < 300:
                counts[b] += 1
        ax.plot(xs, [c / bucket for c in counts], color=ep.colour, lw=1.8,
                label=f"{key} req/s")
    ax.set_ylabel("successful requests/s")
    ax.set_xlabel(f"seconds into the run ({bucket:g} s buckets)")
    ax.set_ylim(0, max(args.devices * 1.15, ax.get_ylim()[1]))
    ax.set_xlim(0, args.seconds)
    ax.grid(alpha=0.3)
    ax.axhline(args.devices, color="tab:blue", ls=":", lw=1, label="pings req/s offered")
    cpu_ax = ax.twinx()
    ticks = sorted(run.sampler.ticks)
    cores = run.cpu["cores"]
    busy = {name: [0.0] * n for name in ("other processes", "PostgreSQL", "gunicorn")}
    span = [0.0] * n
    for a, b in zip(ticks, ticks[1:], strict=False):
        k = int(((a[0] + b[0]) / 2 - run.t0) // bucket)
        if not 0 <= k < n or b[0] - a[0] < 0.2:
            continue
        d = [(b[i] - a[i]) / TICK for i in range(1, 5)]
        span[k] += b[0] - a[0]
        busy["PostgreSQL"][k] += d[0]
        busy["gunicorn"][k] += d[1]
        busy["other processes"][k] += max(0.0, d[3] - d[0] - d[1] - d[2])
    cx = [x for x, sp in zip(xs, span, strict=True) if sp]
    for name, colour, style in (("other processes", "red", "-."), ("PostgreSQL", "black", "-"),
                                ("gunicorn", "tab:purple", "-")):
        cy = [100 * v / sp / cores for v, sp in zip(busy[name], span, strict=True) if sp]
        cpu_ax.plot(cx, cy, style, color=colour, lw=1.2, alpha=0.8, label=f"{name} CPU %")
    cpu_ax.set_ylabel(f"CPU, % of {cores} cores")
    cpu_ax.set_ylim(0, 100)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = cpu_ax.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=9,
              ncol=3, frameon=False)
    ax.set_title("throughput and CPU", fontsize=11)
    fig.suptitle(f"govern under mixed load: {args.devices} devices, {args.analysts} analysts, "
                 f"{args.dispatchers} dispatchers; gunicorn {args.workers} workers; "
                 f"{cores} cores shared", fontsize=12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def findings(run: Run, args) -> list[str]:
    """What the numbers say, computed, so that a rerun cannot leave stale prose behind."""
    pe = run.endpoints[PINGS]
    offered = args.devices * args.batch
    rate = pe.accepted / run.seconds
    requests = sum(len(ep.samples) for ep in run.endpoints.values()) / run.seconds
    web, pg, gen = (run.cpu[k] for k in ("gunicorn", "PostgreSQL", "load generator"))
    cores = run.cpu["cores"]
    lat = [s for _, s, _ in pe.samples]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    kept = rate >= 0.95 * offered
    samples = sum(run.sampler.waits.values()) or 1
    locks = sum(v for k, v in run.sampler.waits.items() if k.startswith("Lock")) / samples
    wal = sum(v for k, v in run.sampler.waits.items() if "WAL" in k) / samples
    out = [
        f"- {'Kept up' if kept else 'Fell behind'}: {rate:,.0f} of {offered:,} pings/s "
        f"offered were accepted ({100 * rate / offered:.0f} %)"
        + ("." if kept else "; the devices' threads waited on slow answers, so the server "
           "saw fewer batches."),
        f"- Where the CPU went: gunicorn (Python) {web:.2f} cores, PostgreSQL {pg:.2f}; "
        f"per request on average {1000 * web / requests:.1f} ms in the app and "
        f"{1000 * pg / requests:.1f} ms in the database. The app tier, not the database, "
        "is what to scale first." if web > pg else
        f"- Where the CPU went: PostgreSQL {pg:.2f} cores, gunicorn {web:.2f}: the "
        "database is the heavier tier.",
        f"- Headroom: the server, its database and the load generator used "
        f"{web + pg + gen:.2f} of {cores} cores. At this cost per request, the {cores} cores "
        f"alone would serve roughly {cores / (web + pg) * rate:,.0f} pings/s with the same "
        "mix (an estimate, not measured).",
        f"- Tail: p99 of a batch is {p99 / p50:.1f}x its p50. On average "
        f"{run.cpu['gunicorn waiting']:.2f} gunicorn workers were ready to run but had no "
        "free core: bursts of requests that arrive together queue for the CPU (and for the "
        f"{args.workers} sync workers); lock waits were {100 * locks:.0f} % of the active "
        f"backends' samples, commit flushes (WAL) {100 * wal:.0f} %.",
    ]
    return out


def report(run: Run, tenant: Tenant, args, info: dict, plot_ref: str) -> str:
    rows = []
    total_errors = 0
    for ep in run.endpoints.values():
        lat = [s for _, s, _ in ep.samples]
        errors = sum(ep.errors.values())
        total_errors += errors
        rows.append([ep.label, f"{len(lat):,}", f"{len(lat) / run.seconds:,.1f}",
                     ms(percentile(lat, 50)), ms(percentile(lat, 95)), ms(percentile(lat, 99)),
                     ms(max(lat) if lat else float("nan")), f"**{errors}**"])
    pe = run.endpoints[PINGS]
    dropped = ", ".join(f"{k} {v:,}" for k, v in pe.dropped.most_common()) or "none"
    cores = run.cpu["cores"]

    def cpu(name):
        c = run.cpu[name]
        waiting = run.cpu.get(f"{name} waiting")
        return [name, f"{c:.2f}", f"{100 * c / cores:.0f} %",
                "-" if waiting is None else f"{waiting:.2f}"]

    cpu_rows = [cpu("PostgreSQL"), cpu("gunicorn"), cpu("load generator"),
                ["other processes", f"{run.other_cpu:.2f}",
                 f"{100 * run.other_cpu / cores:.0f} %", "-"]]
    samples = sum(run.sampler.waits.values()) or 1
    waits = ", ".join(f"{k} {100 * v / samples:.0f} %"
                      for k, v in run.sampler.waits.most_common(6))
    active = (sum(run.sampler.active) / len(run.sampler.active)) if run.sampler.active else 0
    breakdown = "; ".join(f"{ep.key}: " + ", ".join(f"{k} x{v}" for k, v in ep.errors.items())
                          for ep in run.endpoints.values() if ep.errors) or "none"
    heat = run.endpoints[HEATMAP].returned
    pos = run.endpoints[POSITIONS].returned
    lines = [
        f"Run {info['when']} on {info['machine']}; PostgreSQL {info['pg']}. "
        f"`python -m bench.load --write"
        f"{f' --seconds {args.seconds:g}' if args.seconds != 180 else ''}`.",
        "",
        f"{args.devices} devices, {args.analysts} analysts and {args.dispatchers} dispatchers "
        f"for {run.seconds:.0f} s against gunicorn ({args.workers} sync workers) on 127.0.0.1; "
        f"load generator, gunicorn and PostgreSQL share the same {cores} cores.",
        "",
        table(["endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
               "errors"], rows),
        "",
        f"- Errors: **{total_errors}** (target 0); by kind: {breakdown}.",
        f"- Pings: {pe.posted:,} posted, **{pe.accepted / run.seconds:,.0f} accepted/s** "
        f"({pe.accepted:,} in all; {args.devices * args.batch:,}/s offered if every device "
        f"kept its 1 s pace); dropped by governance: {dropped}.",
        f"- Answers: heatmaps of {min(heat, default=0)}-{max(heat, default=0)} released "
        f"cells; positions of {min(pos, default=0)}-{max(pos, default=0)} subjects.",
        "",
        table(["CPU, averaged over the run", "cores used", f"% of {cores}",
               "runnable, waiting for a core"], cpu_rows),
        "",
        *([f"**Disturbed:** other processes on the machine used {run.other_cpu:.2f} cores "
           "on average during the run (see the red line in the plot); rerun on a quiet "
           "machine.", ""] if run.other_cpu > 0.1 else []),
        f"Database: app backends active on average {active:.1f} (1 s samples); what they "
        f"were doing: {waits}.",
        "",
        *findings(run, args),
        "",
        f"[![Latency and throughput over time]({plot_ref})]({plot_ref})",
        "",
        "What was measured:",
        "",
        "- Set-up: a throwaway cluster (as every bench), the demo tenant "
        "(`govern.demo.seed_demo`, 20 workers, 2 days of movement: "
        f"{tenant.seeded['accepted']:,} pings, rolled up) and {args.devices} more subjects, "
        "each with one phone and consent to every purpose. The demo's collection window "
        "(06:00-21:00 Berlin) is lifted so that pings are stored at whatever hour the bench "
        "runs; the other rules (home privacy zones of the demo workers, 100 m accuracy floor, "
        "k = 3) stay.",
        f"- Server: `python -m gunicorn -w {args.workers} -b 127.0.0.1:<port> wsgi:app` "
        "(sync workers: a new loopback connection per request; one database connection per "
        "worker at a time), `LOG_LEVEL=WARNING`, and `RATE_LIMITS=off`, as "
        "[operations](operations.md) advises for load tests from one address: the load "
        "generator is one address with few tokens (the analysts share one, the dispatchers "
        "another) standing in for many clients and users, so limits counted per token "
        "(1,200 requests a minute) would throttle it as no real fleet is throttled (here the "
        "shared tokens stay under the limit, but more reader threads would not), and the "
        "limiter's in-memory counters are per worker anyway.",
        f"- Devices: one thread per phone, posting a native batch (`POST /v1/pings`) of "
        f"{args.batch} fixes about every second (±10 %), each batch the fixes since the "
        "previous one, evenly spaced up to now, of a phone moving around Berlin on foot, by "
        "bike or by car (GPS noise, accuracy 3-25 m, every optional field set). "
        f"{args.devices * args.batch:,} pings/s offered is the volume of about "
        f"{args.devices * args.batch * 30:,} phones sending one fix every 30 s.",
        "- Analysts: `GET /v1/reports/heatmap` for yesterday, 00:00Z to 00:00Z (without "
        "differential privacy only whole UTC days, weeks or months are released), resolution "
        "7, about every 2 s per thread; one token.",
        "- Dispatchers: `GET /v1/positions/latest?purpose=dispatch`, about every second per "
        "thread; one token. Both reads are audited (one hash-chained audit entry each).",
        "- Pacing: a thread whose request came back late sends the next at once rather than "
        "catching up, so an overloaded server sees fewer requests (as from real clients) and "
        "the shortfall shows as req/s under the offered rate. Latency is from sending the "
        "request to reading the whole answer, queueing in gunicorn's backlog included. Each "
        "thread has its own `http.client` connection, re-opened when the server closes it.",
        "- Errors: any non-2xx answer or exception (timeout, reset), per endpoint.",
        "- CPU: ticks (utime+stime, /proc) of the postmaster, its children and its reaped "
        "children; of the gunicorn master and workers; of the load generator; from start to "
        "end of the load, in cores (1.00 = one core busy all the time). \"Other processes\" "
        "is what the rest of the machine used meanwhile (above 0.1 disturbs the numbers). "
        "\"Runnable, waiting for a core\": run-queue delay (/proc/<pid>/schedstat) of the "
        "gunicorn workers and of the database's processes, in processes on average: ready to "
        "run, but no core free.",
    ]
    return "\n".join(lines)


def bench(args) -> tuple[str, Run]:
    with throwaway_database() as db:
        t = time.monotonic()
        tenant = set_up(db, args.devices, args.seed)
        print(f"set up in {time.monotonic() - t:.0f} s: demo {tenant.seeded}, "
              f"{args.devices} phones", file=sys.stderr)
        server = Server(db, args.workers)
        try:
            warm_up(server.port, tenant, args.workers)
            print(f"load: {args.seconds:g} s on 127.0.0.1:{server.port}", file=sys.stderr)
            run = run_load(db, tenant, server, args)
        finally:
            server.stop()
        with db.connect() as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
    for line in run.server_problems + run.db_problems:
        print(line, file=sys.stderr)
    for ep in run.endpoints.values():
        for example in ep.error_examples:
            print(f"{ep.key}: {example}", file=sys.stderr)
    info = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "pg": pg}
    path = PLOT if args.write and not args.quick else Path(tempfile.gettempdir(), "govern-load.png")
    plot(run, args, path)
    print(f"plot: {path}", file=sys.stderr)
    return report(run, tenant, args, info, "images/load.png"), run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the load")
    parser.add_argument("--devices", type=int, default=40, help="device threads (one phone each)")
    parser.add_argument("--batch", type=int, default=100, help="pings per batch")
    parser.add_argument("--analysts", type=int, default=4)
    parser.add_argument("--dispatchers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="wait at most this long for a quiet machine before the load")
    parser.add_argument("--quick", action="store_true", help="a 20 s smoke run")
    parser.add_argument("--write", action="store_true",
                        help="update the Load section of docs/benchmarks.md and its plot")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.quiet_wait = 20.0, 0.0
    args.seconds = min(max(args.seconds, 5.0), MAX_SECONDS)
    if args.devices + args.analysts + args.dispatchers > MAX_THREADS or args.devices < 1:
        parser.error(f"between 1 and {MAX_THREADS} threads in all")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be 1-1000 (MAX_BATCH_PINGS)")
    text, run = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Load", text)
    errors = sum(sum(ep.errors.values()) for ep in run.endpoints.values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
