"""Individual-level read SQL. Every query re-checks the purpose's bit and window, and
coarsens to the purpose's precision, whatever the scheduler has or has not done yet."""

from sqlalchemy import text

from govern.sql import zones

# A zone drawn after pings were stored hides them from reads at once (the cell the stored
# point stands for is tested); the next retention run deletes them (govern.sql.retention).
_OUTSIDE_ZONES = zones.visible("p.subject_id", "ST_X(p.geom)", "ST_Y(p.geom)", "p.precision_m",
                               "p.t", tenant="p.tenant_id")

# The stored point, coarsened when the purpose allows less than what is stored.
_POINT = """CASE WHEN p.precision_m >= :precision THEN p.geom
            ELSE govern_snap(ST_X(p.geom), ST_Y(p.geom), :precision) END"""

TRACK = text(
    f"""
    SELECT p.t AS at, p.device_id, p.client_key, ST_Y(g.pt) AS lat, ST_X(g.pt) AS lon,
           greatest(p.precision_m, :precision) AS precision_m
    FROM pings p CROSS JOIN LATERAL (SELECT {_POINT} AS pt) g
    WHERE p.subject_id = :subject_id
      AND p.purpose_mask & CAST(:bit AS bigint) <> 0
      AND p.t > :window_start AND p.t >= :t_from AND p.t < :t_to
      AND (p.t, p.device_id, p.client_key) > (:c_t, :c_device, :c_key)
      AND {_OUTSIDE_ZONES}
    ORDER BY p.t, p.device_id, p.client_key
    LIMIT :limit
    """
)

# Subjects whose consent for the purpose is active now (or that need none), not blocked;
# with their latest withdrawal of it (nothing recorded at or before it serves the purpose).
# Every table names the tenant: Citus routes the statement to one shard only so (and
# refuses its correlated subqueries otherwise).
READABLE_SUBJECTS = text(
    """
    SELECT s.subject_id, s.external_ref, s.display_name,
           (SELECT max(w.at) FROM consent_events w
            WHERE w.tenant_id = :tenant_id
              AND w.subject_id = s.subject_id AND w.purpose_id = :purpose_id
              AND w.status = 'withdrawn' AND w.at <= :now) AS withdrawn_until
    FROM subjects s
    WHERE s.tenant_id = :tenant_id AND NOT s.collection_blocked
      AND (NOT :requires_consent OR (
        SELECT c.status FROM consent_events c
        WHERE c.tenant_id = :tenant_id
          AND c.subject_id = s.subject_id AND c.purpose_id = :purpose_id AND c.at <= :now
        ORDER BY c.at DESC, c.seq DESC LIMIT 1) = 'granted')
      AND (CAST(:subject_id AS uuid) IS NULL OR s.subject_id = CAST(:subject_id AS uuid))
    """
)

LATEST = text(
    f"""
    SELECT s.subject_id, s.external_ref, s.display_name, l.t AS at, l.lat, l.lon, l.precision_m
    FROM unnest(CAST(:subject_ids AS uuid[]), CAST(:starts AS timestamptz[]))
         AS u(subject_id, window_start)
    JOIN subjects s ON s.tenant_id = :tenant_id AND s.subject_id = u.subject_id
    CROSS JOIN LATERAL (
      SELECT p.t, ST_Y(g.pt) AS lat, ST_X(g.pt) AS lon,
             greatest(p.precision_m, :precision) AS precision_m
      FROM pings p CROSS JOIN LATERAL (SELECT {_POINT} AS pt) g
      WHERE p.tenant_id = :tenant_id AND p.subject_id = s.subject_id
        AND p.purpose_mask & CAST(:bit AS bigint) <> 0
        AND p.t > u.window_start
        AND {_OUTSIDE_ZONES}
      ORDER BY p.t DESC LIMIT 1
    ) l
    ORDER BY s.external_ref
    """
)
