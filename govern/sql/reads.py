"""Individual-level read SQL. Every query re-checks the purpose's bit and window, and
coarsens to the purpose's precision, whatever the scheduler has or has not done yet."""

from sqlalchemy import text

from govern.sql import consent, trips, zones

# A zone drawn after pings were stored hides them from reads at once (the cell the stored
# point stands for is tested); the next retention run deletes them (govern.sql.retention).
# Every statement here names its tenant (`:tenant_id`, in every table and subquery): Citus
# routes it to the tenant's shard only so, and refuses the zone subquery beside a lateral
# join or a set-returning function when it names the tenant through a column.
_OUTSIDE_ZONES = zones.visible("p.subject_id", "ST_X(p.geom)", "ST_Y(p.geom)", "p.precision_m",
                               "p.t", tenant=":tenant_id")

# The stored point, coarsened when the purpose allows less than what is stored.
_POINT = """CASE WHEN p.precision_m >= :precision THEN p.geom
            ELSE govern_snap(ST_X(p.geom), ST_Y(p.geom), :precision) END"""

TRACK = text(
    f"""
    SELECT p.t AS at, p.device_id, p.client_key, ST_Y(g.pt) AS lat, ST_X(g.pt) AS lon,
           greatest(p.precision_m, :precision) AS precision_m
    FROM pings p CROSS JOIN LATERAL (SELECT {_POINT} AS pt) g
    WHERE p.tenant_id = :tenant_id AND p.subject_id = :subject_id
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
    f"""
    SELECT s.subject_id, s.external_ref, s.display_name,
           {consent.withdrawn_until(":tenant_id", "s.subject_id", ":purpose_id", ":now")}
             AS withdrawn_until
    FROM subjects s
    WHERE s.tenant_id = :tenant_id AND NOT s.collection_blocked
      AND (NOT :requires_consent
           OR {consent.granted_at(":tenant_id", "s.subject_id", ":purpose_id", ":now")})
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


# A subject's travel (stops and trips built by govern.domain.trips).
_END = """CASE WHEN x.precision_m >= :precision THEN ST_SetSRID(ST_MakePoint(x.{0}_lon,
          x.{0}_lat), 4326) ELSE govern_snap(x.{0}_lon, x.{0}_lat, :precision) END"""

# A subject's trips that serve the purpose now and start and end where no privacy zone hides
# them (a zone drawn since the build hides them at once), ends coarsened to the purpose's
# precision and their site read from the coarsened point.
SUBJECT_TRIPS = text(
    f"""
    SELECT x.started_at, x.ended_at, x.duration_s, x.moving_s, x.distance_m,
           (x.started_at AT TIME ZONE :tz)::date AS day,
           ST_X(o.g) AS origin_lon, ST_Y(o.g) AS origin_lat,
           (SELECT name FROM sites WHERE tenant_id = :tenant_id
                                    AND site_id = ({trips.site_at("ST_X(o.g)", "ST_Y(o.g)")}))
             AS origin_site,
           ST_X(d.g) AS dest_lon, ST_Y(d.g) AS dest_lat,
           (SELECT name FROM sites WHERE tenant_id = :tenant_id
                                    AND site_id = ({trips.site_at("ST_X(d.g)", "ST_Y(d.g)")}))
             AS dest_site,
           greatest(x.precision_m, :precision) AS precision_m
    FROM trips x
    CROSS JOIN LATERAL (SELECT {_END.format("origin")} AS g) o
    CROSS JOIN LATERAL (SELECT {_END.format("dest")} AS g) d
    WHERE x.tenant_id = :tenant_id AND x.subject_id = :subject_id
      AND x.purpose_mask & CAST(:bit AS bigint) <> 0
      AND x.started_at > :window_start AND x.started_at >= :t_from AND x.started_at < :t_to
      AND {zones.visible("x.subject_id", "x.origin_lon", "x.origin_lat", "x.precision_m",
                         "x.started_at", tenant=":tenant_id")}
      AND {zones.visible("x.subject_id", "x.dest_lon", "x.dest_lat", "x.precision_m",
                         "x.ended_at", tenant=":tenant_id")}
    ORDER BY x.started_at
    """
)
