"""A project-local PostGIS cluster, for `make run` and the test suite.

Used only when DATABASE_URL is not set. The cluster listens on a Unix socket inside
its own directory (no TCP port to collide with another server) and is reused on the
next start. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
system user.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("govern.localdb")

DEFAULT_PORT = 5432
DB_NAME = "govern"
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def pg_bindir() -> Path:
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    for version in ("15", "16", "17"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found; install postgresql-15-postgis-3")


def _run_user() -> str | None:
    """The OS user the server runs as: postgres when we are root, else ourselves."""
    return "postgres" if os.geteuid() == 0 else None


def _cmd(args: list[str]) -> list[str]:
    user = _run_user()
    return ["runuser", "-u", user, "--", *args] if user else args


@dataclass
class LocalCluster:
    base: Path
    port: int = DEFAULT_PORT
    settings: dict | None = None
    server_env: dict | None = None  # extra environment for the server (tests move its clock)

    @property
    def datadir(self) -> Path:
        return self.base / "pgdata"

    @property
    def sockdir(self) -> Path:
        return self.base / "run"

    @property
    def logfile(self) -> Path:
        return self.base / "postgres.log"

    def url(self, dbname: str = DB_NAME, user: str = "postgres") -> str:
        return f"postgresql://{user}@/{dbname}?host={quote(str(self.sockdir))}&port={self.port}"

    def _chown(self, *paths: Path) -> None:
        user = _run_user()
        if user:
            pw = pwd.getpwnam(user)
            for p in paths:
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        for d in (self.datadir, self.sockdir):
            d.mkdir(exist_ok=True)
        self.logfile.touch(exist_ok=True)
        self._chown(self.datadir, self.sockdir, self.logfile)
        self.datadir.chmod(0o700)
        log.info("initialising a local PostgreSQL cluster in %s", self.datadir)
        subprocess.run(
            _cmd([str(pg_bindir() / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--no-locale"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        conf = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.sockdir}'",
            "port": str(self.port),
            "max_connections": "100",
            "shared_buffers": "'256MB'",
            "timezone": "'UTC'",  # whatever TZ the machine (or a test run) has
            **{k: (v if v.isdigit() else f"'{v}'") for k, v in (self.settings or {}).items()},
        }
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write("\n# govern local cluster\n")
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")

    def running(self) -> bool:
        result = subprocess.run(
            _cmd([str(pg_bindir() / "pg_ctl"), "-D", str(self.datadir), "status"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return result.returncode == 0

    def start(self) -> None:
        if not self.initialised():
            self.init()
        if self.running():
            return
        subprocess.run(
            _cmd([str(pg_bindir() / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                  "-w", "-t", "60", "start"]),
            check=True, stdout=subprocess.DEVNULL,
            env={**os.environ, **self.server_env} if self.server_env else None,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        if self.initialised() and self.running():
            subprocess.run(
                _cmd([str(pg_bindir() / "pg_ctl"), "-D", str(self.datadir), "-m", mode,
                      "-w", "stop"]),
                check=False, stdout=subprocess.DEVNULL,
            )

    def ensure_database(self, dbname: str = DB_NAME) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)


CITUS_SETTINGS = {
    "shared_preload_libraries": "citus",
    "max_prepared_transactions": "100",  # Citus commits multi-shard writes in two phases
    "wal_level": "logical",  # non-blocking shard moves and splits (rebalance, isolation)
}


@dataclass
class CitusCluster:
    """A Citus coordinator and `workers` workers, each a LocalCluster under `base`.

    Nodes reach each other over their Unix sockets (the socket directory is the node's host
    name in Citus's metadata), so nothing listens on TCP. Every database made with
    `ensure_database` has the extensions on every node and the workers registered on the
    coordinator.
    """

    base: Path
    workers: int = 2
    port: int = 5440
    settings: dict | None = None
    server_env: dict | None = None

    def nodes(self) -> list[LocalCluster]:
        settings = {**CITUS_SETTINGS, **(self.settings or {})}
        names = ["coordinator", *(f"worker{i}" for i in range(1, self.workers + 1))]
        nodes = []
        for i, name in enumerate(names):
            sockdir = self.base / name / "run"
            # a node connects to itself (shard splits, isolate_tenant_to_new_shard) by
            # citus.local_hostname, 'localhost' by default: there is no TCP here
            nodes.append(LocalCluster(self.base / name, port=self.port + i,
                                      settings={**settings, "citus.local_hostname": str(sockdir)},
                                      server_env=self.server_env))
        return nodes

    @property
    def coordinator(self) -> LocalCluster:
        return self.nodes()[0]

    def url(self, dbname: str = DB_NAME, user: str = "postgres") -> str:
        return self.coordinator.url(dbname, user)

    def initialised(self) -> bool:
        return all(node.initialised() for node in self.nodes())

    def running(self) -> bool:
        return all(node.running() for node in self.nodes())

    def start(self) -> None:
        for node in self.nodes():
            node.start()

    def stop(self, mode: str = "fast") -> None:
        for node in reversed(self.nodes()):
            node.stop(mode)

    def ensure_database(self, dbname: str = DB_NAME) -> str:
        """Create `dbname` on every node (if missing) with citus, postgis and hll, and
        register the coordinator and the workers in it; returns the coordinator's URL."""
        import psycopg

        coordinator, *workers = self.nodes()
        for node in (*workers, coordinator):
            node.ensure_database(dbname)
            with psycopg.connect(node.url(dbname), autocommit=True) as conn:
                for ext in ("citus", "postgis", "hll"):
                    conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        with psycopg.connect(coordinator.url(dbname), autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)",
                         (str(coordinator.sockdir), coordinator.port))
            for node in workers:
                known = conn.execute(
                    "SELECT 1 FROM pg_dist_node WHERE nodename = %s AND nodeport = %s",
                    (str(node.sockdir), node.port)).fetchone()
                if not known:
                    conn.execute("SELECT citus_add_node(%s, %s)",
                                 (str(node.sockdir), node.port))
        return coordinator.url(dbname)

    def drop_database(self, dbname: str) -> None:
        import psycopg

        for node in self.nodes():
            with psycopg.connect(node.url("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
