"""Test fixtures: a real PostGIS cluster started for the session, and tenant factories.

Set TEST_DATABASE_URL (a superuser URL) to use an existing server instead; a fresh
database is created in it for the run. Set GOVERN_TEST_CITUS=1 (`make test-citus`) to run
against a Citus coordinator and two workers under var/citus: a fresh database on every
node, migrated and then distributed (`govern db distribute`).
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from govern import migrate
from govern.config import Config, libpq_url
from govern.db import make_engine
from govern.localdb import FAST_SETTINGS, LocalCluster

CLUSTER: dict = {}
ROOT = Path(__file__).resolve().parent.parent


CITUS = bool(os.environ.get("GOVERN_TEST_CITUS"))
# fewer shards than Citus's default 32 keep the suite's per-test TRUNCATE and DDL fan-out
# short; routing (one shard per statement) does not depend on the count
CITUS_TEST_SHARDS = 8


def _citus_database_url():
    from govern.localdb import CitusCluster
    from govern.sql.distribution import distribute

    cluster = CitusCluster(ROOT / "var" / "citus", settings=FAST_SETTINGS)
    cluster.start()
    dbname = f"govern_test_{uuid.uuid4().hex[:8]}"
    url = cluster.ensure_database(dbname)
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        assert distribute(conn, shard_count=CITUS_TEST_SHARDS).citus
    engine.dispose()
    CLUSTER["citus"] = cluster
    try:
        yield url
    finally:
        cluster.drop_database(dbname)


@pytest.fixture(scope="session")
def database_url():
    if CITUS:
        yield from _citus_database_url()
        return
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        dbname = f"govern_test_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(given, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(given)
        url = urlunsplit(parts._replace(path=f"/{dbname}"))
        migrate.upgrade(url)
        yield url
        with psycopg.connect(given, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        return
    base = Path(tempfile.mkdtemp(prefix="govern-test-pg-"))
    from tests.instants import moved_env

    cluster = LocalCluster(base, settings=FAST_SETTINGS, server_env=moved_env())
    cluster.start()
    CLUSTER["cluster"] = cluster
    try:
        url = cluster.ensure_database()
        migrate.upgrade(url)
        yield url
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def config(database_url) -> Config:
    # rate limits are tested on their own app (tests/api/test_hardening.py): the suite as a
    # whole makes more failed logins per minute than any one client should
    return Config.from_env({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                            "RATE_LIMITS": "off"})


@pytest.fixture(scope="session")
def app(config):
    from govern.app import create_app

    application = create_app(config)
    application.testing = True
    return application


@pytest.fixture(scope="session")
def sessions(app):
    return app.extensions["govern"].sessions


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def pg_cluster(database_url):
    """The suite's own cluster, for fault tests that stop and start it (skipped when the
    suite runs against TEST_DATABASE_URL, a server we must not restart)."""
    if "cluster" not in CLUSTER:
        pytest.skip("needs the suite's own single-node cluster")
    return CLUSTER["cluster"]


@pytest.fixture
def superuser(database_url):
    """A superuser connection: sees through RLS, for test set-up and proofs only."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def owner(config):
    """An engine as the schema owner, as the scheduler's jobs use it."""
    engine = make_engine(config.database_url, pool_size=1)
    yield engine
    engine.dispose()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(database_url):
    """The app under gunicorn (one worker) on a free loopback port, as `make run` serves it:
    yields (process, port) once /healthz answers."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "RATE_LIMITS": "off",
           "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "-w", "1", "-b",
         f"127.0.0.1:{port}", "--timeout", "60", "wsgi:app"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # a loaded machine starts slowly
    while True:
        assert proc.poll() is None, "gunicorn exited"
        assert time.monotonic() < deadline, "gunicorn never answered /healthz"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    yield proc, port
    proc.terminate()
    proc.wait(20)


KEEP_TABLES = ("alembic_version", "spatial_ref_sys")


@pytest.fixture(autouse=True)
def _clean_database(request):
    """After a test that touched the database, empty every tenant table (pure tests pay nothing)."""
    yield
    if "database_url" in request.fixturenames:
        url = request.getfixturevalue("database_url")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
                "AND NOT c.relispartition AND c.relname <> ALL(%s)", (list(KEEP_TABLES),))]
            probe = " UNION ALL ".join(
                f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {t})" for t in tables)
            dirty = [r[0] for r in conn.execute(probe)]  # TRUNCATE costs even on empty tables
            if dirty and CITUS:
                # a TRUNCATE on the cluster takes seconds (every shard of every table the
                # cascade reaches, on every node); DELETE of the few dirty tables takes
                # milliseconds. Replica role (set on the workers too: SET LOCAL propagates)
                # skips the triggers, append-only refusals and foreign-key checks alike, as
                # TRUNCATE does
                with conn.transaction():
                    conn.execute("SET LOCAL session_replication_role = replica")
                    for table in dirty:
                        conn.execute(f"DELETE FROM {table}")
            elif dirty:
                conn.execute("TRUNCATE " + ", ".join(dirty) + " CASCADE")


from tests.factories import *  # noqa: E402,F401,F403
from tests.tracking import make_tracked  # noqa: E402,F401
