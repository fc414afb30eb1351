"""Retention SQL: one statement recomputes a bounded batch of pings set-wise.

For each candidate ping: purposes whose window closed (t <= cutoff) or that were withdrawn
are cleared from its mask; it is coarsened to the finest precision its remaining purposes
allow (re-snapped on the grid); with no purpose left it is deleted. Only pings that change
are selected, so repeating a batch is harmless and a killed run is finished by the next.
"""

from sqlalchemy import text

_CANDIDATES = """
    rules AS (
      SELECT * FROM unnest(CAST(:bits AS int[]), CAST(:cutoffs AS timestamptz[]),
                           CAST(:precs AS int[])) AS r(bit, cutoff, prec)
    ),
    computed AS (
      SELECT p.tenant_id, p.device_id, p.t, p.client_key, p.precision_m, p.purpose_mask,
             p.purpose_mask & ~(CAST(:extra_clear AS bigint) | coalesce(
               (SELECT bit_or(1::bigint << r.bit) FROM rules r WHERE p.t <= r.cutoff), 0))
               AS new_mask
      FROM pings p
      WHERE p.tenant_id = :tenant_id
        AND p.t > :t_from AND p.t <= :t_to
        AND (CAST(:subject_id AS uuid) IS NULL OR p.subject_id = CAST(:subject_id AS uuid))
        AND p.subject_id <> ALL(CAST(:held AS uuid[]))
        AND p.purpose_mask & CAST(:touch_bits AS bigint) <> 0
    ),
    cand AS (
      SELECT c.*, greatest(c.precision_m, (SELECT min(r.prec) FROM rules r
                                           WHERE c.new_mask & (1::bigint << r.bit) <> 0))
               AS new_precision
      FROM computed c
    ),
    changing AS (
      SELECT * FROM cand
      WHERE new_mask <> purpose_mask OR new_precision > precision_m
      LIMIT :batch
    )
"""

APPLY_BATCH = text(
    "WITH " + _CANDIDATES + """,
    deleted AS (
      DELETE FROM pings p USING changing c
      WHERE p.t > :t_from AND p.t <= :t_to  -- lets the planner skip other day partitions
        AND c.new_mask = 0 AND p.tenant_id = c.tenant_id AND p.device_id = c.device_id
        AND p.t = c.t AND p.client_key = c.client_key
      RETURNING 1
    ),
    aged AS (
      UPDATE pings p SET
        purpose_mask = c.new_mask,
        precision_m = c.new_precision,
        geom = CASE WHEN c.new_precision > p.precision_m
                    THEN govern_snap(ST_X(p.geom), ST_Y(p.geom), c.new_precision)
                    ELSE p.geom END,
        alt = CASE WHEN c.new_precision > p.precision_m
                   THEN round(p.alt / c.new_precision) * c.new_precision ELSE p.alt END,
        acc = greatest(p.acc, c.new_precision)
      FROM changing c
      WHERE p.t > :t_from AND p.t <= :t_to
        AND c.new_mask <> 0 AND p.tenant_id = c.tenant_id AND p.device_id = c.device_id
        AND p.t = c.t AND p.client_key = c.client_key
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM aged) AS aged, (SELECT count(*) FROM deleted) AS deleted
    """
)

COUNT_PENDING = text(
    "WITH " + _CANDIDATES.replace("LIMIT :batch", "") + """
    SELECT count(*) FILTER (WHERE new_mask <> 0) AS aged,
           count(*) FILTER (WHERE new_mask = 0) AS deleted
    FROM changing
    """
)

ACTIVE_HOLDS = text(
    """
    SELECT hold_id, subject_id FROM legal_holds
    WHERE starts_at <= :now AND (ends_at IS NULL OR ends_at > :now)
    """
)

ENDED_HOLDS = text(
    """
    SELECT hold_id, subject_id FROM legal_holds
    WHERE ends_at IS NOT NULL AND ends_at <= :now AND caught_up_at IS NULL
    """
)

NEW_WITHDRAWALS = text(
    """
    SELECT DISTINCT ON (c.subject_id, c.purpose_id) c.subject_id, c.purpose_id, c.seq
    FROM consent_events c
    WHERE c.seq > :after_seq AND c.status = 'withdrawn'
    ORDER BY c.subject_id, c.purpose_id, c.seq DESC
    """
)

CURRENT_STATUS = text(
    """
    SELECT status FROM consent_events
    WHERE subject_id = :subject_id AND purpose_id = :purpose_id AND at <= :now
    ORDER BY at DESC, seq DESC LIMIT 1
    """
)

AGE_ROLLUPS = text(
    """
    WITH doomed AS (
      SELECT tenant_id, bucket, cell FROM rollups
      WHERE tenant_id = :tenant_id AND bucket < :cutoff LIMIT :batch
    )
    DELETE FROM rollups r USING doomed d
    WHERE r.tenant_id = d.tenant_id AND r.bucket = d.bucket AND r.cell = d.cell
    """
)

# -- partitions (run as the schema owner) ------------------------------------------------------

PING_PARTITIONS = text(
    """
    SELECT c.relname AS name,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]
             ::timestamptz AS upper_bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'pings'::regclass
    ORDER BY upper_bound
    """
)

LONGEST_WINDOW_DAYS = text("SELECT max(retention_days) FROM purposes")

TENANT_IDS = text("SELECT tenant_id FROM tenants ORDER BY tenant_id")
