"""A soak: many phones, each posting one OwnTracks location every few seconds, for minutes,
against `govern serve` as an operator starts it (issue 20: 5,000 phones, one fix every 10 s
each, 500 requests/s, 10 minutes).

The load is open: phone i posts at phase + k * interval whatever the server answers, as
phones do (a slow answer does not slow the next fix), so a server that cannot keep up shows
it as growing latency and errors instead of a lower rate. Latency is counted from the time
the fix was due, not from when the loader got round to sending it, so a loader or server
falling behind is not hidden (no coordinated omission). Each request is a new connection
(`Connection: close`), as a phone waking up makes one; the loader is asyncio on raw
sockets, in this process, bounded to `--in-flight` open requests (a fix due while the bound
is reached waits, and its wait counts in its latency).

Reported: requests due and sent, 2xx, other answers, errors (refused, reset, 10 s timeout),
the rate achieved, p50/p99/max latency, pings stored against 2xx answers (the tenant's
pings counted in the database afterwards: every acknowledged ping must be stored once; an
OwnTracks answer is 200 whatever the door decided, so the door's drops are counted from the
device diagnostics), and the CPU the rest of the machine used.

    .venv/bin/python -m bench.soak [--phones N] [--interval S] [--minutes M] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import sys
import time

from bench.common import (
    CpuMeter,
    machine,
    table,
    throwaway_database,
    wait_for_quiet,
    write_section,
)
from bench.single import Server, set_up, stored

TIMEOUT = 10.0


class Tally:
    def __init__(self):
        self.sent = self.ok = self.other = self.errors = 0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.error_kinds: dict[str, int] = {}


async def _post(port: int, request: bytes, due: float, tally: Tally, slots: asyncio.Semaphore):
    async with slots:
        tally.sent += 1
        writer = None
        try:
            async with asyncio.timeout(max(0.001, due + TIMEOUT - time.monotonic())):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                status_line = await reader.readline()
                await reader.read()  # to the end: the server closes
            status = int(status_line.split()[1])
        except (OSError, TimeoutError, IndexError, ValueError) as exc:
            tally.errors += 1
            kind = type(exc).__name__
            tally.error_kinds[kind] = tally.error_kinds.get(kind, 0) + 1
            return
        finally:
            if writer is not None:
                writer.close()
        tally.latencies.append(time.monotonic() - due)
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            tally.ok += 1
        else:
            tally.other += 1


def _request(auth: str, lat: float, lon: float, tst: int) -> bytes:
    body = (f'{{"_type":"location","lat":{lat:.6f},"lon":{lon:.6f},"tst":{tst},"acc":8,'
            f'"batt":80,"tid":"ph"}}').encode()
    head = (f"POST /v1/ingest/owntracks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    return head + body


async def _soak(port: int, auths: list[str], interval: float, seconds: float, t0: int,
                in_flight: int) -> tuple[Tally, float]:
    """Phone i's k-th fix is due at start + (i / phones + k) * interval, stamped
    t0 + k * interval (distinct per phone), at a position of its own."""
    tally, slots, tasks = Tally(), asyncio.Semaphore(in_flight), set()
    phones = len(auths)
    start = time.monotonic() + 1.0
    total = int(seconds / interval * phones)
    for n in range(total):
        k, i = divmod(n, phones)
        due = start + (i / phones + k) * interval
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        request = _request(auths[i], 52.40 + (i % 100) / 1000 + k / 100000,
                           13.20 + (i // 100) / 1000, t0 + int(k * interval))
        task = asyncio.create_task(_post(port, request, due, tally, slots))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return tally, time.monotonic() - start


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _door(db, tenant_id) -> dict:
    """What the door did with the soak's pings, from the device diagnostics (hourly rows)."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT sum(requests), sum(accepted), sum(duplicates), sum(ignored) "
            "FROM ingest_hourly WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return {"requests": row[0] or 0, "accepted": row[1] or 0, "duplicates": row[2] or 0,
            "ignored": row[3] or 0}


def soak(args, phones: int) -> dict:
    """One soak of `phones` phones on a throwaway cluster of its own."""
    with throwaway_database() as db:
        began = time.monotonic()
        world = set_up(db, phones)
        print(f"{phones} phones enrolled in {time.monotonic() - began:.0f} s", file=sys.stderr)
        auths = ["Basic " + base64.b64encode(f"phone:{t}".encode()).decode()
                 for t in world.tokens]
        meter = CpuMeter(db.datadir)
        server = Server(db, args, "sync")
        try:
            other = wait_for_quiet(meter, max_wait=args.quiet_wait)
            # the fixes' times: from well in the past, so none is in the future when sent
            t0 = int(time.time()) - int(args.minutes * 60) - 3600
            meter.start()
            tally, took = asyncio.run(_soak(server.port, auths, args.interval,
                                            args.minutes * 60, t0, args.in_flight))
            load = meter.stop()
        finally:
            problems = [ln for ln in server.log_path.read_text(errors="replace").splitlines()
                        if "Traceback" in ln or "ERROR" in ln][:5]
            server.stop()
        kept = stored(db, world.tenant_id)
        door = _door(db, world.tenant_id)
    got = {"phones": phones, "tally": tally, "took": took, "other": other, "load": load,
           "stored": kept, "door": door, "problems": problems}
    print(f"{phones} phones: sent {tally.sent}, 2xx {tally.ok}, errors {tally.errors}, "
          f"stored {kept}", file=sys.stderr)
    return got


def _lines(args, got: dict) -> tuple[list, list[str]]:
    """A soak's table row, and its sentences."""
    tally, door, phones = got["tally"], got["door"], got["phones"]
    clean = (tally.errors == 0 and tally.other == 0 and got["stored"] == tally.ok
             == door["accepted"])
    p50, p99 = _percentile(tally.latencies, 0.5), _percentile(tally.latencies, 0.99)
    what = (f"{phones:,} phones, a fix every {args.interval:g} s "
            f"({phones / args.interval:,.0f} due/s), {args.minutes:g} min")
    row = [what, f"{tally.sent:,}", f"{tally.sent / got['took']:,.0f}", f"{tally.ok:,}",
           f"{tally.other:,}", f"{tally.errors:,}", f"{1000 * p50:,.0f}",
           f"{1000 * p99:,.0f}", f"{1000 * max(tally.latencies, default=float('nan')):,.0f}",
           f"{got['stored']:,}", "yes" if clean else "no", f"{got['other']:.2f}",
           f"{got['load']:.2f}"]
    lines = [f"{what}: the door counted {door['requests']:,} requests, {door['accepted']:,} "
             f"accepted, {door['duplicates']:,} duplicates, {door['ignored']:,} ignored."]
    if tally.other:
        lines.append("Other answers by status: " + ", ".join(
            f"{k}: {v:,}" for k, v in sorted(tally.statuses.items()) if not 200 <= k < 300)
            + ".")
    if tally.errors:
        lines.append("Errors by kind: " + ", ".join(
            f"{k}: {v:,}" for k, v in sorted(tally.error_kinds.items())) + ".")
    if got["problems"]:
        lines.append("Server log: " + "; ".join(got["problems"]) + ".")
    return row, lines


def bench(args) -> str:
    results = [soak(args, phones) for phones in args.phones]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows, notes = [], []
    for got in results:
        row, lines = _lines(args, got)
        rows.append(row)
        notes += lines
    return "\n".join([
        f"`make load` (bench/soak.py), {when}, {machine()}. `govern serve` (its default sync "
        "workers, RATE_LIMITS=off), one tenant, each soak on a throwaway cluster of its own; "
        "each phone posts one OwnTracks location a request on a new connection, on its own "
        "schedule whatever the answers (open load); latency from when the fix was due. "
        f"At most {args.in_flight:,} requests open at once; fsync on.",
        "",
        table(["what", "sent", "sent/s", "2xx", "other answers", "errors", "p50 ms",
               "p99 ms", "max ms", "pings stored", "clean", "other load before",
               "other load"], rows, "lrrrrrrrrrlrr"),
        "",
        "Clean: 0 errors, every answer 2xx, and pings stored = 2xx answers = pings the door "
        "accepted (the device diagnostics). \"Other load\" is the CPU the rest of the machine "
        "used (before: while waiting to start; then: during the soak).",
        "",
        *notes,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", default="5000",
                        help="comma-separated phone counts, a soak each (default 5000)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between fixes")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, default=512,
                        help="requests open at once, at the most (the loader's sockets)")
    parser.add_argument("--quiet-wait", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="200 phones, 1 minute")
    parser.add_argument("--write", action="store_true",
                        help="update the Soak section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.workers, args.threads = None, 8  # bench.single.Server's worker settings: the default
    if args.quick:
        args.phones, args.minutes, args.quiet_wait = "200", 1.0, 0.0
    try:
        args.phones = [int(n) for n in args.phones.split(",")]
    except ValueError:
        parser.error("--phones: comma-separated whole numbers")
    if not all(1 <= n <= 20000 for n in args.phones) or not 0.5 <= args.interval <= 600:
        parser.error("--phones 1-20000, --interval 0.5-600")
    if not 0.5 <= args.minutes <= 60 or not 1 <= args.in_flight <= 2000:
        parser.error("--minutes 0.5-60, --in-flight 1-2000")
    text = bench(args)
    print(text)
    if args.write and not args.quick:
        write_section("Soak", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
