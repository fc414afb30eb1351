"""The scheduler's jobs. Each takes the Config and returns counts to log."""

from __future__ import annotations

from govern.config import Config
from govern.scheduler import Job


def heartbeat(config: Config) -> dict:
    """Proves in the log that a leader is alive and running jobs."""
    return {"ok": 1}


JOBS: list[Job] = [
    Job("heartbeat", 60, heartbeat),
]
