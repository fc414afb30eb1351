"""The scheduler: one leader by advisory lock, a standby that takes over, jobs that never
run twice at once."""

import threading
import time

import psycopg

from govern.config import libpq_url
from govern.scheduler import Job, Leader, run_job_exclusively


def test_two_schedulers_never_run_the_same_job_at_once(config):
    running, overlaps, runs = [], [], []
    lock = threading.Lock()

    def slow_job(_config, _now):
        with lock:
            if running:
                overlaps.append(time.monotonic())
            running.append(1)
        time.sleep(0.3)
        with lock:
            running.pop()
            runs.append(1)
        return {}

    job = Job("test-slow", 1, slow_job)
    threads = [threading.Thread(target=run_job_exclusively, args=(config, job))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    assert len(runs) >= 1


def _wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_one_leader_and_a_standby_that_takes_over(config, superuser):
    calls = {"a": 0, "b": 0}

    def job_for(name):
        def job(_config, _now):
            calls[name] += 1
            return {}
        return [Job(f"count-{name}", 1, job)]

    a = Leader(config, job_for("a"), poll_seconds=0.2)
    b = Leader(config, job_for("b"), poll_seconds=0.2)
    ta = threading.Thread(target=a.run, daemon=True)
    ta.start()
    assert a.is_leader.wait(60)
    tb = threading.Thread(target=b.run, daemon=True)
    tb.start()
    _wait_for(lambda: calls["a"] >= 1)
    time.sleep(1.0)  # b gets several polls' time to (wrongly) take the lead
    assert not b.is_leader.is_set()  # standby while a leads
    assert calls["b"] == 0
    # the leader's database session dies (as when its process is killed)
    superuser.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'govern-scheduler' AND pid IN ("
                      "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)")
    a.stop()
    assert b.is_leader.wait(60)
    _wait_for(lambda: calls["b"] >= 1)
    b.stop()
    ta.join(15)
    tb.join(15)
    assert not ta.is_alive() and not tb.is_alive()


def test_leader_lock_is_released_when_the_leader_stops(config):
    leader = Leader(config, [], poll_seconds=0.1)
    t = threading.Thread(target=leader.run, daemon=True)
    t.start()
    assert leader.is_leader.wait(10)
    leader.stop()
    t.join(15)
    assert not t.is_alive()
    from govern.scheduler import LEADER_LOCK

    with psycopg.connect(libpq_url(config.database_url)) as conn:
        holders = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
            (LEADER_LOCK,)).fetchone()[0]
        assert holders == 0
        assert conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0]
