"""Ingest diagnostics SQL: one statement per request records what became of it, set-wise.

The hourly counters and the device's state are two upserts in one statement, in the ingest's
own transaction: counted exactly when the pings are committed, and never when they are not.
Maps by reason add up key by key in SQL, so concurrent requests of one device queue on the
row lock instead of overwriting each other. It is not folded into the store statement
(govern.sql.pings.STORE_BATCH): that one runs only when some ping passed the door, and the
counts need its result (how many were stored, how many fell in a zone). Its count helpers
are PL/pgSQL (migration 0019): as SQL functions they were planned again at every call, and the
statement's mean under bench/single.py's OwnTracks load fell from 0.807 ms to 0.107 ms.
"""

from sqlalchemy import text

# The last refusals a device keeps (newest first).
REFUSALS_KEPT = 20
# Hourly rows older than this are pruned by the first request of each new device-hour.
HOURLY_KEPT = "7 days"


def _add_maps(old: str, new: str) -> str:
    """jsonb {key: count} + jsonb {key: count}, key by key; most requests add nothing.
    A function (migration 0016), not a subquery: Citus refuses subqueries in an upsert."""
    return f"govern_add_counts({old}, {new})"


RECORD = text(
    f"""
    WITH hourly AS (
      INSERT INTO ingest_hourly AS h (tenant_id, device_id, hour, requests, accepted,
                                      duplicates, ignored, server_time, dropped, rejected,
                                      refused)
      VALUES (:tenant_id, :device_id, date_trunc('hour', CAST(:now AS timestamptz), 'UTC'), 1,
              :accepted, :duplicates, :ignored, :server_time, CAST(:dropped AS jsonb),
              CAST(:rejected AS jsonb), CAST(:refused AS jsonb))
      ON CONFLICT (tenant_id, device_id, hour) DO UPDATE SET
        requests = h.requests + 1,
        accepted = h.accepted + EXCLUDED.accepted,
        duplicates = h.duplicates + EXCLUDED.duplicates,
        ignored = h.ignored + EXCLUDED.ignored,
        server_time = h.server_time + EXCLUDED.server_time,
        dropped = {_add_maps("h.dropped", "EXCLUDED.dropped")},
        rejected = {_add_maps("h.rejected", "EXCLUDED.rejected")},
        refused = {_add_maps("h.refused", "EXCLUDED.refused")}
      RETURNING (xmax = 0) AS fresh
    ), pruned AS (
      DELETE FROM ingest_hourly o
      WHERE (SELECT fresh FROM hourly) AND o.tenant_id = :tenant_id
        AND o.device_id = :device_id
        AND o.hour < CAST(:now AS timestamptz) - interval '{HOURLY_KEPT}'
      RETURNING 1
    )
    INSERT INTO ingest_state AS s (tenant_id, device_id, last_request_at, last_accepted_at,
                                   refused_streak, refusals)
    VALUES (:tenant_id, :device_id, :now, CAST(:accepted_at AS timestamptz),
            CASE WHEN CAST(:streak AS text) = 'grow' THEN 1 ELSE 0 END, CAST(:refusals AS jsonb))
    ON CONFLICT (tenant_id, device_id) DO UPDATE SET
      last_request_at = greatest(s.last_request_at, EXCLUDED.last_request_at),
      last_accepted_at = greatest(s.last_accepted_at, EXCLUDED.last_accepted_at),
      -- searched CASE, not CASE :streak WHEN: Citus deparses the simple form's parameter
      -- wrongly on the shard ("operator does not exist: text = boolean")
      refused_streak = CASE WHEN CAST(:streak AS text) = 'reset' THEN 0
                            WHEN CAST(:streak AS text) = 'grow' THEN s.refused_streak + 1
                            ELSE s.refused_streak END,
      refusals = govern_keep_refusals(EXCLUDED.refusals, s.refusals, {REFUSALS_KEPT})
    """
)

# The hourly rows of one device inside a window (at most 24 of them).
HOURLY = text(
    """
    SELECT hour, requests, accepted, duplicates, ignored, server_time, dropped, rejected,
           refused
    FROM ingest_hourly
    WHERE tenant_id = :tenant_id AND device_id = :device_id AND hour >= :since AND hour <= :now
    ORDER BY hour
    """
)

STATE = text(
    """
    SELECT last_request_at, last_accepted_at, refused_streak, refusals
    FROM ingest_state WHERE tenant_id = :tenant_id AND device_id = :device_id
    """
)

STREAKS = text(
    """
    SELECT device_id, refused_streak, last_accepted_at FROM ingest_state
    WHERE tenant_id = :tenant_id AND device_id = ANY(CAST(:device_ids AS uuid[]))
    """
)
