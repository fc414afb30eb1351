"""Trip-building SQL: the pings a build needs (with geography step lengths), set-wise
writes of stops and trips, and site attribution. Their ageing is govern.sql.travel_ageing,
the aggregate reports over them govern.sql.travel_reports, a subject's own travel
govern.sql.reads.

Stops and trips are location data: every statement here runs in a tenant-scoped session
under row-level security, like the pings they come from, and names its tenant
(`:tenant_id`) besides, so Citus routes it to the tenant's shard."""

from __future__ import annotations

from sqlalchemy import text

from govern.sql import zones

# ---- building --------------------------------------------------------------------------------

# Pings may only be taken up to the start of the oldest transaction still open (a ping's
# received_at is its inserting transaction's start, so nothing older can still commit).
HORIZON = text(
    """
    SELECT least(clock_timestamp(), coalesce(
      (SELECT min(a.xact_start) FROM pg_stat_activity a
       WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
         AND a.xact_start IS NOT NULL), 'infinity'))
    """
)

WATERMARK = text("SELECT received_until FROM trip_builds WHERE tenant_id = :tenant_id")

# Subjects with pings that arrived in [since, horizon), and the earliest time among them.
# The BRIN index on received_at leaves little to read in each day partition, so the scan runs
# without parallel workers (SERIAL_SCAN first, in the same transaction): a parallel plan
# over every stored day costs more to plan and start than it reads (measured at 118
# partitions: 20 ms planning + 36 ms run in parallel, 4 + 6 ms serial, and up to a second
# a run at 110 partitions of 50,000 pings), and every retention run starts with this build.
SERIAL_SCAN = text("SET LOCAL max_parallel_workers_per_gather = 0")
CHANGED_SUBJECTS = text(
    """
    SELECT subject_id, min(t) AS t0, count(*) AS n
    FROM pings
    WHERE tenant_id = :tenant_id AND received_at >= :since AND received_at < :horizon
    GROUP BY subject_id
    ORDER BY subject_id
    """
)

# One builder per subject at a time; a subject being erased (blocked first) is left alone,
# and the share lock makes erasure wait for a build already under way.
LOCK_SUBJECT = text(
    """
    SELECT pg_advisory_xact_lock(hashtextextended('govern.trips:' || CAST(:s AS text), 0))
    """
)
# Builds share, and ageing takes exclusively, a per-tenant lock: a build that read pings
# before retention stripped them commits before the ageing pass over travel starts.
BUILDING = text("SELECT pg_advisory_xact_lock_shared(hashtextextended("
                "'govern.trips-age:' || CAST(:tenant_id AS text), 0))")
AGEING = text("SELECT pg_advisory_xact_lock(hashtextextended("
              "'govern.trips-age:' || CAST(:tenant_id AS text), 0))")
SUBJECT_OPEN = text(
    "SELECT NOT collection_blocked FROM subjects WHERE tenant_id = :tenant_id "
    "AND subject_id = :s FOR SHARE"
)

# Rebuild from the last stop that ended before the earliest new ping.
RESTART_POINT = text(
    """
    SELECT started_at FROM stops
    WHERE tenant_id = :tenant_id AND subject_id = :s AND ended_at < :t0
    ORDER BY started_at DESC LIMIT 1
    """
)

# The subject's pings from `t_from`, in time order, with the geodesic length (WGS84
# spheroid) of the step from the previous ping, and whether it lies within :near_m (the
# stay radius) of a privacy zone's reach. Only the pings no privacy zone hides: a trip's
# ends are trimmed as its track is (govern.sql.zones).
SUBJECT_PINGS = text(
    """
    SELECT extract(epoch FROM p.t)::float8 AS t, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
           p.purpose_mask, p.precision_m,
           coalesce(ST_Distance(p.geom::geography,
                                (lag(p.geom) OVER w)::geography), 0) AS step_m,
           {near} AS near_zone
    FROM pings p
    WHERE p.tenant_id = :tenant_id AND p.subject_id = :s AND p.t >= :t_from
      AND {visible}
    WINDOW w AS (ORDER BY p.t, p.device_id, p.client_key)
    ORDER BY p.t, p.device_id, p.client_key
    """.format(visible=zones.visible("p.subject_id", "ST_X(p.geom)", "ST_Y(p.geom)",
                                      "p.precision_m", "p.t", tenant=":tenant_id"),
               near=zones.near("p.subject_id", "p.geom", ":near_m", tenant=":tenant_id"))
)

DELETE_FROM = text(
    """
    WITH a AS (DELETE FROM stops WHERE tenant_id = :tenant_id AND subject_id = :s
                 AND started_at >= :t_from RETURNING 1),
         b AS (DELETE FROM trips WHERE tenant_id = :tenant_id AND subject_id = :s
                 AND started_at >= :t_from RETURNING 1)
    SELECT (SELECT count(*) FROM a) AS stops, (SELECT count(*) FROM b) AS trips
    """
)

def site_at(lon: str, lat: str) -> str:
    """The site a point lies in, as a subquery naming the tenant (planned once per
    statement; the SQL function govern_site_at does the same for single points, but Citus
    cannot plan that SQL function beside parameters, nor route it to the tenant's shard)."""
    return (f"SELECT x.site_id FROM sites x WHERE x.tenant_id = :tenant_id "
            f"AND ST_Intersects(x.area, "
            f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)) "
            f"ORDER BY ST_Area(x.area), x.site_id LIMIT 1")


INSERT_STOPS = text(
    """
    INSERT INTO stops (tenant_id, subject_id, started_at, ended_at, duration_s, lon, lat, cell,
                       site_id, pings, purpose_mask, precision_m)
    SELECT :tenant_id, :s, to_timestamp(u.t0), to_timestamp(u.t1), u.dur, u.lon, u.lat,
           u.cell, site.site_id, u.n, u.mask, u.prec
    FROM unnest(CAST(:t0 AS float8[]), CAST(:t1 AS float8[]), CAST(:dur AS int[]),
                CAST(:lon AS float8[]), CAST(:lat AS float8[]), CAST(:cell AS bigint[]),
                CAST(:n AS int[]), CAST(:mask AS bigint[]), CAST(:prec AS int[]))
         AS u(t0, t1, dur, lon, lat, cell, n, mask, prec)
    LEFT JOIN LATERAL ({site}) site ON true
    ON CONFLICT DO NOTHING
    """.format(site=site_at("u.lon", "u.lat"))
)

INSERT_TRIPS = text(
    """
    INSERT INTO trips (tenant_id, subject_id, started_at, ended_at, duration_s, moving_s,
                       distance_m, origin_lon, origin_lat, origin_cell, origin_site_id,
                       dest_lon, dest_lat, dest_cell, dest_site_id, from_stop, to_stop, pings,
                       purpose_mask, precision_m)
    SELECT :tenant_id, :s, to_timestamp(u.t0), to_timestamp(u.t1), u.dur, u.moving, u.dist,
           u.olon, u.olat, u.ocell, o.site_id, u.dlon, u.dlat, u.dcell, d.site_id, u.fs, u.ts,
           u.n, u.mask, u.prec
    FROM unnest(CAST(:t0 AS float8[]), CAST(:t1 AS float8[]), CAST(:dur AS int[]),
                CAST(:moving AS int[]), CAST(:dist AS float8[]), CAST(:olon AS float8[]),
                CAST(:olat AS float8[]), CAST(:ocell AS bigint[]), CAST(:dlon AS float8[]),
                CAST(:dlat AS float8[]), CAST(:dcell AS bigint[]), CAST(:fs AS boolean[]),
                CAST(:ts AS boolean[]), CAST(:n AS int[]), CAST(:mask AS bigint[]),
                CAST(:prec AS int[]))
         AS u(t0, t1, dur, moving, dist, olon, olat, ocell, dlon, dlat, dcell, fs, ts, n, mask,
              prec)
    LEFT JOIN LATERAL ({origin}) o ON true
    LEFT JOIN LATERAL ({dest}) d ON true
    ON CONFLICT DO NOTHING
    """.format(origin=site_at("u.olon", "u.olat"), dest=site_at("u.dlon", "u.dlat"))
)

# The trip that arrives at the rebuilt stop keeps its row; only its destination follows.
INBOUND_TRIP = text(
    "SELECT started_at, precision_m FROM trips "
    "WHERE tenant_id = :tenant_id AND subject_id = :s AND ended_at = :r AND to_stop"
)
SET_DESTINATION = text(
    """
    UPDATE trips SET dest_lon = :lon, dest_lat = :lat, dest_cell = :cell,
                     dest_site_id = ({site})
    WHERE tenant_id = :tenant_id AND subject_id = :s AND started_at = :started_at
    """.format(site=site_at(":lon", ":lat"))
)

# EXCLUDED.last_run_at is the transaction's now() (Citus refuses now() itself in DO UPDATE)
SAVE_WATERMARK = text(
    """
    INSERT INTO trip_builds AS b (tenant_id, received_until, last_run_at, subjects, pings)
    VALUES (:tenant_id, :horizon, now(), :subjects, :pings)
    ON CONFLICT (tenant_id) DO UPDATE SET
      received_until = greatest(b.received_until, EXCLUDED.received_until),
      last_run_at = EXCLUDED.last_run_at, subjects = b.subjects + EXCLUDED.subjects,
      pings = b.pings + EXCLUDED.pings
    """
)

# ---- sites -----------------------------------------------------------------------------------

# Re-attribute the stops and trip ends near a changed site (inside its bounding box, or
# attributed to it): each point goes to the smallest site it lies in, or to none.
_BOX = "{lon} BETWEEN :xmin AND :xmax AND {lat} BETWEEN :ymin AND :ymax"


def _reattribute(table: str, lon: str, lat: str, site: str) -> str:
    # the site lookup as a subquery naming the tenant, not govern_site_at(): Citus refuses
    # STABLE functions with column references in an UPDATE, and routes the statement to the
    # tenant's shard only when every table in it names the tenant
    site_at = ("(SELECT x.site_id FROM sites x WHERE x.tenant_id = :tenant_id "
               f"AND ST_Intersects(x.area, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)) "
               "ORDER BY ST_Area(x.area), x.site_id LIMIT 1)")
    return (f"UPDATE {table} SET {site} = {site_at} "
            f"WHERE {table}.tenant_id = :tenant_id "
            f"AND ({site} = :site_id OR ({_BOX.format(lon=lon, lat=lat)})) "
            f"AND {site} IS DISTINCT FROM {site_at}")


# What ON DELETE SET NULL (site) does on PostgreSQL, said explicitly before a site is
# deleted: `govern db distribute` drops that action from the foreign keys (Citus refuses it
# on keys that include tenant_id).
UNLINK_SITE = [
    text("UPDATE stops SET site_id = NULL WHERE tenant_id = :tenant_id AND site_id = :site_id"),
    text("UPDATE trips SET origin_site_id = NULL "
         "WHERE tenant_id = :tenant_id AND origin_site_id = :site_id"),
    text("UPDATE trips SET dest_site_id = NULL "
         "WHERE tenant_id = :tenant_id AND dest_site_id = :site_id"),
]
REATTRIBUTE = [
    text(_reattribute("stops", "lon", "lat", "site_id")),
    text(_reattribute("trips", "origin_lon", "origin_lat", "origin_site_id")),
    text(_reattribute("trips", "dest_lon", "dest_lat", "dest_site_id")),
]
SITE_BOX = text(
    "SELECT ST_XMin(area) AS xmin, ST_XMax(area) AS xmax, ST_YMin(area) AS ymin, "
    "ST_YMax(area) AS ymax FROM sites WHERE tenant_id = :tenant_id AND site_id = :site_id"
)
