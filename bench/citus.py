"""govern on a Citus cluster beside one node (issue 19), in one run on this machine.

Two topologies, one after the other, each a throwaway set of clusters with durable
defaults (fsync on):

- **one node**: PostgreSQL 15 + PostGIS (bench.common.throwaway_database);
- **Citus**: a coordinator and two workers (govern.localdb.CitusCluster), the schema
  migrated and distributed as `govern db distribute` does it (32 shards a table).

On each, the same work: `govern serve` (its default workers, RATE_LIMITS=off) over 200
devices, driven by `wrk` at `--connections` connections (bench.single's script):

1. one OwnTracks location a request (`POST /v1/ingest/owntracks`);
2. native batches of `--batch` pings a request (`POST /v1/pings`);

then a 30-day month of field workers' pings (bench.reports' data, `--subjects` workers,
1,250 pings each a day), its rollups and frozen basis, and the month's heatmap as the API
answers it (the tenant's first question, and the same question replayed from the ledger).

All three nodes share this machine's two cores with the application and the load
generator, so the Citus column shows what routing through a coordinator costs, not what
more machines would gain.

    .venv/bin/python -m bench.citus [--seconds N] [--subjects N] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time

from bench import reports, single
from bench.common import (
    ClusterDatabase,
    CpuMeter,
    machine,
    table,
    throwaway_citus_database,
    throwaway_database,
    wait_for_quiet,
    write_section,
)
from bench.retention import Clock, DayLoad, load, make_tenant

TOPOLOGIES = (("single", "one node"), ("citus", "Citus: coordinator + 2 workers"))


def ingest(db, args) -> dict:
    """Scenarios 1 and 2 on `db`: {scenario: wrk's result, with pings stored}."""
    world = single.set_up(db)
    meter = CpuMeter(db.datadir)
    start = int(time.time()) - 6 * 3600
    out = {}
    server = single.Server(db, args, "sync")  # govern serve's default workers
    try:
        for k, (kind, batch) in enumerate((("owntracks", 1), ("batch", args.batch))):
            t0 = start + 2 * 3600 * k
            single.wrk(server.port, world, kind, t0, args.connections, 3, batch)  # warm
            before = single.stored(db, world.tenant_id)
            wait_for_quiet(meter, max_wait=args.quiet_wait)
            meter.start()
            got = single.wrk(server.port, world, kind, t0 + 3600, args.connections,
                             args.seconds, batch)
            got["other"] = meter.stop()
            got["stored"] = single.stored(db, world.tenant_id) - before
            got["batch"] = batch
            out[kind] = got
            print(f"  {kind}: {got}", file=sys.stderr)
    finally:
        server.stop()
    return out


def heatmap(db, args) -> dict:
    """The month's data, rollups and basis on `db`, then the API's heatmap (res 7) timed."""
    month = reports.thirty_day_month(dt.datetime.now(dt.UTC).date())
    now = dt.datetime.combine(month[1], dt.time(0), dt.UTC) + dt.timedelta(days=3)
    t = make_tenant(db, "bench-citus", {}, reports.PURPOSES,
                    {"DB_STATEMENT_TIMEOUT_MS": str(reports.STATEMENT_TIMEOUT_MS)})
    mask = t.mask("navigation", "analytics")
    days = [month[0] + dt.timedelta(days=k) for k in range(30)]
    t0 = time.perf_counter()
    pings = load(db, [DayLoad(t.tenant_id, d, mask, 10, 0, args.subjects) for d in days])
    load_s = time.perf_counter() - t0
    if isinstance(db, ClusterDatabase):
        # the points' cells are joined to the pings: on the cluster, a reference table
        # (Citus joins no local table to a distributed one)
        with db.connect() as conn:
            conn.execute("CREATE TABLE bench_cells (lon float8, lat float8, cell bigint, "
                         "r8 bigint, r7 bigint, r6 bigint, r5 bigint, PRIMARY KEY (lon, lat))")
            conn.execute("SELECT create_reference_table('bench_cells')")
            conn.commit()
    t0 = time.perf_counter()
    reports.add_cells(db)
    rollups = reports.derive_rollups(db, t)
    rollup_s = time.perf_counter() - t0
    freeze_s, _ = reports.freeze_basis(t, now)
    t_from, t_to = (dt.datetime.combine(d, dt.time(0), dt.UTC) for d in month)
    query = reports.api_heatmap(t, t_from, t_to, 7, now)
    times = {"first": [], "replay": []}
    others = []
    rows = None
    for rep in range(args.reps + 1):  # the first round warms plans and connections
        reports.forget_releases(db, t, basis=False)
        for name in ("first", "replay"):
            seconds, got, other = reports.timed(t, query)
            if rep:
                times[name].append(seconds)
                others.append(other)
            rows = got if rows is None else rows
            assert got == rows, "a heatmap answer changed between asks"
    return {"pings": pings, "rollups": rollups, "cells": len(rows),
            "released_pings": sum(r["pings"] for r in rows), "load_s": load_s,
            "rollup_s": rollup_s, "freeze_s": freeze_s,
            "first": statistics.median(times["first"]),
            "replay": statistics.median(times["replay"]), "other": max(others)}


def bench(args) -> str:
    results = {}
    versions = {}
    for name, _label in TOPOLOGIES:
        opener = throwaway_database() if name == "single" else throwaway_citus_database()
        print(f"== {name}", file=sys.stderr)
        with opener as db:
            versions[name] = db.server_version
            results[name] = {**ingest(db, args), "heatmap": heatmap(db, args)}
    return report(args, results, versions)


def report(args, results: dict, versions: dict) -> str:
    one, cit = results["single"], results["citus"]
    rows = []
    for kind, what in (("owntracks", "OwnTracks, one location a request"),
                       ("batch", f"native, {args.batch} pings a request")):
        for name, label in TOPOLOGIES:
            r = results[name][kind]
            rows.append([what, label, f"{r['rps']:,.0f}", f"{r['rps'] * r['batch']:,.0f}",
                         f"{r['p50']:.1f}", f"{r['p99']:.1f}", f"{r['ok']:,}",
                         f"{r['stored']:,}", f"{r['other']:.2f}"])
        rows.append([what, "Citus / one node",
                     f"{cit[kind]['rps'] / one[kind]['rps']:.2f}", "",
                     f"{cit[kind]['p50'] / one[kind]['p50']:.2f}",
                     f"{cit[kind]['p99'] / one[kind]['p99']:.2f}", "", "", ""])
    own_1, own_c = one["owntracks"], cit["owntracks"]
    # wrk's connections are always busy: Little's law gives the time a request spends
    per_req_ms = (args.connections / own_c["rps"] - args.connections / own_1["rps"]) * 1000
    h1, hc = one["heatmap"], cit["heatmap"]
    hrows = []
    for name, label in TOPOLOGIES:
        h = results[name]["heatmap"]
        hrows.append([label, f"{h['pings']:,}", f"{h['load_s']:.0f}", f"{h['rollup_s']:.0f}",
                      f"{h['freeze_s']:.1f}", f"{h['first'] * 1000:,.0f}",
                      f"{h['replay'] * 1000:,.0f}", f"{h['cells']:,}", f"{h['other']:.2f}"])
    hrows.append(["Citus / one node", "", f"{hc['load_s'] / h1['load_s']:.2f}",
                  f"{hc['rollup_s'] / h1['rollup_s']:.2f}",
                  f"{hc['freeze_s'] / h1['freeze_s']:.2f}", f"{hc['first'] / h1['first']:.2f}",
                  f"{hc['replay'] / h1['replay']:.2f}", "", ""])
    same = (h1["cells"], h1["released_pings"]) == (hc["cells"], hc["released_pings"])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        f"`make bench` (bench/citus.py), {when}, {machine()}; one node: PostgreSQL "
        f"{versions['single']}; Citus: {versions['citus']}, a coordinator and two workers on "
        f"this same machine, 32 shards a table; fsync on everywhere. {args.connections} "
        f"connections, {args.seconds:g} s a scenario, 200 devices, `govern serve` with its "
        "default workers.",
        "",
        table(["ingest", "database", "requests/s", "pings/s", "p50 ms", "p99 ms",
               "answered 2xx", "pings stored", "other load"], rows, "llrrrrrrr"),
        "",
        f"Per one-location request, the cluster adds {per_req_ms:.1f} ms (the difference of "
        f"{args.connections} connections / requests a second between the two). \"Pings "
        "stored\" is counted in the database after the scenario (it can exceed the 2xx "
        "answers by the requests in flight when wrk stopped).",
        "",
        table(["month heatmap (res 7)", "pings", "load s", "rollups s", "freeze s",
               "first question ms", "replay ms", "cells released", "other load"], hrows,
              "lrrrrrrrr"),
        "",
        f"The month: {args.subjects} field workers x 30 days x 1,250 pings (bench.reports' "
        "data), rollups derived set-wise, the basis frozen by the scheduler's job, then the "
        f"API's heatmap (median of {args.reps}). Both topologies released "
        + ("the same cells and pings." if same else
           f"different answers: {h1['cells']} vs {hc['cells']} cells (a defect)."),
        "",
        "All three Citus nodes, the application and wrk share the machine's two cores: the "
        "ratios are the cost of routing every statement through a coordinator to a worker "
        "(one more connection hop and a distributed plan), not the gain of more machines.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.citus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--subjects", type=int, default=27,
                        help="field workers in the month (1,250 pings each a day)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quiet-wait", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--write", action="store_true",
                        help="update the Citus section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    # bench.single.Server reads these
    args.workers, args.threads = None, None
    if args.quick:
        args.seconds, args.subjects, args.reps, args.quiet_wait = 3.0, 2, 1, 0.0
        Clock.quiet_wait = 0
    if not 1 <= args.batch <= 500:
        parser.error("--batch must be 1-500")
    text = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Citus beside one node", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
