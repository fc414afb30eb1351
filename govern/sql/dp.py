"""Differentially private releases: each report's contributions, one row per (subject, UTC
day, group) with that person-day's values in the group (govern.privacy.dp bounds them),
and the per-data-day budget. Records count as they do for every aggregate report: only
under an aggregate purpose the subject serves now, within its window, never past a
withdrawal (govern.sql.travel_reports usable filter)."""

from __future__ import annotations

from sqlalchemy import text

from govern.sql.travel_reports import Shape
from govern.sql.travel_reports import _records as records
from govern.sql.travel_reports import _usable as usable

# ---- contributions -----------------------------------------------------------------------------


# The finest precision any aggregate purpose allows: the heatmap's points are snapped to it
# (never finer than stored) before their cells are computed.
AGGREGATE_PRECISION = text(
    "SELECT coalesce(min(precision_m), 1) FROM purposes "
    "WHERE tenant_id = :tenant_id AND aggregate_use AND archived_at IS NULL"
)


# The DP heatmap's per person-day and point counts are hashed in memory: at the default
# 4 MB a month of 1,012,500 pings spilled to disk in 21 batches (docs/benchmarks.md).
# Transaction-local, so a pooled connection returns to the default.
HEATMAP_MEMORY = text("SET LOCAL work_mem = '64MB'")


def heatmap_points(shape: Shape):
    """Per point (snapped to :precision, or as stored if coarser): the person-days on it and
    each one's pings, as three arrays (subject, UTC day, pings): one row a point, not one a
    person-day and point (322,440 rows for a month of 1,012,500 pings, 6,577 so); the
    point's H3 cell is computed by the caller, once a point."""
    ok, keep = usable(shape)
    # OFFSET 0 keeps the snapped point a column of its own: flattened, the planner computed
    # govern_snap twice a row (once for ST_Y, once for ST_X)
    return text(
        f"""
        WITH {ok},
        y AS (
          SELECT x.subject_id, date_trunc('day', x.started_at, 'UTC') AS day,
                 govern_snap(ST_X(x.geom), ST_Y(x.geom),
                             greatest(x.precision_m, :precision)) AS g
          FROM (SELECT p.subject_id, p.t AS started_at, p.purpose_mask, p.geom,
                       p.precision_m
                FROM pings p
                WHERE p.tenant_id = :tenant_id AND p.t >= :t_from AND p.t < :t_to) x
          JOIN ok ON ok.subject_id = x.subject_id
          WHERE {keep}
          OFFSET 0
        ),
        z AS (
          SELECT ST_Y(y.g) AS lat, ST_X(y.g) AS lon, y.subject_id, y.day, count(*) AS pings
          FROM y GROUP BY 1, 2, 3, 4
        )
        SELECT z.lat, z.lon, array_agg(z.subject_id) AS subjects, array_agg(z.day) AS days,
               array_agg(z.pings) AS pings
        FROM z GROUP BY 1, 2
        """
    )


def travel(shape: Shape):
    """Per person-day: its bucket (day or ISO week), trips, stops, distance and moving time
    (each trip clamped first)."""
    ok, trips = records("trips", shape)
    _, stops = records("stops", shape)
    return text(
        f"""
        WITH {ok},
        rec AS (
          SELECT subject_id, date_trunc('day', started_at, 'UTC') AS day, 1 AS trips,
                 0 AS stops, least(distance_m, :clamp_m) AS distance_m,
                 least(moving_s, :clamp_s) AS moving_s
          FROM ({trips}) tr
          UNION ALL
          SELECT subject_id, date_trunc('day', started_at, 'UTC'), 0, 1, 0, 0
          FROM ({stops}) st
        )
        SELECT subject_id, day, date_trunc(:bucket, day, 'UTC') AS bucket,
               sum(trips) AS trips, sum(stops) AS stops, sum(distance_m) AS distance_m,
               sum(moving_s) AS moving_s
        FROM rec GROUP BY subject_id, day
        """
    )


def visits(shape: Shape):
    """Per person-day and site (and bucket): visits and their dwell times (clamped)."""
    ok, stops = records("stops", shape,
                        "AND x.site_id IS NOT NULL AND (CAST(:site_id AS uuid) IS NULL "
                        "OR x.site_id = CAST(:site_id AS uuid))")
    return text(
        f"""
        WITH {ok}
        SELECT x.subject_id, date_trunc('day', x.started_at, 'UTC') AS day, x.site_id,
               s.name AS site, date_trunc(:bucket, x.started_at, 'UTC') AS bucket,
               count(*) AS visits,
               array_agg(least(x.duration_s, :clamp_dwell) ORDER BY x.started_at) AS dwells
        FROM ({stops}) x JOIN sites s ON s.tenant_id = :tenant_id AND s.site_id = x.site_id
        GROUP BY 1, 2, 3, 4, 5
        """
    )


def od(shape: Shape, resolution: int | None):
    """Per person-day and zone pair (sites, '' outside any; or H3 cells at `resolution`,
    trips kept coarser left out): trips."""
    if resolution is None:
        origin = "coalesce(CAST(x.origin_site_id AS text), '')"
        dest = "coalesce(CAST(x.dest_site_id AS text), '')"
        where = "true"
    else:
        res = int(resolution)
        origin = f"lpad(to_hex(govern_h3_parent(x.origin_cell, {res})), 15, '0')"
        dest = f"lpad(to_hex(govern_h3_parent(x.dest_cell, {res})), 15, '0')"
        where = f"((x.origin_cell >> 52) & 15) >= {res} AND ((x.dest_cell >> 52) & 15) >= {res}"
    ok, trips = records("trips", shape)
    return text(
        f"""
        WITH {ok}
        SELECT x.subject_id, date_trunc('day', x.started_at, 'UTC') AS day,
               {origin} AS origin, {dest} AS destination, count(*) AS trips
        FROM ({trips}) x WHERE {where}
        GROUP BY 1, 2, 3, 4
        """
    )


# ---- the budget per data day -------------------------------------------------------------------

# One charge at a time per tenant: the check and the charge of every day see each other.
LOCK = text("SELECT pg_advisory_xact_lock(hashtext('govern.dp'), "
            "hashtext(CAST(:tenant_id AS text)))")
SPENT = text(
    """
    SELECT coalesce(max(epsilon), 0) AS epsilon, coalesce(max(delta), 0) AS delta
    FROM dp_person_day_budget
    WHERE tenant_id = :tenant_id AND day = ANY(CAST(:days AS date[]))
    """
)
CHARGE = text(
    """
    INSERT INTO dp_person_day_budget AS b (tenant_id, day, epsilon, delta, answers)
    SELECT :tenant_id, d, :epsilon, :delta, 1 FROM unnest(CAST(:days AS date[])) AS d
    ON CONFLICT (tenant_id, day) DO UPDATE
      SET epsilon = b.epsilon + EXCLUDED.epsilon, delta = b.delta + EXCLUDED.delta,
          answers = b.answers + 1
    """
)
EXPIRE = text("DELETE FROM dp_person_day_budget WHERE day < CAST(:cutoff AS date)")
