"""Ingest SQL: zone test, snapped insert, rollup upsert. Each takes whole-batch arrays."""

from sqlalchemy import text

# Which of the batch's raw positions lie in a privacy zone (tenant-wide or the subject's).
# Batches travel as one JSON document each, expanded by PostgreSQL in C: binding a dozen
# Python lists as array parameters cost more than the rest of the statement.
IN_ZONES = text(
    """
    SELECT u.i
    FROM jsonb_to_recordset(CAST(:points AS jsonb)) AS u(lon float8, lat float8, i int)
    WHERE EXISTS (
      SELECT 1 FROM zones z
      WHERE (z.subject_id IS NULL OR z.subject_id = :subject_id)
        AND ST_Intersects(z.area, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326))
    )
    """
)

# Store at the ping's precision: the raw coordinates exist only inside this statement.
# Altitude is coarsened on the same step as the position.
INSERT_PINGS = text(
    """
    INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask,
                       precision_m, geom, acc, alt, speed, heading, battery, activity)
    SELECT :tenant_id, :device_id, :subject_id, u.t, u.k, u.mask, u.p,
           govern_snap(u.lon, u.lat, u.p),
           greatest(u.acc, u.p), round(u.alt / u.p) * u.p, round(u.speed::numeric, 1),
           round(u.heading), round(u.battery), u.activity
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS u(t timestamptz, k text, mask bigint, p int, lon float8, lat float8, acc float8,
              alt float8, speed float8, heading float8, battery float8, activity text)
    ON CONFLICT DO NOTHING
    RETURNING t, purpose_mask, ST_X(geom) AS lon, ST_Y(geom) AS lat
    """
)

# Add the batch's new pings to the hourly cell rollups (count and distinct-subject sketch).
UPSERT_ROLLUPS = text(
    """
    INSERT INTO rollups AS r (tenant_id, bucket, cell, r8, r7, r6, r5, pings, subjects)
    SELECT :tenant_id, u.bucket, u.cell, u.r8, u.r7, u.r6, u.r5, u.n,
           hll_add(hll_empty(), hll_hash_text(CAST(:subject_id AS text)))
    FROM jsonb_to_recordset(CAST(:cells AS jsonb))
         AS u(bucket timestamptz, cell bigint, r8 bigint, r7 bigint, r6 bigint, r5 bigint,
              n bigint)
    ORDER BY u.bucket, u.cell
    ON CONFLICT (tenant_id, bucket, cell) DO UPDATE
      SET pings = r.pings + EXCLUDED.pings,
          subjects = hll_union(r.subjects, EXCLUDED.subjects)
    """
)

ENSURE_PARTITION = text("SELECT govern_ensure_ping_partition(CAST(:day AS date))")

TOUCH_DEVICE = text(
    "UPDATE devices SET last_seen_at = now() "
    "WHERE tenant_id = :tenant_id AND device_id = :device_id"
)
