"""Ingest SQL: zone test, snapped insert, rollup upsert. Each takes whole-batch arrays."""

from sqlalchemy import text

# Which of the batch's raw positions lie in a privacy zone (tenant-wide or the subject's).
IN_ZONES = text(
    """
    SELECT u.i
    FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[]), CAST(:i AS int[]))
         AS u(lon, lat, i)
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
    FROM unnest(CAST(:t AS timestamptz[]), CAST(:k AS text[]), CAST(:mask AS bigint[]),
                CAST(:p AS int[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]),
                CAST(:acc AS float8[]), CAST(:alt AS float8[]), CAST(:speed AS float8[]),
                CAST(:heading AS float8[]), CAST(:battery AS float8[]),
                CAST(:activity AS text[]))
         AS u(t, k, mask, p, lon, lat, acc, alt, speed, heading, battery, activity)
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
    FROM unnest(CAST(:bucket AS timestamptz[]), CAST(:cell AS bigint[]), CAST(:r8 AS bigint[]),
                CAST(:r7 AS bigint[]), CAST(:r6 AS bigint[]), CAST(:r5 AS bigint[]),
                CAST(:n AS bigint[]))
         AS u(bucket, cell, r8, r7, r6, r5, n)
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
