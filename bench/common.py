"""What every bench shares: a throwaway PostGIS cluster, a superuser connection, a free port,
the machine's description, tables, and the sections of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from govern.config import libpq_url

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"

DOC_INTRO = """# Benchmarks

Measured with `make bench` (it runs `python -m bench.run`, which runs every bench in
`bench/` and rewrites its section below). Some benches alone: `.venv/bin/python -m bench.run
ingest trips`, or one directly, `.venv/bin/python -m bench.ingest` (each takes `--quick` for
a smoke run and `--write` to update this file; see its `--help`).

Each bench starts its own throwaway PostgreSQL cluster (PostGIS, hll) in a temporary directory
with the server's default, durable settings: `fsync`, `synchronous_commit` and
`full_page_writes` on, so every commit waits for its WAL flush as in production. Everything
(database, application, load generator) runs on one machine; the numbers below are from a
2-core VM and mean little on their own. What matters are the ratios: each bench measures
its baseline and the paths under test side by side, in one run, on the same database, so
the ratios compare like with like. Other work on the machine while a bench runs distorts
it; run benches on an otherwise idle machine.
"""


@dataclass
class Database:
    url: str  # the superuser (owner) URL, as DATABASE_URL
    base: Path
    server_version: str

    @property
    def datadir(self) -> Path:
        return self.base / "pgdata"

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(libpq_url(self.url), **kwargs)


@contextmanager
def throwaway_database(settings: dict | None = None):
    """A fresh cluster with the schema at head; stopped and deleted afterwards.

    `settings=None` keeps PostgreSQL's durable defaults (fsync on), which benches should use.
    """
    from govern import migrate
    from govern.localdb import LocalCluster

    base = Path(tempfile.mkdtemp(prefix="govern-bench-pg-"))
    cluster = LocalCluster(base, settings=settings)
    cluster.start()
    try:
        url = cluster.ensure_database()
        migrate.upgrade(url)
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        yield Database(url, base, version)
    finally:
        cluster.stop("fast")
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class ClusterDatabase(Database):
    """A throwaway Citus cluster's database: `url` is the coordinator's; `datadir` gives
    every node's data directory (CpuMeter counts them all as the bench's own)."""

    nodes: tuple[Path, ...] = ()

    @property
    def datadir(self) -> tuple[Path, ...]:  # type: ignore[override]
        return self.nodes


@contextmanager
def throwaway_citus_database(shard_count: int | None = None):
    """A fresh Citus coordinator and two workers (govern.localdb.CitusCluster, durable
    defaults), the schema at head and distributed as `govern db distribute` does (Citus's
    default shard count unless `shard_count`); stopped and deleted afterwards."""
    from govern import migrate
    from govern.db import make_engine
    from govern.localdb import CitusCluster
    from govern.sql.distribution import distribute

    base = Path(tempfile.mkdtemp(prefix="govern-bench-citus-"))
    base.chmod(0o755)  # each node's directory below is chowned to the server's user
    cluster = CitusCluster(base)
    cluster.start()
    try:
        url = cluster.ensure_database()
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=1)
        with engine.begin() as conn:
            distribute(conn, shard_count=shard_count)
        engine.dispose()
        with psycopg.connect(url) as conn:
            version = conn.execute("SELECT extversion FROM pg_extension "
                                   "WHERE extname = 'citus'").fetchone()[0]
            version = f"{conn.execute('SHOW server_version').fetchone()[0]}, Citus {version}"
        yield ClusterDatabase(url, base, version,
                              tuple(node.datadir for node in cluster.nodes()))
    finally:
        cluster.stop("fast")
        shutil.rmtree(base, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class AppServer:
    """govern's web app in a child process on a free loopback port, logging to a file in a
    temporary directory of its own (removed by stop()). `command(port)` gives the arguments
    after the Python executable; `env` adds to the environment."""

    def __init__(self, db, command: Callable[[int], list[str]], env: dict, prefix: str,
                 log_name: str = "server.log"):
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = self.tmp / log_name
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        metrics = self.tmp / "metrics"
        metrics.mkdir()
        full_env = {**os.environ, "DATABASE_URL": db.url,
                    "PROMETHEUS_MULTIPROC_DIR": str(metrics), **env}
        full_env.pop("APP_DATABASE_URL", None)
        self.proc = subprocess.Popen([sys.executable, *command(self.port)], cwd=ROOT,
                                     env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port)
        except OSError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) // (1024 * 1024)} GB RAM"
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table (also readable as plain text). `align`: one l/r per column."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(values):
        out = []
        for v, w, a in zip(values, widths, align, strict=True):
            out.append(v.rjust(w) if a == "r" else v.ljust(w))
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2))
                          for w, a in zip(widths, align, strict=True)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def write_section(title: str, body: str, path: Path = DOC) -> None:
    """Replace the `## title` section of the benchmarks document (create either if missing)."""
    text = path.read_text() if path.exists() else DOC_INTRO
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---- other load on the machine ----------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, cpu ticks incl. reaped children)} for every process."""
    table_ = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        # after the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17)
        table_[int(entry)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return table_


def _machine_busy() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = values[:7]
    return user + nice + system + irq + softirq


class CpuMeter:
    """How much CPU processes other than ours (this process, its children, and the benched
    PostgreSQL cluster) used while a phase ran: other benches or test runs on the same
    machine disturb the numbers, and this says by how much."""

    def __init__(self, datadir: Path | tuple[Path, ...]):
        # a Citus cluster's Database gives every node's data directory: all are ours
        dirs = datadir if isinstance(datadir, tuple) else (datadir,)
        self.pidfiles = [d / "postmaster.pid" for d in dirs]
        self.start_at = 0.0
        self.start_busy = 0
        self.start_ours: dict[int, int] = {}

    def _ours(self) -> dict[int, int]:
        procs = _proc_table()
        roots = {os.getpid()}
        for pidfile in self.pidfiles:
            try:
                roots.add(int(pidfile.read_text().split("\n", 1)[0]))
            except (OSError, ValueError):
                pass
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        ours, todo = {}, list(roots)
        while todo:
            pid = todo.pop()
            if pid in procs and pid not in ours:
                ours[pid] = procs[pid][1]
                todo += children.get(pid, [])
        return ours

    def start(self) -> None:
        self.start_ours = self._ours()
        self.start_busy = _machine_busy()
        self.start_at = time.monotonic()

    def stop(self) -> float:
        """Cores used by other processes on average since start()."""
        busy = _machine_busy() - self.start_busy
        now = self._ours()
        ours = sum(t - self.start_ours.get(pid, 0) for pid, t in now.items())
        # an exited process's ticks moved into its parent's (one of ours) reaped-children count
        ours -= sum(t for pid, t in self.start_ours.items() if pid not in now)
        seconds = time.monotonic() - self.start_at
        return max(0.0, (busy - ours) / _TICK / seconds) if seconds > 0 else 0.0


def wait_for_quiet(meter: CpuMeter, limit: float = 0.15, max_wait: float = 120.0) -> float:
    """Wait (at most `max_wait` s) until other processes use under `limit` cores; returns
    the last reading."""
    deadline = time.monotonic() + max_wait
    while True:
        meter.start()
        time.sleep(1.0)
        other = meter.stop()
        if other < limit or time.monotonic() > deadline:
            return other
