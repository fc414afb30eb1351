"""Ping partitions (as the schema owner): day partitions made ahead, whole days dropped once
they are past every tenant's longest window, unless a legal hold keeps rows in them."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from psycopg import sql as psql
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from govern import jsontext
from govern.clock import NEVER
from govern.db import tenant_scope_sql
from govern.policy.cutoffs import window_start
from govern.sql import retention as sql
from govern.sql.distribution import is_citus_coordinator

log = logging.getLogger("govern.retention")


def maintain_partitions(owner: Engine, sessions: sessionmaker, now: dt.datetime, *,
                        ahead_days: int = 7, dry_run: bool = False) -> dict:
    """Create day partitions ahead; drop whole days past every tenant's longest window,
    unless a legal hold keeps a subject's rows in them. Evidence per tenant. Then summarize
    the arrival-time BRIN of the days that have ended (see sql.SUMMARIZE_RECEIVED).

    Each due day is one transaction: the hold check (an index probe per active hold), one
    grouped count of the day's pings per tenant for the evidence, the DROP and the
    `partition_drop` evidence rows commit together, so a day is never dropped without its
    evidence nor recorded as dropped when it was not. `sessions` is kept for the callers;
    the evidence is written on the owner's connection."""
    created = dropped = 0
    today = now.date()
    with owner.begin() as conn:
        if not dry_run:
            created = conn.execute(sql.ENSURE_PARTITIONS, {
                "first": today - dt.timedelta(days=1),
                "last": today + dt.timedelta(days=ahead_days)}).scalar()
        # the earliest window start of every tenant's purposes: a day that ended before it
        # serves no purpose of anyone's
        starts = [window_start(w.retention_days, w.window_floor, now)
                  for w in conn.execute(sql.PURPOSE_WINDOWS)]
        cutoff = min(starts, default=NEVER)
        if not dry_run:  # the days that have ended and stay
            days = {"after": cutoff, "before": dt.datetime.combine(today, dt.time(0), dt.UTC)}
            conn.execute(sql.SUMMARIZE_RECEIVED, days)
            if is_citus_coordinator(conn):  # the rows are in the shards, on the workers
                conn.execute(sql.SUMMARIZE_RECEIVED_SHARDS,
                             {**days, "command": sql.SHARD_BRIN_SUMMARIZE})
        partitions = conn.execute(sql.PING_PARTITIONS).all()
    due = [p for p in partitions if starts and p.upper_bound <= cutoff]
    for part in due:
        with owner.begin() as conn:
            raw = conn.connection.driver_connection
            name = psql.Identifier(part.name)
            held = raw.execute(psql.SQL(sql.PARTITION_HELD).format(part=name),
                               {"now": now}).fetchone()[0]
            if held:
                log.info("partition kept for a legal hold", extra={"fields": {
                    "partition": part.name}})
                continue
            counts = raw.execute(psql.SQL(sql.PARTITION_COUNTS).format(part=name)).fetchall()
            if not dry_run:
                raw.execute(psql.SQL(sql.DROP_PARTITION).format(part=name))
                for tenant_id, n in counts:  # under RLS as the tenant, like _finish()
                    raw.execute(tenant_scope_sql(tenant_id))
                    raw.execute(sql.PARTITION_DROP_EVIDENCE, {
                        "t": tenant_id, "r": uuid.uuid4(), "started": now,
                        "cutoff": part.upper_bound, "dropped": n,
                        "details": jsontext.dumps({"partition": part.name})})
        dropped += 1
    return {"created": created, "dropped": dropped}
