"""Retention SQL: one statement recomputes a bounded batch of pings set-wise.

For each candidate ping: purposes whose window closed (t <= cutoff) or that were withdrawn
are cleared from its mask; it is coarsened to the finest precision its remaining purposes
allow (re-snapped on the grid); with no purpose left it is deleted. Only pings that change
are selected, so repeating a batch is harmless and a killed run is finished by the next.
Every statement names its tenant (`:tenant_id`, in the modifying CTEs too), so Citus runs it
on the tenant's shard.
"""

from sqlalchemy import text

from govern.sql import consent, zones


def ageing_candidates(table: str, keys: str, time_col: str, extra: str = "",
                      limit: bool = True) -> str:
    """The ageing rule, set-wise, as CTEs ending in `changing`: the rows of `table` (alias x)
    whose mask loses purposes (window closed at `time_col`, or withdrawn: :extra_clear) or
    whose precision must coarsen to the finest its remaining purposes allow. One place for
    pings (by recorded time) and for stops and trips (by end time)."""
    return f"""
    rules AS (
      SELECT * FROM unnest(CAST(:bits AS int[]), CAST(:cutoffs AS timestamptz[]),
                           CAST(:precs AS int[])) AS r(bit, cutoff, prec)
    ),
    computed AS (
      SELECT {keys}, x.precision_m, x.purpose_mask{extra},
             x.purpose_mask & ~(CAST(:extra_clear AS bigint) | coalesce(
               (SELECT bit_or(1::bigint << r.bit) FROM rules r WHERE x.{time_col} <= r.cutoff),
               0)) AS new_mask
      FROM {table} x
      WHERE x.tenant_id = :tenant_id
        AND x.{time_col} > :t_from AND x.{time_col} <= :t_to
        AND (CAST(:subject_id AS uuid) IS NULL OR x.subject_id = CAST(:subject_id AS uuid))
        AND x.subject_id <> ALL(CAST(:held AS uuid[]))
        AND x.purpose_mask & CAST(:touch_bits AS bigint) <> 0
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
      {"LIMIT :batch" if limit else ""}
    )"""


_PING_KEYS = "x.tenant_id, x.device_id, x.t, x.client_key"

APPLY_BATCH = text(
    "WITH " + ageing_candidates("pings", _PING_KEYS, "t") + """,
    deleted AS (
      DELETE FROM pings p USING changing c
      WHERE p.t > :t_from AND p.t <= :t_to  -- lets the planner skip other day partitions
        AND c.new_mask = 0 AND p.tenant_id = :tenant_id AND p.tenant_id = c.tenant_id
        AND p.device_id = c.device_id
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
        AND c.new_mask <> 0 AND p.tenant_id = :tenant_id AND p.tenant_id = c.tenant_id
        AND p.device_id = c.device_id
        AND p.t = c.t AND p.client_key = c.client_key
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM aged) AS aged, (SELECT count(*) FROM deleted) AS deleted
    """
)

COUNT_PENDING = text(
    "WITH " + ageing_candidates("pings", _PING_KEYS, "t", limit=False) + """
    SELECT count(*) FILTER (WHERE new_mask <> 0) AS aged,
           count(*) FILTER (WHERE new_mask = 0) AS deleted
    FROM changing
    """
)

# -- privacy zones drawn after pings were stored ------------------------------------------------

UNSWEPT_ZONES = text(
    "SELECT zone_id, subject_id FROM zones WHERE tenant_id = :tenant_id AND swept_at IS NULL "
    "ORDER BY created_at, zone_id"
)

ZONES_FOR_SUBJECT = text(
    "SELECT zone_id, subject_id FROM zones WHERE tenant_id = :tenant_id "
    "AND (subject_id IS NULL OR subject_id = :subject_id) ORDER BY created_at, zone_id"
)

MARK_SWEPT = text("UPDATE zones SET swept_at = :now "
                  "WHERE tenant_id = :tenant_id AND zone_id = :zone_id")

# The pings a zone covers (its subject's, or everyone's for a tenant-wide zone), as reads
# test them (govern.sql.zones: the stored point's cell meets the hidden region, or the point
# lies in its trim). Held subjects are skipped.
_IN_ZONE = """
    doomed AS (
      SELECT p.tenant_id, p.device_id, p.t, p.client_key
      FROM pings p
      WHERE p.tenant_id = :tenant_id
        AND p.t > :t_from AND p.t <= :t_to
        AND (CAST(:subject_id AS uuid) IS NULL OR p.subject_id = CAST(:subject_id AS uuid))
        AND p.subject_id <> ALL(CAST(:held AS uuid[]))
        AND """ + zones.hidden("p.subject_id", "ST_X(p.geom)", "ST_Y(p.geom)", "p.precision_m",
                               "p.t", only_zone=":zone_id", tenant=":tenant_id") + """
      LIMIT :batch
    )"""

SWEEP_ZONE = text(
    "WITH " + _IN_ZONE + """
    DELETE FROM pings p USING doomed d
    WHERE p.t > :t_from AND p.t <= :t_to  -- lets the planner skip other day partitions
      AND p.tenant_id = :tenant_id AND p.tenant_id = d.tenant_id AND p.device_id = d.device_id
      AND p.t = d.t
      AND p.client_key = d.client_key
    """
)

COUNT_IN_ZONE = text("WITH " + _IN_ZONE.replace("LIMIT :batch", "") +
                     " SELECT count(*) FROM doomed")

# Stops at a place the zone hides, and trips starting or ending there, go with the pings.
_TRAVEL_IN_ZONE = """
    stops_in AS (
      SELECT st.subject_id, st.started_at FROM stops st
      WHERE st.tenant_id = :tenant_id
        AND (CAST(:subject_id AS uuid) IS NULL OR st.subject_id = CAST(:subject_id AS uuid))
        AND st.subject_id <> ALL(CAST(:held AS uuid[]))
        AND """ + zones.hidden("st.subject_id", "st.lon", "st.lat", "st.precision_m",
                               "st.started_at", only_zone=":zone_id", tenant=":tenant_id") + """
    ),
    trips_in AS (
      SELECT tr.subject_id, tr.started_at FROM trips tr
      WHERE tr.tenant_id = :tenant_id
        AND (CAST(:subject_id AS uuid) IS NULL OR tr.subject_id = CAST(:subject_id AS uuid))
        AND tr.subject_id <> ALL(CAST(:held AS uuid[]))
        AND (""" + zones.hidden("tr.subject_id", "tr.origin_lon", "tr.origin_lat",
                                "tr.precision_m", "tr.started_at", only_zone=":zone_id",
                                tenant=":tenant_id") + """
             OR """ + zones.hidden("tr.subject_id", "tr.dest_lon", "tr.dest_lat",
                                   "tr.precision_m", "tr.ended_at", only_zone=":zone_id",
                                   tenant=":tenant_id") + """)
    )"""

SWEEP_ZONE_TRAVEL = text(
    "WITH " + _TRAVEL_IN_ZONE + """,
    gone_stops AS (
      DELETE FROM stops st USING stops_in s
      WHERE st.tenant_id = :tenant_id AND st.subject_id = s.subject_id
        AND st.started_at = s.started_at
      RETURNING 1
    ),
    gone_trips AS (
      DELETE FROM trips tr USING trips_in t
      WHERE tr.tenant_id = :tenant_id AND tr.subject_id = t.subject_id
        AND tr.started_at = t.started_at
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone_stops) AS stops, (SELECT count(*) FROM gone_trips) AS trips
    """
)

COUNT_TRAVEL_IN_ZONE = text(
    "WITH " + _TRAVEL_IN_ZONE +
    " SELECT (SELECT count(*) FROM stops_in) AS stops, (SELECT count(*) FROM trips_in) AS trips"
)

ACTIVE_HOLDS = text(
    """
    SELECT hold_id, subject_id FROM legal_holds
    WHERE tenant_id = :tenant_id AND starts_at <= :now AND (ends_at IS NULL OR ends_at > :now)
    """
)

ENDED_HOLDS = text(
    """
    SELECT hold_id, subject_id FROM legal_holds WHERE tenant_id = :tenant_id
      AND ends_at IS NOT NULL AND ends_at <= :now AND caught_up_at IS NULL
    """
)

# The purposes a subject's consent stands withdrawn for at :now.
WITHDRAWN_PURPOSES = text(
    f"""
    SELECT p.purpose_id FROM purposes p
    WHERE {consent.status_at("p.tenant_id", ":subject_id", "p.purpose_id", ":now")}
          = 'withdrawn'
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

ENSURE_PARTITIONS = text(
    "SELECT count(*) FILTER (WHERE govern_ensure_ping_partition(d::date)) "
    "FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d"
)

# A due day partition is kept while an active hold covers some of its rows: one index probe
# per active hold (pings_subject_time leads with tenant_id, subject_id), not a scan of the
# day. psycopg placeholders; {part} is the partition's identifier.
PARTITION_HELD = """
    SELECT EXISTS (
      SELECT 1 FROM legal_holds h
      WHERE h.starts_at <= %(now)s AND (h.ends_at IS NULL OR h.ends_at > %(now)s)
        AND CASE WHEN h.subject_id IS NULL
                 THEN EXISTS (SELECT 1 FROM {part} p WHERE p.tenant_id = h.tenant_id)
                 ELSE EXISTS (SELECT 1 FROM {part} p WHERE p.tenant_id = h.tenant_id
                                                       AND p.subject_id = h.subject_id)
            END)
"""

# The evidence: each tenant's pings in the day, in one pass over the day.
PARTITION_COUNTS = "SELECT tenant_id, count(*) FROM {part} GROUP BY tenant_id"

PARTITION_DROP_EVIDENCE = """
    INSERT INTO retention_runs (tenant_id, run_id, entry, started_at, kind, cutoff, dropped,
                                details)
    VALUES (%(t)s, %(r)s, 0, %(started)s, 'partition_drop', %(cutoff)s, %(dropped)s,
            CAST(%(details)s AS jsonb))
"""

# Every partition of pings with its bounds [lower, upper) (NULLs for a DEFAULT partition).
PING_PARTITION_BOUNDS = text(
    """
    SELECT m.b[1]::timestamptz AS lower_bound, m.b[2]::timestamptz AS upper_bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                        'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS m(b)
           ON true
    WHERE i.inhparent = 'pings'::regclass
    ORDER BY 1
    """
)

# Summarize the BRIN ranges on received_at that VACUUM leaves unsummarized (the last,
# partial range of each day, and pages written since) in the partitions of days that have
# ended. Unsummarized ranges match every scan: the trips build that each retention run
# starts with ("which pings arrived since the last build?") would otherwise read the tail of
# every stored day, a cost that grows with the number of days kept. Today's partition is
# left alone, so ingest does not widen a summary with every insert, and so are the days
# about to be dropped.
SUMMARIZE_RECEIVED = text(
    """
    SELECT coalesce(sum(brin_summarize_new_values(i.inhrelid)), 0)
    FROM pg_inherits i JOIN pg_inherits t ON t.inhparent = 'pings'::regclass
         JOIN pg_index x ON x.indexrelid = i.inhrelid AND x.indrelid = t.inhrelid
         JOIN pg_class c ON c.oid = t.inhrelid
         CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                         'TO \\(''([^'']+)''\\)') AS m(b)
    WHERE i.inhparent = to_regclass('pings_received')  -- none if a migration drops it
      AND m.b[1]::timestamptz > :after AND m.b[1]::timestamptz <= :before
    """
)

# On a Citus coordinator the partitions above are empty shells: the rows, and the BRIN
# ranges to summarize, are in each partition's shards on the workers. The same days, each
# shard summarized where it lives (run_command_on_shards puts the shard's name for %s).
SHARD_BRIN_SUMMARIZE = ("SELECT coalesce(sum(brin_summarize_new_values(x.indexrelid)), 0) "
                        "FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid "
                        "JOIN pg_am a ON a.oid = ic.relam "
                        "WHERE x.indrelid = '%s'::regclass AND a.amname = 'brin'")
SUMMARIZE_RECEIVED_SHARDS = text(
    """
    SELECT coalesce(sum(r.result::bigint), 0)
    FROM pg_inherits i JOIN pg_inherits t ON t.inhparent = 'pings'::regclass
         JOIN pg_index x ON x.indexrelid = i.inhrelid AND x.indrelid = t.inhrelid
         JOIN pg_class c ON c.oid = t.inhrelid
         CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                         'TO \\(''([^'']+)''\\)') AS m(b)
         CROSS JOIN LATERAL run_command_on_shards(c.oid::regclass, :command) AS r
    WHERE i.inhparent = to_regclass('pings_received')
      AND m.b[1]::timestamptz > :after AND m.b[1]::timestamptz <= :before AND r.success
    """
)

# Every tenant's purposes' windows (the owner's connection sees them all).
PURPOSE_WINDOWS = text("SELECT retention_days, window_floor FROM purposes")

# Partition drops run on the owner's raw psycopg connection (psycopg.sql composes the name);
# the evidence rows are written under RLS as each tenant, like every other run entry.
DROP_PARTITION = "DROP TABLE {part}"

# ---- a tenant's run: where the last one left off, and its evidence ----------------------------

RETENTION_STATE = text(
    "SELECT purpose_id, aged_until, precision_applied FROM retention_state "
    "WHERE tenant_id = :tenant_id")

# The consent ledger's sequence number up to which withdrawals are applied to stored data.
CONSENT_SEQ_APPLIED = text("SELECT consent_seq_applied FROM tenants "
                           "WHERE tenant_id = :tenant_id")
SET_CONSENT_SEQ_APPLIED = text("UPDATE tenants SET consent_seq_applied = :seq "
                               "WHERE tenant_id = :tenant_id")

# An ended hold whose paused work is done: ENDED_HOLDS stops listing it.
MARK_HOLD_CAUGHT_UP = text("UPDATE legal_holds SET caught_up_at = :now "
                           "WHERE tenant_id = :tenant_id AND hold_id = :h")

# What AGE_ROLLUPS would delete (a dry run).
COUNT_OLD_ROLLUPS = text("SELECT count(*) FROM rollups "
                         "WHERE tenant_id = :tenant_id AND bucket < :c")

# Progress per purpose; NULL leaves a field as it was (aged_until starts at the epoch).
SAVE_STATE = text(
    "INSERT INTO retention_state (tenant_id, purpose_id, aged_until, precision_applied) "
    "VALUES (:t, :p, coalesce(CAST(:a AS timestamptz), '1970-01-01 00:00:00+00'), "
    "CAST(:pr AS int)) ON CONFLICT (tenant_id, purpose_id) DO UPDATE SET "
    "aged_until = coalesce(CAST(:a AS timestamptz), retention_state.aged_until), "
    "precision_applied = coalesce(CAST(:pr AS int), retention_state.precision_applied)")

RUN_ENTRY = text(
    "INSERT INTO retention_runs (tenant_id, run_id, entry, started_at, kind, "
    "purpose_key, cutoff, aged, deleted, dropped, details) VALUES (:t, :r, :n, "
    ":started, :kind, :key, :cutoff, :aged, :deleted, :dropped, "
    "CAST(:details AS jsonb))")

# The evidence, newest run first; either bound may be NULL (open).
RUN_LIST = text(
    "SELECT run_id, started_at, finished_at, kind, purpose_key, cutoff, aged, deleted, "
    "dropped, details FROM retention_runs WHERE tenant_id = :tenant_id "
    "AND (CAST(:f AS timestamptz) IS NULL OR started_at >= :f) "
    "AND (CAST(:to AS timestamptz) IS NULL OR started_at < :to) "
    "ORDER BY started_at DESC, run_id, entry LIMIT :limit")
