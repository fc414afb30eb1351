"""Ingest SQL: the door's context in one query, and one statement per batch for the zone
test, the snapped insert and the rollup upsert (the batch as one JSON document)."""

from sqlalchemy import text

from govern.sql import zones

# Everything the door needs about one subject, in one round trip: the subject, the policy
# now, the live purposes, the subject's consent ledger and duty events (in order), and
# whether any privacy zone could apply (tenant-wide or the subject's). Every table names the
# session's tenant (:tenant_id), so each uses its primary key and on Citus the statement
# routes to the tenant's one shard; row-level security scopes them the same way.
LOAD_CONTEXT = text(
    """
    SELECT s.timezone, s.collection_windows, s.collection_blocked,
           (SELECT v.policy FROM policy_versions v WHERE v.tenant_id = :tenant_id
            ORDER BY v.version DESC LIMIT 1) AS policy,
           p.*, c.*, d.*,
           EXISTS (SELECT 1 FROM zones z WHERE z.tenant_id = :tenant_id
                   AND (z.subject_id IS NULL OR z.subject_id = s.subject_id)) AS zones_apply
    FROM subjects s
    CROSS JOIN LATERAL (
      SELECT array_agg(key) AS p_key, array_agg(bit) AS p_bit,
             array_agg(requires_consent) AS p_consent, array_agg(precision_m) AS p_precision,
             array_agg(retention_days) AS p_retention, array_agg(aggregate_use) AS p_aggregate,
             array_agg(window_floor) AS p_floor
      FROM purposes WHERE tenant_id = :tenant_id AND archived_at IS NULL) p
    CROSS JOIN LATERAL (
      SELECT array_agg(pu.key ORDER BY e.at, e.seq) AS c_key,
             array_agg(e.status ORDER BY e.at, e.seq) AS c_status,
             array_agg(e.at ORDER BY e.at, e.seq) AS c_at,
             array_agg(e.seq ORDER BY e.at, e.seq) AS c_seq
      FROM consent_events e
      JOIN purposes pu ON pu.tenant_id = :tenant_id AND pu.purpose_id = e.purpose_id
                      AND pu.archived_at IS NULL
      WHERE e.tenant_id = :tenant_id AND e.subject_id = s.subject_id) c
    CROSS JOIN LATERAL (
      SELECT array_agg(at ORDER BY at, seq) AS d_at, array_agg(on_duty ORDER BY at, seq) AS d_on
      FROM duty_events WHERE tenant_id = :tenant_id AND subject_id = s.subject_id) d
    WHERE s.tenant_id = :tenant_id AND s.subject_id = :s
    """
)

# One statement per batch: drop the pings inside a privacy zone (tenant-wide or the
# subject's), store the rest at their precision, feed the hourly cell rollups with the ones
# actually stored. The raw coordinates exist only inside this statement; altitude is
# coarsened on the same step as the position. The batch travels as one JSON document,
# expanded by PostgreSQL in C (binding a dozen Python lists as array parameters cost more
# than the rest of the statement); as json, not jsonb: json_to_recordset reads the text once,
# where a cast to jsonb first builds the binary document (500 pings: 2.8 ms against 4.0).
#
# `srv` is true for a ping timed by the server (its client sent no time).
#
# `cell` is the H3 cell (resolution 9) of the stored position, named by Python from the
# reference grid (the same numbers as govern_snap) for pings serving an aggregate purpose;
# its coarser parents are bit operations on the H3 index (resolution in bits 52-55, the
# digits of finer resolutions set to 7). A retried ping (ON CONFLICT) feeds nothing, and of
# two pings with the same key in one batch only the first, the one stored, counts. The
# rollup rows are written in (bucket, cell) order: two batches crossing the same cells lock
# them in the same order, so concurrent upserts queue instead of deadlocking.
_STORE_BATCH = """
WITH u AS MATERIALIZED (
  SELECT *
  FROM json_to_recordset(CAST(:rows AS json))
       AS u(i int, t timestamptz, k text, mask bigint, p int, lon float8, lat float8,
            acc float8, alt float8, speed float8, heading float8, battery float8,
            activity text, cell bigint, srv boolean)
), zoned AS MATERIALIZED (
  {zoned}
), kept AS MATERIALIZED (
  SELECT u.* FROM u WHERE NOT EXISTS (SELECT 1 FROM zoned WHERE zoned.i = u.i)
), ins AS (
  INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask,
                     precision_m, geom, acc, alt, speed, heading, battery, activity,
                     server_time)
  SELECT :tenant_id, :device_id, :subject_id, u.t, u.k, u.mask, u.p,
         govern_snap(u.lon, u.lat, u.p),
         greatest(u.acc, u.p), round(u.alt / u.p) * u.p, round(u.speed::numeric, 1),
         round(u.heading), round(u.battery), u.activity, coalesce(u.srv, false)
  FROM kept u
  ORDER BY u.i
  ON CONFLICT DO NOTHING
  RETURNING t, client_key
), cells AS (
  SELECT date_trunc('hour', f.t, 'UTC') AS bucket, f.cell, count(*) AS n
  FROM ins
  JOIN (SELECT DISTINCT ON (t, k) t, k, cell FROM kept ORDER BY t, k, i) f
    ON f.t = ins.t AND f.k = ins.client_key
  WHERE f.cell IS NOT NULL
  GROUP BY 1, 2
), rolled AS (
  INSERT INTO rollups AS r (tenant_id, bucket, cell, r8, r7, r6, r5, pings, subjects)
  SELECT :tenant_id, c.bucket, c.cell,
         (c.cell & ~(15::bigint << 52)) | (8::bigint << 52) | ((1::bigint << 21) - 1),
         (c.cell & ~(15::bigint << 52)) | (7::bigint << 52) | ((1::bigint << 24) - 1),
         (c.cell & ~(15::bigint << 52)) | (6::bigint << 52) | ((1::bigint << 27) - 1),
         (c.cell & ~(15::bigint << 52)) | (5::bigint << 52) | ((1::bigint << 30) - 1),
         c.n, hll_add(hll_empty(), hll_hash_text(CAST(:subject_id AS text)))
  FROM cells c
  ORDER BY c.bucket, c.cell
  ON CONFLICT (tenant_id, bucket, cell) DO UPDATE
    SET pings = r.pings + EXCLUDED.pings,
        subjects = hll_union(r.subjects, EXCLUDED.subjects)
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS stored, (SELECT array_agg(i ORDER BY i) FROM zoned) AS zoned,
       (SELECT count(*) FROM rolled) AS cells
"""

# The zone predicate on the point as it would be stored (snapped, at its precision): what
# the door keeps, reads show (govern.sql.zones).
STORE_BATCH = text(_STORE_BATCH.format(zoned="""SELECT u.i FROM u
  CROSS JOIN LATERAL (SELECT govern_snap(u.lon, u.lat, u.p) AS g) s
  WHERE """ + zones.hidden("CAST(:subject_id AS uuid)", "ST_X(s.g)", "ST_Y(s.g)", "u.p",
                          "u.t", tenant="CAST(:tenant_id AS uuid)")))

# The same, for a tenant with no zone that could apply to the subject.
STORE_BATCH_NO_ZONES = text(_STORE_BATCH.format(zoned="SELECT NULL::int AS i WHERE false"))

ENSURE_PARTITION = text("SELECT govern_ensure_ping_partition(CAST(:day AS date))")

TOUCH_DEVICE = text(
    "UPDATE devices SET last_seen_at = now() "
    "WHERE tenant_id = :tenant_id AND device_id = :device_id"
)
