"""The retention job as a process: killed half-way, the next run finishes it; started twice
at once, only one runs."""

import datetime as dt
import os
import subprocess
import sys
import time

import psycopg
import pytest

from govern.config import libpq_url

NAV = {"key": "navigation", "title": "Nav", "precision_m": 10, "retention_days": 7}
ANALYTICS = {"key": "analytics", "title": "Analytics", "precision_m": 500,
             "retention_days": 30, "aggregate_use": True}
N = 6000


@pytest.fixture
def aged_world(tenant, make_tracked, superuser):
    tracked = make_tracked(tenant, purposes=(NAV, ANALYTICS))
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=9)).date()
    superuser.execute("SELECT govern_ensure_ping_partition(%s)", (day,))
    superuser.execute(
        "INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask, "
        "precision_m, geom) SELECT %s, %s, %s, %s + k * interval '1 second', k::text, 3, 10, "
        "govern_snap(13.4 + k / 100000.0, 52.5, 10) FROM generate_series(1, %s) k",
        (tenant.tenant_id, tracked.device_id, tracked.subject_id,
         dt.datetime.combine(day, dt.time(8), dt.UTC), N))
    return tracked


def _run(database_url, *args, statement_timeout_ms=30_000):
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
           "DB_STATEMENT_TIMEOUT_MS": str(statement_timeout_ms)}
    return subprocess.Popen([sys.executable, "-m", "govern.cli", "retention", "run", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _state(superuser):
    return dict(superuser.execute(
        "SELECT purpose_mask || '/' || precision_m, count(*) FROM pings GROUP BY 1").fetchall())


def test_killed_run_is_finished_by_the_next(aged_world, superuser, database_url):
    proc = _run(database_url, "--batch", "50")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = _state(superuser).get("2/500", 0)
        if done >= 200:
            break
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup, mid-batch or between batches
    proc.wait(10)
    half = _state(superuser)
    assert set(half) <= {"3/10", "2/500"}  # each ping fully aged or untouched
    assert 0 < half.get("2/500", 0) < N
    again = _run(database_url)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert _state(superuser) == {"2/500": N}


def test_two_runs_started_together_never_run_at_once(aged_world, superuser, database_url):
    # the first run is held mid-way (its writes wait for a table lock the test holds), so the
    # second surely starts while the first runs, however fast or slow the machine is
    with psycopg.connect(libpq_url(database_url)) as holder:
        holder.execute("LOCK TABLE pings IN EXCLUSIVE MODE")
        # held for as long as the second takes to start, which a loaded machine makes long
        first = _run(database_url, "--batch", "50", statement_timeout_ms=600_000)
        deadline = time.monotonic() + 120
        while not superuser.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = "
                                    "'advisory' AND granted)").fetchone()[0]:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took the job's lock"
            time.sleep(0.05)
        second = _run(database_url, "--batch", "50")
        out2, err2 = second.communicate(timeout=120)
        holder.rollback()  # let the first one go on
    out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode != 0 and "already in progress" in err2
    assert _state(superuser) == {"2/500": N}
    aged = superuser.execute("SELECT sum(aged) FROM retention_runs WHERE kind = 'age'"
                             ).fetchone()[0]
    assert aged == N  # no double work in the evidence either
