"""One location a request, as OwnTracks, Traccar Client and Transistor post by default:
how many requests a second govern takes, beside what the database can durably commit.

In one run, on a throwaway cluster (bench.common, fsync on), each for `--seconds`:

- **the limit**: pgbench, `--connections` clients, one durable single-row INSERT a
  transaction into a table of the pings' shape (uuid keys, time, PostGIS point, mask,
  precision, client key);
- the ceilings: bench/_ceiling_app.py (bare Flask; Flask + one durable INSERT a request)
  under each worker model below (sync, gthread);
- govern (`govern serve`: gunicorn, access log on; RATE_LIMITS=off) over 200 devices of one
  tenant, each request a distinct location and time, driven by `wrk` (Debian's, with a Lua
  script this bench writes) at `--connections` connections, under each of `--models`:
  `sync` (govern serve's default workers), `gthread` (WEB_THREADS=`--threads`) and `group`
  (the same gthread workers with GROUP_COMMIT=on, govern.domain.group):
  1. OwnTracks HTTP mode (`POST /v1/ingest/owntracks`, Basic auth, one location);
  2. the native API with a 1-ping batch (`POST /v1/pings`, Bearer);
  3. Traccar Client's OsmAnd query form (`POST /v1/ingest/osmand/<tenant>?id=…&lat=…`;
     the general path, never grouped).

Reported: requests/s, p50/p99 latency (wrk's), answered 2xx, pings stored (counted in the
database after each scenario) against 2xx answers, and the ratio to the limit.

    .venv/bin/python -m bench.single [--seconds N] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    AppServer,
    CpuMeter,
    machine,
    table,
    throwaway_database,
    wait_for_quiet,
    write_section,
)
from govern.config import libpq_url

DEVICES = 200
WRK_THREADS = 2
MAX_SECONDS = 600


@dataclass
class World:
    tenant_id: uuid.UUID
    tokens: list[str]
    identifiers: list[str]


def set_up(db, devices: int = DEVICES) -> World:
    """A tenant with `devices` phones (a subject each, consent to dispatch granted), their
    tokens and identifiers, and the day partitions around today."""
    from govern.config import Config
    from govern.db import make_engine, make_sessionmaker, tenant_session
    from govern.domain import consents, policy, purposes, subjects
    from govern.domain.tenants import create_tenant

    config = Config.from_env({"DATABASE_URL": db.url, "LOG_LEVEL": "WARNING"})
    engine = make_engine(config.app_database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC)
    with tenant_session(sessions, None) as s:
        tenant = create_tenant(s, "Single", owner_email="owner@single.example")
    tid, actor = tenant.tenant_id, "cli:bench"
    tokens, identifiers = [], []
    with tenant_session(sessions, tid) as s:
        policy.update_policy(s, tid, actor, {"collection_windows": []})
        purposes.create_purpose(s, tid, actor, {
            "key": "dispatch", "title": "Dispatch", "precision_m": 10, "retention_days": 30,
            "individual_access": True, "requires_consent": True,
            "reader_roles": ["dispatcher"]})
        for n in range(devices):
            subject = subjects.create_subject(s, tid, actor, {"external_ref": f"phone-{n:04d}"})
            device, token = subjects.enrol_device(s, tid, actor, subject.subject_id,
                                                  platform="android")
            consents.record_consent(s, tid, subject.subject_id, purpose_key="dispatch",
                                    status="granted", at=now - dt.timedelta(days=2),
                                    policy_version="v1", source="admin", actor=actor,
                                    evidence={"form": "bench"}, now=now)
            tokens.append(token)
            identifiers.append(device.identifier)
    engine.dispose()
    with db.connect(autocommit=True) as conn:
        for d in (-1, 0, 1):
            conn.execute("SELECT govern_ensure_ping_partition(%s)",
                         (now.date() + dt.timedelta(days=d),))
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return World(tid, tokens, identifiers)


# ---- the limit: pgbench -----------------------------------------------------------------------

LIMIT_TABLE = """
CREATE TABLE bench_single (
  tenant_id uuid NOT NULL, subject_id uuid NOT NULL, device_id uuid NOT NULL,
  t timestamptz NOT NULL, geom geometry(Point, 4326) NOT NULL, purpose_mask bigint NOT NULL,
  precision_m int NOT NULL, client_key text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, subject_id, t, device_id, client_key))
"""
LIMIT_SCRIPT = """\\set n random(1, 1000000000)
INSERT INTO bench_single VALUES ('00000000-0000-0000-0000-000000000001', gen_random_uuid(),
  gen_random_uuid(), now(), ST_SetSRID(ST_MakePoint(13.3 + :n % 1000 / 5000.0,
  52.4 + :n % 997 / 5000.0), 4326), 1, 10, md5(:n::text));
"""


def pgbench(db, connections: int, seconds: float) -> dict:
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_single")
        conn.execute(LIMIT_TABLE)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(LIMIT_SCRIPT)
    try:
        out = subprocess.run(
            ["pgbench", "-n", "-c", str(connections), "-j", str(WRK_THREADS), "-T",
             str(int(seconds)), "-f", f.name, "-r", libpq_url(db.url)],
            capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    finally:
        Path(f.name).unlink()
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)[1])
    latency = float(re.search(r"latency average = ([\d.]+) ms", out)[1])
    return {"rps": tps, "p50": latency, "p99": None, "ok": None, "stored": None,
            "note": "latency: pgbench's average"}


# ---- govern under wrk -------------------------------------------------------------------------

# The Lua script: thread k (of WRK_THREADS) sends for devices k, k+threads, ...; a device's
# n-th request is stamped T0 + n seconds (distinct per device, so none is a duplicate) at a
# distinct position. 2xx answers are counted per thread and summed in done().
LUA = """
local kind, t0, nthreads, per = "{kind}", {t0}, {threads}, {per}
local creds = {{ {creds} }}
local prefix = "{prefix}"
counter, ok = 0, 0  -- globals: done() reads each thread's ok
local thread_list = {{}}
function setup(thread)
  thread:set("id", #thread_list)
  table.insert(thread_list, thread)
end
local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end
function request()
  local n = counter
  counter = counter + 1
  local dev = id + nthreads * (n % per) + 1
  local t = t0 + math.floor(n / per)
  local lat = 52.40 + ((n * 7 + id * 131) % 20000) / 100000
  local lon = 13.20 + ((n * 13 + dev * 17) % 30000) / 100000
  if kind == "owntracks" then
    return wrk.format("POST", "/v1/ingest/owntracks",
      {{["Authorization"] = creds[dev], ["Content-Type"] = "application/json"}},
      string.format('{{"_type":"location","lat":%.6f,"lon":%.6f,"tst":%d,"acc":8,' ..
                    '"batt":80,"tid":"ph"}}', lat, lon, t))
  elseif kind == "native" then
    return wrk.format("POST", "/v1/pings",
      {{["Authorization"] = creds[dev], ["Content-Type"] = "application/json"}},
      string.format('{{"pings":[{{"id":"%d-%d","t":"%s","lat":%.6f,"lon":%.6f,"acc":8}}]}}',
                    id, n, iso(t), lat, lon))
  elseif kind == "batch" then
    -- {batch} pings a request, a second apart, each with an id of its own
    local items = {{}}
    for j = 0, {batch} - 1 do
      items[#items + 1] = string.format(
        '{{"id":"%d-%d-%d","t":"%s","lat":%.6f,"lon":%.6f,"acc":8}}', id, n, j,
        iso(t0 + math.floor(n / per) * {batch} + j), lat + j / 100000, lon)
    end
    return wrk.format("POST", "/v1/pings",
      {{["Authorization"] = creds[dev], ["Content-Type"] = "application/json"}},
      '{{"pings":[' .. table.concat(items, ",") .. ']}}')
  elseif kind == "bare" or kind == "insert" then
    return wrk.format("POST", "/" .. kind, {{["Content-Type"] = "application/json"}},
      string.format('{{"_type":"location","lat":%.6f,"lon":%.6f,"tst":%d,"acc":8,' ..
                    '"batt":80,"tid":"ph"}}', lat, lon, t))
  else
    return wrk.format("POST", string.format(
      "%s?id=%s&lat=%.6f&lon=%.6f&timestamp=%d&accuracy=8&batt=80", prefix, creds[dev], lat,
      lon, t), {{}}, "")
  end
end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(thread_list) do total = total + thread:get("ok") end
  io.write(string.format("OK2XX %d\\n", total))
  io.write(string.format("P50US %d\\nP99US %d\\n", latency:percentile(50),
                         latency:percentile(99)))
end
"""


def wrk(port: int, world: World, kind: str, t0: int, connections: int, seconds: float,
        batch: int = 1) -> dict:
    """`kind` "batch": native requests of `batch` pings each (the device's n-th request
    stamped from T0 + n * batch seconds)."""
    if kind == "osmand":
        creds = world.identifiers
    elif kind == "owntracks":
        creds = ["Basic " + base64.b64encode(f"phone:{t}".encode()).decode()
                 for t in world.tokens]
    else:
        creds = [f"Bearer {t}" for t in world.tokens]
    script = LUA.format(kind=kind, t0=t0, threads=WRK_THREADS, per=DEVICES // WRK_THREADS,
                        creds=", ".join(f'"{c}"' for c in creds),
                        prefix=f"/v1/ingest/osmand/{world.tenant_id}", batch=batch)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{int(seconds)}s",
             "--timeout", "10s", "-s", f.name, f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        Path(f.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "ok": int(re.search(r"OK2XX (\d+)", out)[1]),
            "p50": int(re.search(r"P50US (\d+)", out)[1]) / 1000,
            "p99": int(re.search(r"P99US (\d+)", out)[1]) / 1000,
            "non2xx": int(non2xx[1]) if non2xx else 0,
            "socket_errors": errors[1] if errors else ""}


def stored(db, tenant_id: uuid.UUID) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT count(*) FROM pings WHERE tenant_id = %s",
                            (tenant_id,)).fetchone()[0]


MODELS = ("sync", "gthread", "group")


def _worker_env(args, model: str) -> dict:
    """The environment `govern serve` reads for a worker model (see MODELS)."""
    env = {}
    if args.workers:
        env["WEB_WORKERS"] = str(args.workers)
    if model != "sync":
        env["WEB_THREADS"] = str(args.threads)
        env["DB_POOL_SIZE"] = str(max(5, args.threads))  # a connection a thread, and spares
    env["GROUP_COMMIT"] = "on" if model == "group" else "off"
    return env


class Server(AppServer):
    """`govern serve` as an operator starts it, with the worker model's environment, on a
    free port."""

    ready_path = "/readyz"

    def __init__(self, db, args, model: str):
        super().__init__(
            db, lambda port: ["-c", "from govern.cli import main; main()", "serve", "--bind",
                              f"127.0.0.1:{port}"],
            {"RATE_LIMITS": "off", "LOG_LEVEL": "WARNING", **_worker_env(args, model)},
            "govern-single-http-")
        self.wait_ready()

    def wait_ready(self, timeout: float = 180.0) -> None:
        """The master listens before its workers have imported the app (15 s at load 11):
        wait until the app answers 200 several times in a row."""
        deadline, streak = time.monotonic() + timeout, 0
        while streak < 2 * (os.cpu_count() or 1):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not become ready")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                method = "GET" if self.ready_path == "/readyz" else "POST"
                conn.request(method, self.ready_path, body=b"{}" if method == "POST" else None)
                streak = streak + 1 if conn.getresponse().status == 200 else 0
                conn.close()
            except OSError:
                streak = 0
                time.sleep(0.5)


class CeilingServer(Server):
    """bench/_ceiling_app.py under gunicorn with the worker arguments `govern serve` would
    use (govern.cli.worker_args), no access log: the most this stack can answer."""

    ready_path = "/bare"

    def __init__(self, db, args, model: str):
        from govern.cli import worker_args

        env = _worker_env(args, model)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            workers = worker_args()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        AppServer.__init__(
            self, db, lambda port: ["-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *workers,
                                    "bench._ceiling_app:app"],
            {}, "govern-single-ceiling-")
        self.wait_ready()


GOVERN_SCENARIOS = (
    ("owntracks", "govern: OwnTracks, one location a request"),
    ("native", "govern: native POST /v1/pings, 1-ping batch"),
    ("osmand", "govern: Traccar Client (OsmAnd query), one location"))
CEILING_SCENARIOS = (
    ("bare", "ceiling: bare Flask, small JSON answer"),
    ("insert", "ceiling: Flask + one durable INSERT (psycopg 3)"))


def _workers(master: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text()
                .split()]
    except OSError:
        return []


def _run(server, db, world, kind, t0, args, meter, counted: bool, model: str = "") -> dict:
    wrk(server.port, world, kind, t0, args.connections, 5)  # warm
    before = stored(db, world.tenant_id) if counted else 0
    wait_for_quiet(meter, max_wait=args.quiet_wait)
    meter.start()
    spy = None
    if args.profile and counted and shutil.which("py-spy"):
        # one worker, sampled while wrk runs: where a request's time goes (collapsed stacks)
        worker = _workers(server.proc.pid)[0]
        spy = subprocess.Popen(["py-spy", "record", "-p", str(worker), "-d",
                                str(int(args.seconds)), "-r", "200", "-f", "raw", "-o",
                                f"{args.profile}-{model}-{kind}.txt"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # a device's n-th request is stamped T0 + n s: the measured run starts 1,000 s after the
    # warm-up's T0, beyond any warm-up's last stamp (5 s, a few hundred requests a device at
    # the most), so none of its pings repeats one of the warm-up's (a duplicate is answered
    # 200 and not stored again)
    got = wrk(server.port, world, kind, t0 + 1000, args.connections, args.seconds)
    if spy is not None:
        spy.wait(60)
    got["stored"] = stored(db, world.tenant_id) - before if counted else None
    return got


def _label(model: str, label: str) -> str:
    """A row's label with its worker model, e.g. 'govern, group: OwnTracks, ...'."""
    what, rest = label.split(": ", 1)
    return f"{what}, {model}: {rest}"


def bench(args) -> str:
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        raise SystemExit("bench.single needs wrk and pgbench (Debian: wrk, postgresql-client)")
    results = []
    chosen = set(args.only.split(",")) if args.only else None
    models = [m for m in args.models.split(",") if m]
    problems = []
    by: dict[str, dict] = {}
    with throwaway_database() as db:
        world = set_up(db)
        meter = CpuMeter(db.datadir)
        other = wait_for_quiet(meter, max_wait=args.quiet_wait)
        meter.start()
        limit = pgbench(db, args.connections, args.seconds)
        results.append(("PostgreSQL: one durable INSERT a transaction (pgbench)", limit,
                        meter.stop()))
        scenarios = [(k, label) for k, label in GOVERN_SCENARIOS if not chosen or k in chosen]
        # every govern scenario its own past hour (a ping stamped in the future is dropped)
        start = int(time.time()) - 3600 * (len(models) * len(scenarios) + 1)
        ceiling = [(k, label) for k, label in CEILING_SCENARIOS if not chosen or k in chosen]
        # the ceilings under each worker model (group commit is govern's, not the stack's)
        for model in dict.fromkeys("sync" if m == "sync" else "gthread" for m in models):
            if not ceiling:
                break
            server = CeilingServer(db, args, model)
            try:
                for kind, label in ceiling:
                    got = _run(server, db, world, kind, start, args, meter, counted=False)
                    results.append((_label(model, label), got, meter.stop()))
                    by[f"ceiling:{kind}:{model}"] = got
                    print(f"{model} {label}: {got}", file=sys.stderr)
            finally:
                server.stop()
        hour = 0
        for model in models if scenarios else ():
            server = Server(db, args, model)
            try:
                for kind, label in scenarios:
                    # every scenario its own hour of the devices' times: none is a duplicate
                    got = _run(server, db, world, kind, start + 3600 * hour, args, meter,
                               counted=True, model=model)
                    hour += 1
                    results.append((_label(model, label), got, meter.stop()))
                    by[f"govern:{kind}:{model}"] = got
                    if got["stored"] < got["ok"]:
                        problems.append(f"{model} {kind}: {got['ok']} answered 2xx, only "
                                        f"{got['stored']} stored")
                    print(f"{model} {label}: {got}", file=sys.stderr)
            finally:
                problems += [f"{model}: {ln}" for ln in server.log_path.read_text(
                    errors="replace").splitlines() if "Traceback" in ln or "ERROR" in ln][:5]
                server.stop()
    for line in problems:
        print(line, file=sys.stderr)
    rows = []
    for label, r, load in results:
        rows.append([label, f"{r['rps']:,.0f}", f"{r['p50']:.1f}",
                     "-" if r["p99"] is None else f"{r['p99']:.1f}",
                     "-" if r["ok"] is None else f"{r['ok']:,}",
                     "-" if r["stored"] is None else f"{r['stored']:,}",
                     "-" if r.get("non2xx") is None else f"{r['non2xx']:,}",
                     f"{r['rps'] / limit['rps']:.3f}", f"{load:.2f}"])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    verdict = _verdict(by, models)
    workers = args.workers or f"govern serve's default ({2 * (os.cpu_count() or 1)})"
    return "\n".join([
        f"`make bench` (bench/single.py), {when}, {machine()}, other load before: "
        f"{other:.2f} cores; {args.connections} connections, {args.seconds:g} s each, "
        f"{DEVICES} devices, each request a distinct location; fsync on. Workers: "
        f"{workers}; sync: one thread each; gthread and group: {args.threads} threads each "
        f"(DB_POOL_SIZE {max(5, args.threads)}); group: GROUP_COMMIT=on.",
        "",
        table(["what", "requests/s", "p50 ms", "p99 ms", "answered 2xx", "pings stored",
               "non-2xx", "vs limit", "other load"], rows, "lrrrrrrrr"),
        "",
        "\"Pings stored\" counts the tenant's pings in the database after the scenario; it "
        "can exceed the 2xx answers by the requests in flight when wrk stopped (committed, "
        "answer not read), never fall short of them. pgbench's latency is its average, not "
        "p50. \"Other load\" is the most CPU the rest of the machine used during the "
        "scenario (above 0.1 disturbs it).",
        *(["", verdict] if verdict else []),
        *(["", "Problems seen: " + "; ".join(problems) + "."] if problems else []),
    ])


TARGET_RPS = 2000


def _verdict(by: dict, models: list[str]) -> str:
    """How far from the issue's 2,000 requests/s, and what bounds it (the ceiling rows)."""
    runs = [(m, by[f"govern:owntracks:{m}"]) for m in models if f"govern:owntracks:{m}" in by]
    if not runs:
        return ""
    model, own = max(runs, key=lambda mr: mr[1]["rps"])
    parts = [f"Target: {TARGET_RPS:,} single-location requests/s at p99 <= 100 ms. govern's "
             f"OwnTracks path took at best {own['rps']:,.0f} ({model}; "
             f"{own['rps'] / TARGET_RPS:.2f} of it, p99 {own['p99']:.0f} ms)"
             + "".join(f", {m} {r['rps']:,.0f} (p99 {r['p99']:.0f} ms)"
                       for m, r in runs if m != model) + "."]
    stack = "sync" if model == "sync" else "gthread"
    bare, ins = by.get(f"ceiling:bare:{stack}"), by.get(f"ceiling:insert:{stack}")
    if bare is not None:
        parts.append(f"Under the same {stack} workers a bare Flask route took "
                     f"{bare['rps']:,.0f}"
                     + (f", and Flask with one durable psycopg INSERT a request "
                        f"{ins['rps']:,.0f}" if ins is not None else ""))
        if bare["rps"] < TARGET_RPS:
            parts[-1] += (f": {TARGET_RPS:,} is beyond what Flask alone answers on this "
                          "machine")
        parts[-1] += f"; govern is at {own['rps'] / bare['rps']:.2f} of the bare ceiling"
        parts[-1] += (f" and {own['rps'] / ins['rps']:.2f} of the insert ceiling."
                      if ins is not None else ".")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.single", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quiet-wait", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="5 s each")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers for govern and the ceiling app (default: "
                             "govern serve's)")
    parser.add_argument("--threads", type=int, default=8,
                        help="threads per worker of the gthread and group models")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated worker models: sync, gthread, group "
                             "(default all)")
    parser.add_argument("--profile", default="",
                        help="py-spy (on PATH) samples one govern worker in each scenario "
                             "into PREFIX-<model>-<scenario>.txt (collapsed stacks)")
    parser.add_argument("--only", default="",
                        help="comma-separated scenarios: bare, insert, owntracks, native, "
                             "osmand (default all)")
    parser.add_argument("--write", action="store_true",
                        help="update the Single-location requests section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.quiet_wait = 5.0, 0.0
    args.seconds = min(max(args.seconds, 3.0), MAX_SECONDS)
    if not 1 <= args.connections <= 256:
        parser.error("--connections must be 1-256")
    if not 2 <= args.threads <= 64:
        parser.error("--threads must be 2-64")
    if not args.models or set(args.models.split(",")) - set(MODELS):
        parser.error(f"--models: some of {', '.join(MODELS)}")
    text = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Single-location requests", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())


