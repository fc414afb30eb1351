"""Stops and trips age with their pings: retention's hook over travel."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.orm import sessionmaker

from govern.db import tenant_session
from govern.sql import travel_ageing as sql
from govern.sql.trips import AGEING

log = logging.getLogger("govern.trips")


def age_travel(sessions: sessionmaker, tenant_id: uuid.UUID, params: dict, *,
               dry_run: bool = False, budget=None) -> dict:
    """Apply one retention pass (the same parameters as the pings' pass: rules, touched and
    withdrawn bits, time range, subject, holds, batch) to stops and trips, by end time."""
    counts = {}
    for table in ("stops", "trips"):
        if dry_run:
            with tenant_session(sessions, tenant_id) as s:
                row = s.execute(sql.AGE_PENDING[table], params).one()
            counts[table] = {"aged": row.aged, "deleted": row.deleted}
            continue
        aged = deleted = 0
        while True:
            with tenant_session(sessions, tenant_id) as s:
                s.execute(AGEING, {"tenant_id": str(tenant_id)})
                row = s.execute(sql.AGE_BATCH[table], params).one()
            aged, deleted = aged + row.aged, deleted + row.deleted
            done = row.aged + row.deleted
            if done and budget is not None:
                budget.spend(done)
            if done < params["batch"]:
                break
        counts[table] = {"aged": aged, "deleted": deleted}
    if any(c["aged"] or c["deleted"] for c in counts.values()):
        log.info("travel aged", extra={"fields": {"tenant_id": str(tenant_id),
                                                  "dry_run": dry_run, **counts}})
    return counts
