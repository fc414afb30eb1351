"""A noisy tenant beside a quiet one: does one tenant's heavy reads stall another's requests?

A throwaway cluster (bench.common) holds two tenants. The noisy one has a subject with 31
days of pings (one every 30 s, 06:00-21:00 UTC: ~56,000); its owner runs `--noisy` threads
that each read that subject's whole 31-day track (`GET /v1/subjects/{id}/track`, 10,000
points a page) back to back. The quiet tenant's `--quiet` threads call `GET /v1/me` about
every 0.1 s each. gunicorn (`-w 4` sync workers, like `make load`) serves both, on 127.0.0.1.

Phases of `--seconds` each, in one run, side by side:

1. quiet alone (the quiet tenant's baseline);
2. quiet + noisy, the per-tenant bound on (HEAVY_READS_PER_TENANT=2, the default); a refused
   read (429 `tenant_busy`) is asked again after its Retry-After, as the console and HTTP
   client libraries that honour it do;
3. the same, but the noisy client ignores Retry-After and asks again after 0.1 s; rate
   limits on (the default RATE_LIMIT, memory storage: per worker);
4. the impatient client with rate limits off: only the bound between it and the workers;
5. quiet + noisy with the bound off (HEAVY_READS_PER_TENANT=0): what the bound prevents.

Measured: per phase and client, requests, p50/p99/max latency, 429s and other errors.

    .venv/bin/python -m bench.noisy [--seconds N] [--quick] [--write]

`--write` updates the "Noisy tenant" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from bench.common import (
    ROOT,
    AppServer,
    CpuMeter,
    machine,
    table,
    throwaway_database,
    wait_for_quiet,
    write_section,
)
from bench.load import REQUEST_TIMEOUT, Client, Endpoint, ms, percentile

WORKERS = 4
DAYS = 31
MAX_THREADS = 64


@dataclass
class World:
    quiet_token: str
    noisy_token: str
    track_path: str
    pings: int


def set_up(db) -> World:
    from govern import jsontext
    from govern.config import Config
    from govern.db import make_engine, make_sessionmaker, tenant_session
    from govern.domain import consents, policy, purposes, subjects
    from govern.domain.ingest import ingest
    from govern.domain.tenants import create_tenant

    config = Config.from_env({"DATABASE_URL": db.url, "LOG_LEVEL": "WARNING"})
    engine = make_engine(config.app_database_url, pool_size=1,
                         json_serializer=jsontext.dumps)
    sessions = make_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = now.date()
    with tenant_session(sessions, None) as s:
        noisy = create_tenant(s, "Noisy", owner_email="owner@noisy.example")
        quiet = create_tenant(s, "Quiet", owner_email="owner@quiet.example")
    tid, actor = noisy.tenant_id, "cli:bench"
    with tenant_session(sessions, tid) as s:
        policy.update_policy(s, tid, actor, {"collection_windows": []})
        purposes.create_purpose(s, tid, actor, {
            "key": "time_tracking", "title": "Time and mileage", "precision_m": 10,
            "retention_days": 400, "individual_access": True, "requires_consent": True,
            "reader_roles": ["owner"]})
        subject = subjects.create_subject(s, tid, actor, {"external_ref": "long-track"})
        device, _ = subjects.enrol_device(s, tid, actor, subject.subject_id,
                                          platform="android")
        consents.record_consent(s, tid, subject.subject_id, purpose_key="time_tracking",
                                status="granted", at=now - dt.timedelta(days=DAYS + 1),
                                policy_version="v1", source="admin", actor=actor,
                                evidence={"form": "bench"}, now=now)
    rng = random.Random(5)
    start = dt.datetime.combine(today - dt.timedelta(days=DAYS), dt.time(0), dt.UTC)
    with db.connect(autocommit=True) as conn:
        for d in range(DAYS + 2):
            conn.execute("SELECT govern_ensure_ping_partition(%s)",
                         (start.date() + dt.timedelta(days=d),))
    stored = 0
    for d in range(DAYS):
        day = start + dt.timedelta(days=d, hours=6)
        pings = [{"id": f"{d}-{i}", "t": (day + dt.timedelta(seconds=30 * i)).isoformat(),
                  "lat": 52.52 + rng.gauss(0, 0.01), "lon": 13.405 + rng.gauss(0, 0.01),
                  "acc": 8.0} for i in range(15 * 120)]
        for i in range(0, len(pings), 1000):
            with tenant_session(sessions, tid) as s:
                stored += ingest(s, engine, tid, device.device_id, subject.subject_id,
                                 pings[i:i + 1000], now=now).accepted
    engine.dispose()
    with db.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    z = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    path = f"/v1/subjects/{subject.subject_id}/track?" + urlencode({
        "purpose": "time_tracking", "from": z(start), "to": z(start + dt.timedelta(days=DAYS)),
        "limit": 10_000})
    return World(quiet.owner_token, noisy.owner_token, path, stored)


class Server(AppServer):
    def __init__(self, db, slots: int, rate_limits: bool):
        super().__init__(
            db, lambda port: ["-m", "gunicorn", "--chdir", str(ROOT), "-w", str(WORKERS),
                              "-b", f"127.0.0.1:{port}", "wsgi:app"],
            {"RATE_LIMITS": "on" if rate_limits else "off", "LOG_LEVEL": "WARNING",
             "HEAVY_READS_PER_TENANT": str(slots)}, "govern-noisy-http-")


@dataclass(frozen=True)
class Phase:
    name: str
    noisy: bool = True
    slots: int = 2
    honours_retry_after: bool = True
    rate_limits: bool = False


PHASES = (
    Phase("1. quiet alone", noisy=False),
    Phase("2. noisy beside, bound on, Retry-After honoured"),
    Phase("3. noisy beside, bound on, retries every 0.1 s, rate limits on",
          honours_retry_after=False, rate_limits=True),
    Phase("4. noisy beside, bound on, retries every 0.1 s, rate limits off",
          honours_retry_after=False),
    Phase("5. noisy beside, bound off", slots=0),
)
IMPATIENT_RETRY_S = 0.1


def _loop(deadline: float, work) -> None:
    """Call work() until the deadline; it returns how long to wait before the next call."""
    while time.monotonic() < deadline:
        wait = work()
        if wait:
            time.sleep(min(wait, max(0.0, deadline - time.monotonic())))


def phase(port: int, world: World, args, spec: Phase) -> dict[str, Endpoint]:
    eps = {"quiet": Endpoint("quiet", "quiet tenant: GET /v1/me", ""),
           "noisy": Endpoint("noisy", "noisy tenant: 31-day track", "")}
    t0 = time.perf_counter()
    deadline = time.monotonic() + args.seconds
    threads = []

    def quiet():
        client = Client(port, world.quiet_token, eps["quiet"], t0)
        try:
            def me() -> float:
                client.call("GET", "/v1/me")
                return 0.1

            _loop(deadline, me)
        finally:
            client.close()

    def loud():
        client = Client(port, world.noisy_token, eps["noisy"], t0)

        def read() -> float:
            if client.call("GET", world.track_path):
                return 0.0  # answered: the next read at once
            if spec.honours_retry_after and client.retry_after:
                return float(client.retry_after)
            return IMPATIENT_RETRY_S

        try:
            _loop(deadline, read)
        finally:
            client.close()

    threads += [threading.Thread(target=quiet, daemon=True) for _ in range(args.quiet)]
    if spec.noisy:
        threads += [threading.Thread(target=loud, daemon=True) for _ in range(args.noisy)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + REQUEST_TIMEOUT + 5)
    return eps


def _row(name: str, ep: Endpoint) -> list:
    ok = [s for _, s, status in ep.samples if 200 <= status < 300]
    refused = sum(1 for _, _, status in ep.samples if status == 429)
    other = len(ep.samples) - len(ok) - refused
    return [name, ep.label, len(ok), ms(percentile(ok, 50)), ms(percentile(ok, 99)),
            ms(max(ok)) if ok else "-", refused, other]


def bench(args) -> str:
    with throwaway_database() as db:
        t = time.monotonic()
        world = set_up(db)
        print(f"set up in {time.monotonic() - t:.0f} s: {world.pings:,} pings",
              file=sys.stderr)
        meter = CpuMeter(db.datadir)
        results = []
        for spec in PHASES:
            server = Server(db, spec.slots, spec.rate_limits)
            try:
                phase(server.port, world, argparse.Namespace(**{**vars(args), "seconds": 2}),
                      spec)  # warm-up: every worker imported and connected
                other = wait_for_quiet(meter, max_wait=args.quiet_wait)
                meter.start()
                eps = phase(server.port, world, args, spec)
                other = max(other, meter.stop())
            finally:
                server.stop()
            results.append((spec.name, eps, other))
            print(f"{spec.name}: done", file=sys.stderr)
    rows = []
    for name, eps, other in results:
        rows.append([*_row(name, eps["quiet"]), f"{other:.2f}"])
        if eps["noisy"].samples:
            rows.append([*_row("", eps["noisy"]), ""])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        f"`make load` (bench/noisy.py), {when}, {machine()}; each phase {args.seconds:g} s; "
        f"gunicorn -w {WORKERS} (sync); {args.quiet} quiet threads, {args.noisy} noisy "
        f"threads; the noisy subject has {world.pings:,} pings over {DAYS} days.",
        "",
        table(["phase", "client", "answered", "p50 ms", "p99 ms", "max ms", "429",
               "other errors", "other load (cores)"],
              rows, "llrrrrrrr"),
        "",
        "Latency is of answered (2xx) requests. \"429\" are the noisy tenant's refused reads "
        "(`tenant_busy`, or `rate_limited` in phase 3). \"Other load\" is the most CPU the "
        "rest of the machine used around a phase (above 0.1 disturbs the numbers).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.noisy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--noisy", type=int, default=30, help="noisy tenant's threads")
    parser.add_argument("--quiet", type=int, default=4, help="quiet tenant's threads")
    parser.add_argument("--quiet-wait", type=float, default=30.0,
                        help="wait at most this long for a quiet machine before each phase")
    parser.add_argument("--quick", action="store_true", help="5 s phases")
    parser.add_argument("--write", action="store_true",
                        help="update the Noisy tenant section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.quiet_wait = 5.0, 0.0
    args.seconds = min(max(args.seconds, 2.0), 600.0)
    if not 1 <= args.noisy + args.quiet <= MAX_THREADS or args.quiet < 1:
        parser.error(f"between 1 and {MAX_THREADS} threads, at least one quiet")
    text = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Noisy tenant", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

