"""The scheduler's jobs. Each takes the Config and the run's instant (from the scheduler's
clock) and returns counts to log."""

from __future__ import annotations

import datetime as dt
import functools

from govern.config import Config
from govern.scheduler import Job


@functools.cache
def _engines(config: Config):
    from govern import jsontext
    from govern.db import make_engine, make_sessionmaker

    owner = make_engine(config.database_url, pool_size=1)
    app = make_engine(config.app_database_url, pool_size=2, json_serializer=jsontext.dumps)
    return owner, make_sessionmaker(app)


def partitions(config: Config, now: dt.datetime) -> dict:
    """Day partitions ahead of time, and whole days past every window dropped."""
    from govern.domain.retention import maintain_partitions

    owner, sessions = _engines(config)
    return maintain_partitions(owner, sessions, now)


def retention(config: Config, now: dt.datetime) -> dict:
    """Age, coarsen and delete per purpose, apply withdrawals, holds and rollup retention."""
    from govern.domain.retention import run_all

    owner, sessions = _engines(config)
    report = run_all(owner, sessions, now)
    totals = {"aged": 0, "deleted": 0, "tenants": len(report["tenants"])}
    for t in report["tenants"].values():
        totals["aged"] += t["aged"]
        totals["deleted"] += t["deleted"]
    return {**totals, "partitions_dropped": report["partitions"]["dropped"]}


def trips(config: Config, now: dt.datetime) -> dict:
    """Stops and trips from the pings that arrived since the last run (late ones too). What
    counts as arrived is the database's own commit order; ``now`` decides which purposes'
    windows a record has already left."""
    from govern.domain.trips import build_all

    owner, sessions = _engines(config)
    report = build_all(owner, sessions, now=now)
    return {k: report[k] for k in ("tenants", "subjects", "pings", "stops", "trips")}


def release_basis(config: Config, now: dt.datetime) -> dict:
    """Freeze the release basis of every settled day in advance (exact mode), so that an
    analyst's first question over a closed period reads it instead of building it."""
    from govern.domain.release import freeze_all

    owner, sessions = _engines(config)
    return freeze_all(owner, sessions, now)


def heartbeat(config: Config, now: dt.datetime) -> dict:
    """Proves in the log that a leader is alive and running jobs."""
    return {"ok": 1}


JOBS: list[Job] = [
    Job("heartbeat", 60, heartbeat),
    Job("partitions", 3600, partitions),
    Job("retention", 900, retention),
    Job("trips", 300, trips),
    Job("release_basis", 600, release_basis),
]
