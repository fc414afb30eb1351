"""The scheduler process: APScheduler behind a PostgreSQL advisory lock.

Only the process holding the leader lock runs jobs; others wait as standby and take
over when the leader's session ends (the lock dies with its connection). Each job also
takes its own transaction-level advisory lock while it runs, so even two processes that
both believe they lead can never run the same job at the same time.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from govern.clock import SYSTEM, Clock
from govern.config import Config, libpq_url

log = logging.getLogger("govern.scheduler")

LEADER_LOCK = 0x60_7E_12_01  # arbitrary, constant across versions


@dataclass(frozen=True)
class Job:
    name: str
    seconds: int
    run: Callable[[Config, dt.datetime], dict | None]  # (config, the run's instant)


def job_lock_key(name: str) -> str:
    return f"govern.job:{name}"


class JobBusy(Exception):
    """Another process holds this job's lock."""


@contextmanager
def job_lock(config: Config, name: str):
    """Hold the job's advisory lock for the block, or raise JobBusy at once."""
    with psycopg.connect(libpq_url(config.database_url), autocommit=True) as conn:
        key = job_lock_key(name)
        if not conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                            (key,)).fetchone()[0]:
            raise JobBusy(name)
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def run_job_exclusively(config: Config, job: Job, clock: Clock = SYSTEM) -> dict | None:
    """Run a job while holding its advisory lock; skip (and say so) when another run holds it.
    The job is handed its instant from ``clock``, read once the lock is held."""
    started = time.perf_counter()
    try:
        with job_lock(config, job.name):
            result = job.run(config, clock.now()) or {}
    except JobBusy:
        log.info("job skipped: another run holds it", extra={"fields": {"job": job.name}})
        return None
    except Exception:
        log.exception("job failed", extra={"fields": {"job": job.name}})
        return None
    log.info("job finished", extra={"fields": {
        "job": job.name, "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        **{k: v for k, v in result.items() if isinstance(v, int | float | str)}}})
    return result


class Leader:
    """Holds the leader lock on a dedicated connection and runs the jobs while it does."""

    def __init__(self, config: Config, jobs: list[Job], poll_seconds: float = 2.0,
                 clock: Clock = SYSTEM):
        """``jobs``: what to run (govern.jobs.JOBS in the scheduler process); handed in, so
        this module knows nothing of what the jobs do."""
        self.config = config
        self.clock = clock
        self.jobs = list(jobs)
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()
        self.is_leader = threading.Event()

    def _try_lead(self) -> psycopg.Connection | None:
        try:
            conn = psycopg.connect(libpq_url(self.config.database_url), autocommit=True,
                                   application_name="govern-scheduler")
        except psycopg.OperationalError as exc:
            log.warning("database unreachable; standing by",
                        extra={"fields": {"error": str(exc).splitlines()[0]}})
            return None
        if conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0]:
            return conn
        conn.close()
        return None

    def run(self) -> None:
        announced_standby = False
        while not self.stopping.is_set():
            conn = self._try_lead()
            if conn is None:
                if not announced_standby:
                    log.info("standby: another scheduler is leader")
                    announced_standby = True
                self.stopping.wait(self.poll_seconds)
                continue
            announced_standby = False
            self._lead(conn)

    def _lead(self, conn: psycopg.Connection) -> None:
        log.info("leader: running jobs", extra={"fields": {"jobs": [j.name for j in self.jobs]}})
        self.is_leader.set()
        sched = BackgroundScheduler(timezone="UTC")
        for job in self.jobs:
            sched.add_job(run_job_exclusively, "interval", seconds=job.seconds,
                          args=[self.config, job, self.clock], id=job.name,
                          max_instances=1, coalesce=True, next_run_time=SYSTEM.now())
        sched.start()
        try:
            while not self.stopping.wait(self.poll_seconds):
                try:
                    conn.execute("SELECT 1")
                except psycopg.Error:
                    log.warning("lost the leader connection; stepping down")
                    break
        finally:
            sched.shutdown(wait=True)
            self.is_leader.clear()
            try:  # released before the connection closes: a server ends the session (and
                # frees its locks) only some time after the client has gone
                conn.execute("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK,))
            except psycopg.Error:
                pass
            try:
                conn.close()
            except psycopg.Error:
                pass

    def stop(self, *_args) -> None:
        self.stopping.set()


def main(config: Config, jobs: list[Job]) -> None:
    leader = Leader(config, jobs)
    signal.signal(signal.SIGTERM, leader.stop)
    signal.signal(signal.SIGINT, leader.stop)
    leader.run()
    log.info("scheduler stopped")
