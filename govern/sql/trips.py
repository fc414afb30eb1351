"""Travel SQL: the pings a build needs (with geography step lengths), set-wise writes of
stops and trips, their ageing, site attribution, and the travel reports' aggregations.

Stops and trips are location data: every statement here runs in a tenant-scoped session
under row-level security, like the pings they come from."""

from __future__ import annotations

from sqlalchemy import text

from govern.sql import zones
from govern.sql.retention import ageing_candidates

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

WATERMARK = text("SELECT received_until FROM trip_builds")

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
    WHERE received_at >= :since AND received_at < :horizon
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
    "SELECT NOT collection_blocked FROM subjects WHERE subject_id = :s FOR SHARE"
)

# Rebuild from the last stop that ended before the earliest new ping.
RESTART_POINT = text(
    """
    SELECT started_at FROM stops
    WHERE subject_id = :s AND ended_at < :t0
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
    WHERE p.subject_id = :s AND p.t >= :t_from
      AND {visible}
    WINDOW w AS (ORDER BY p.t, p.device_id, p.client_key)
    ORDER BY p.t, p.device_id, p.client_key
    """.format(visible=zones.visible("p.subject_id", "ST_X(p.geom)", "ST_Y(p.geom)",
                                      "p.precision_m", "p.t", tenant="p.tenant_id"),
               near=zones.near("p.subject_id", "p.geom", ":near_m", tenant="p.tenant_id"))
)

DELETE_FROM = text(
    """
    WITH a AS (DELETE FROM stops WHERE subject_id = :s AND started_at >= :t_from RETURNING 1),
         b AS (DELETE FROM trips WHERE subject_id = :s AND started_at >= :t_from RETURNING 1)
    SELECT (SELECT count(*) FROM a) AS stops, (SELECT count(*) FROM b) AS trips
    """
)

def _site_at(lon: str, lat: str) -> str:
    """The site a point lies in, as a lateral subquery (planned once per statement; the SQL
    function govern_site_at does the same for single points)."""
    return (f"SELECT x.site_id FROM sites x WHERE ST_Intersects(x.area, "
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
    """.format(site=_site_at("u.lon", "u.lat"))
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
    """.format(origin=_site_at("u.olon", "u.olat"), dest=_site_at("u.dlon", "u.dlat"))
)

# The trip that arrives at the rebuilt stop keeps its row; only its destination follows.
INBOUND_TRIP = text(
    "SELECT started_at, precision_m FROM trips "
    "WHERE subject_id = :s AND ended_at = :r AND to_stop"
)
SET_DESTINATION = text(
    """
    UPDATE trips SET dest_lon = :lon, dest_lat = :lat, dest_cell = :cell,
                     dest_site_id = govern_site_at(:lon, :lat)
    WHERE subject_id = :s AND started_at = :started_at
    """
)

SAVE_WATERMARK = text(
    """
    INSERT INTO trip_builds AS b (tenant_id, received_until, last_run_at, subjects, pings)
    VALUES (:tenant_id, :horizon, now(), :subjects, :pings)
    ON CONFLICT (tenant_id) DO UPDATE SET
      received_until = greatest(b.received_until, EXCLUDED.received_until),
      last_run_at = now(), subjects = b.subjects + EXCLUDED.subjects,
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
    "ST_YMax(area) AS ymax FROM sites WHERE site_id = :site_id"
)

# ---- ageing (retention) ----------------------------------------------------------------------

# The same rule as pings (govern.sql.retention.ageing_candidates), by each record's end
# time: purposes whose window closed or that were withdrawn leave the mask; a record whose
# remaining purposes allow less precision is coarsened (points re-snapped, cells to a
# coarser resolution, sites re-attributed from the coarser point); with no purpose left it
# is deleted.


def _ageing(table: str, points: list[tuple[str, str, str, str]], limit: bool) -> str:
    cols = ", ".join(f"x.{c}" for lon, lat, cell, site in points for c in (lon, lat, cell))
    snapped = ",\n".join(
        f"govern_snap(c.{lon}, c.{lat}, c.new_precision) AS g_{i}"
        for i, (lon, lat, _, _) in enumerate(points))
    sets = ",\n".join(
        f"{lon} = CASE WHEN k.coarser THEN ST_X(k.g_{i}) ELSE x.{lon} END, "
        f"{lat} = CASE WHEN k.coarser THEN ST_Y(k.g_{i}) ELSE x.{lat} END, "
        f"{cell} = CASE WHEN k.coarser THEN govern_h3_parent(x.{cell}, "
        f"govern_h3_res_for(k.new_precision)) ELSE x.{cell} END, "
        f"{site} = CASE WHEN k.coarser THEN govern_site_at(ST_X(k.g_{i}), ST_Y(k.g_{i})) "
        f"ELSE x.{site} END"
        for i, (lon, lat, cell, site) in enumerate(points))
    return "WITH " + ageing_candidates(
        table, "x.tenant_id, x.subject_id, x.started_at", "ended_at", extra=f", {cols}",
        limit=limit) + ("" if not limit else f""",
    deleted AS (
      DELETE FROM {table} x USING changing c
      WHERE c.new_mask = 0 AND x.tenant_id = c.tenant_id AND x.subject_id = c.subject_id
        AND x.started_at = c.started_at
      RETURNING 1
    ),
    coarse AS (
      SELECT c.tenant_id, c.subject_id, c.started_at, c.new_mask, c.new_precision,
             c.new_precision > c.precision_m AS coarser,
             {snapped}
      FROM changing c WHERE c.new_mask <> 0
    ),
    aged AS (
      UPDATE {table} x SET
        purpose_mask = k.new_mask,
        precision_m = greatest(x.precision_m, k.new_precision),
        {sets}
      FROM coarse k
      WHERE x.tenant_id = k.tenant_id AND x.subject_id = k.subject_id
        AND x.started_at = k.started_at
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM aged) AS aged, (SELECT count(*) FROM deleted) AS deleted
    """)


_STOP_POINTS = [("lon", "lat", "cell", "site_id")]
_TRIP_POINTS = [("origin_lon", "origin_lat", "origin_cell", "origin_site_id"),
                ("dest_lon", "dest_lat", "dest_cell", "dest_site_id")]
AGE_BATCH = {"stops": text(_ageing("stops", _STOP_POINTS, True)),
             "trips": text(_ageing("trips", _TRIP_POINTS, True))}
AGE_PENDING = {
    t: text(_ageing(t, p, False) + """
    SELECT count(*) FILTER (WHERE new_mask <> 0) AS aged,
           count(*) FILTER (WHERE new_mask = 0) AS deleted
    FROM changing
    """) for t, p in (("stops", _STOP_POINTS), ("trips", _TRIP_POINTS))}

# ---- reports ---------------------------------------------------------------------------------


def _usable(window_cases: int) -> str:
    """CTEs `ok` (per subject, the aggregate purposes it serves now: consent active, or none
    needed) and a filter expression on alias x: some aggregate purpose in the record's mask
    that the subject serves now and whose window the record's start has not left."""
    cases = " ".join(f"WHEN x.started_at > :wc{i} THEN CAST(:wm{i} AS bigint)"
                     for i in range(window_cases))
    window = f"(CASE {cases} ELSE 0 END)" if window_cases else "0"
    # cuts: per aggregate purpose (:a_bits), the subject's latest withdrawal; a record that
    # started at or before it no longer serves that purpose (govern.policy.cutoffs)
    ok = """
    ok AS (
      SELECT s.subject_id, CAST(:free_bits AS bigint) | coalesce((
        SELECT bit_or(1::bigint << r.bit)
        FROM unnest(CAST(:c_bits AS int[]), CAST(:c_ids AS uuid[])) AS r(bit, pid)
        WHERE (SELECT c.status FROM consent_events c
               WHERE c.subject_id = s.subject_id AND c.purpose_id = r.pid AND c.at <= :now
               ORDER BY c.at DESC, c.seq DESC LIMIT 1) = 'granted'), 0) AS bits,
        ARRAY(SELECT (SELECT max(w.at) FROM consent_events w
                      WHERE w.subject_id = s.subject_id AND w.purpose_id = r.pid
                        AND w.status = 'withdrawn' AND w.at <= :now)
              FROM unnest(CAST(:a_ids AS uuid[])) WITH ORDINALITY AS r(pid, i)
              ORDER BY r.i) AS cuts
      FROM subjects s
    )"""
    withdrawn = ("coalesce((SELECT bit_or(1::bigint << r.bit) FROM unnest("
                 "CAST(:a_bits AS int[]), ok.cuts) AS r(bit, cut) "
                 "WHERE x.started_at <= r.cut), 0)")
    return ok, f"x.purpose_mask & ok.bits & {window} & ~{withdrawn} <> 0"


def _records(table: str, window_cases: int, extra: str = "") -> tuple[str, str]:
    ok, usable = _usable(window_cases)
    return ok, f"""
      SELECT x.* FROM {table} x JOIN ok ON ok.subject_id = x.subject_id
      WHERE x.started_at >= :t_from AND x.started_at < :t_to AND {usable} {extra}"""


# Each report first reduces its records to one row per (group, UTC day, subject): distinct
# counts and the smallest daily subject count then work on those few rows.

def travel_report(window_cases: int):
    """Per bucket: distinct subjects, trips, stops, distance and moving time (each trip's
    values clamped under differential privacy), and the smallest daily subject count."""
    ok, trips = _records("trips", window_cases)
    _, stops = _records("stops", window_cases)
    return text(
        f"""
        WITH {ok},
        tr AS ({trips}),
        st AS ({stops}),
        rec AS (
          SELECT subject_id, date_trunc('day', started_at, 'UTC') AS day, 1 AS trips,
                 0 AS stops, least(distance_m, :clamp_m) AS distance_m,
                 least(moving_s, :clamp_s) AS moving_s
          FROM tr
          UNION ALL
          SELECT subject_id, date_trunc('day', started_at, 'UTC'), 0, 1, 0, 0 FROM st
        ),
        sd AS (
          SELECT date_trunc(:bucket, day, 'UTC') AS bucket, day, subject_id,
                 sum(trips) AS trips, sum(stops) AS stops, sum(distance_m) AS distance_m,
                 sum(moving_s) AS moving_s
          FROM rec GROUP BY day, subject_id
        ),
        per_day AS (
          SELECT bucket, day, count(*) AS subjects FROM sd GROUP BY bucket, day
        ),
        per_bucket AS (
          SELECT bucket, count(DISTINCT subject_id) AS subjects, sum(trips)::bigint AS trips,
                 sum(stops)::bigint AS stops, coalesce(sum(distance_m), 0) AS distance_m,
                 coalesce(sum(moving_s), 0)::bigint AS moving_s
          FROM sd GROUP BY bucket
        )
        SELECT b.*, d.min_day_subjects
        FROM per_bucket b
        JOIN (SELECT bucket, min(subjects) AS min_day_subjects FROM per_day GROUP BY 1) d
          USING (bucket)
        ORDER BY b.bucket
        """
    )


def visits_report(window_cases: int):
    """Per site and bucket: visits (stops at the site), distinct subjects, median and p90
    dwell, the dwell times themselves (under DP, for private quantiles), smallest daily
    subject count."""
    ok, stops = _records("stops", window_cases,
                         "AND x.site_id IS NOT NULL AND (CAST(:site_id AS uuid) IS NULL "
                         "OR x.site_id = CAST(:site_id AS uuid))")
    return text(
        f"""
        WITH {ok},
        st AS (
          SELECT x.site_id, x.subject_id, x.duration_s,
                 date_trunc('day', x.started_at, 'UTC') AS day
          FROM ({stops}) x
        ),
        grp AS (
          SELECT site_id, date_trunc(:bucket, day, 'UTC') AS bucket, count(*) AS visits,
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS median_dwell_s,
                 percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_s) AS p90_dwell_s,
                 array_agg(least(duration_s, :clamp_dwell)) FILTER (WHERE :dp) AS dwells
          FROM st GROUP BY 1, 2
        ),
        sds AS (
          SELECT site_id, date_trunc(:bucket, day, 'UTC') AS bucket, day, subject_id
          FROM st GROUP BY site_id, day, subject_id
        ),
        subj AS (
          SELECT site_id, bucket, count(DISTINCT subject_id) AS subjects
          FROM sds GROUP BY 1, 2
        ),
        per_day AS (
          SELECT site_id, bucket, day, count(*) AS subjects FROM sds GROUP BY 1, 2, 3
        )
        SELECT g.*, u.subjects, s.name AS site, d.min_day_subjects
        FROM grp g
        JOIN subj u ON u.site_id = g.site_id AND u.bucket = g.bucket
        JOIN sites s ON s.site_id = g.site_id
        JOIN (SELECT site_id, bucket, min(subjects) AS min_day_subjects FROM per_day
              GROUP BY 1, 2) d ON d.site_id = g.site_id AND d.bucket = g.bucket
        ORDER BY s.name, g.bucket
        """
    )


_NO_SITE = "'00000000-0000-0000-0000-000000000000'::uuid"


def od_report(window_cases: int, resolution: int | None):
    """Trip counts and distinct subjects per (origin, destination) zone pair: sites (''
    outside any site) or H3 cells at `resolution` (trips kept coarser are left out)."""
    if resolution is None:
        origin = f"coalesce(x.origin_site_id, {_NO_SITE})"
        dest = f"coalesce(x.dest_site_id, {_NO_SITE})"
        where = "true"
        show = "coalesce(CAST(NULLIF({0}, " + _NO_SITE + ") AS text), '')"
    else:
        res = int(resolution)
        origin = f"govern_h3_parent(x.origin_cell, {res})"
        dest = f"govern_h3_parent(x.dest_cell, {res})"
        where = f"((x.origin_cell >> 52) & 15) >= {res} AND ((x.dest_cell >> 52) & 15) >= {res}"
        show = "lpad(to_hex({0}), 15, '0')"
    ok, trips = _records("trips", window_cases)
    return text(
        f"""
        WITH {ok},
        pds AS (
          SELECT {origin} AS origin, {dest} AS destination,
                 date_trunc('day', x.started_at, 'UTC') AS day, x.subject_id,
                 count(*) AS trips
          FROM ({trips}) x WHERE {where}
          GROUP BY 1, 2, 3, 4
        ),
        per_day AS (
          SELECT origin, destination, day, count(*) AS subjects FROM pds GROUP BY 1, 2, 3
        ),
        grp AS (
          SELECT origin, destination, sum(trips)::bigint AS trips,
                 count(DISTINCT subject_id) AS subjects
          FROM pds GROUP BY 1, 2
        )
        SELECT {show.format("g.origin")} AS origin,
               {show.format("g.destination")} AS destination,
               g.trips, g.subjects, d.min_day_subjects
        FROM grp g
        JOIN (SELECT origin, destination, min(subjects) AS min_day_subjects FROM per_day
              GROUP BY 1, 2) d ON d.origin = g.origin AND d.destination = g.destination
        ORDER BY g.trips DESC, 1, 2
        """
    )


SITE_NAMES = text("SELECT CAST(site_id AS text) AS site_id, name FROM sites")


# ---- the frozen travel basis (exact releases, govern.domain.release) ------------------------

def freeze_travel_basis(window_cases: int = 1):
    """One UTC day of usable stops (per site, as sites stand now) and trips (per origin and
    destination cell and site), counts, sums, dwell times and a distinct-subject sketch:
    what every exact travel, visits and origin-destination release of the day is computed
    from, whatever later happens to the records (late pings, redrawn sites, ageing)."""
    ok, stops = _records("stops", window_cases)
    _, trips = _records("trips", window_cases)
    return text(
        f"""
        WITH {ok},
        st AS ({stops}),
        tr AS ({trips}),
        a AS (
          SELECT 'stop' AS kind, site_id, NULL::bigint AS origin_cell, NULL::bigint AS dest_cell,
                 NULL::uuid AS origin_site, NULL::uuid AS dest_site, count(*)::int AS records,
                 0::float8 AS distance_m, 0::bigint AS moving_s,
                 array_agg(duration_s ORDER BY duration_s) AS dwells,
                 hll_add_agg(hll_hash_text(CAST(subject_id AS text))) AS subjects
          FROM st GROUP BY site_id
          UNION ALL
          SELECT 'trip', NULL, origin_cell, dest_cell, origin_site_id, dest_site_id,
                 count(*)::int, sum(distance_m), sum(moving_s)::bigint, '{{}}'::int[],
                 hll_add_agg(hll_hash_text(CAST(subject_id AS text)))
          FROM tr GROUP BY origin_cell, dest_cell, origin_site_id, dest_site_id
        )
        INSERT INTO release_travel_atoms (tenant_id, bucket, atom, kind, site_id, origin_cell,
                                          dest_cell, origin_site, dest_site, records,
                                          distance_m, moving_s, dwells, subjects)
        SELECT :tenant_id, :t_from, row_number() OVER (), a.* FROM a
        """
    )


_BASIS = """
    a AS (
      SELECT x.*, date_trunc(:bucket, x.bucket, 'UTC') AS b
      FROM release_travel_atoms x WHERE x.bucket >= :t_from AND x.bucket < :t_to {where}
    ),
    per_day AS (
      SELECT {keys}, bucket, hll_cardinality(hll_union_agg(subjects)) AS s
      FROM a GROUP BY {keys}, bucket
    ),
    md AS (SELECT {keys}, round(min(s))::bigint AS min_day_subjects FROM per_day
           GROUP BY {keys})"""


def travel_from_basis():
    """Per bucket (day or ISO week, clipped to the range): distinct subjects, trips, stops,
    distance, moving time and the smallest daily subject count."""
    return text("WITH " + _BASIS.format(where="", keys="b") + """
        SELECT a.b AS bucket,
               round(hll_cardinality(hll_union_agg(a.subjects)))::bigint AS subjects,
               coalesce(sum(a.records) FILTER (WHERE a.kind = 'trip'), 0)::bigint AS trips,
               coalesce(sum(a.records) FILTER (WHERE a.kind = 'stop'), 0)::bigint AS stops,
               sum(a.distance_m) AS distance_m, sum(a.moving_s)::bigint AS moving_s,
               min(md.min_day_subjects) AS min_day_subjects
        FROM a JOIN md USING (b)
        GROUP BY a.b ORDER BY a.b
        """)


def visits_from_basis():
    """Per site (as frozen) and bucket: visits, distinct subjects, median and p90 dwell,
    the smallest daily subject count."""
    return text("WITH " + _BASIS.format(where="AND x.kind = 'stop' AND x.site_id IS NOT NULL",
                                        keys="site_id, b") + """,
        g AS (
          SELECT site_id, b, sum(records)::bigint AS visits,
                 round(hll_cardinality(hll_union_agg(subjects)))::bigint AS subjects
          FROM a GROUP BY site_id, b
        ),
        dw AS (
          SELECT a.site_id, a.b,
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS median_dwell_s,
                 percentile_cont(0.9) WITHIN GROUP (ORDER BY d) AS p90_dwell_s
          FROM a CROSS JOIN LATERAL unnest(a.dwells) AS d GROUP BY a.site_id, a.b
        )
        SELECT g.site_id, s.name AS site, g.b AS bucket, g.visits, g.subjects,
               dw.median_dwell_s, dw.p90_dwell_s, md.min_day_subjects
        FROM g JOIN dw USING (site_id, b) JOIN md USING (site_id, b)
        LEFT JOIN sites s ON s.site_id = g.site_id
        ORDER BY s.name, g.site_id, g.b
        """)


def od_from_basis(resolution: int | None):
    """Trips and distinct subjects per zone pair over the range: sites as frozen ('' outside
    any site), or H3 cells at `resolution` (trips kept coarser are left out)."""
    if resolution is None:
        origin, dest = (f"coalesce(x.origin_site, {_NO_SITE})",
                        f"coalesce(x.dest_site, {_NO_SITE})")
        where = "AND x.kind = 'trip'"
        show = "coalesce(CAST(NULLIF({0}, " + _NO_SITE + ") AS text), '')"
    else:
        res = int(resolution)
        origin = f"govern_h3_parent(x.origin_cell, {res})"
        dest = f"govern_h3_parent(x.dest_cell, {res})"
        where = (f"AND x.kind = 'trip' AND ((x.origin_cell >> 52) & 15) >= {res} "
                 f"AND ((x.dest_cell >> 52) & 15) >= {res}")
        show = "lpad(to_hex({0}), 15, '0')"
    return text(
        f"""
        WITH a AS (
          SELECT {origin} AS o, {dest} AS d, x.bucket, x.records, x.subjects
          FROM release_travel_atoms x
          WHERE x.bucket >= :t_from AND x.bucket < :t_to {where}
        ),
        per_day AS (
          SELECT o, d, bucket, hll_cardinality(hll_union_agg(subjects)) AS s
          FROM a GROUP BY o, d, bucket
        )
        SELECT {show.format("a.o")} AS origin, {show.format("a.d")} AS destination,
               a.o AS origin_key, a.d AS dest_key,
               sum(a.records)::bigint AS trips,
               round(hll_cardinality(hll_union_agg(a.subjects)))::bigint AS subjects,
               (SELECT round(min(p.s))::bigint FROM per_day p
                WHERE p.o = a.o AND p.d = a.d) AS min_day_subjects
        FROM a GROUP BY a.o, a.d
        ORDER BY trips DESC, 1, 2
        """
    )

# ---- individual travel -----------------------------------------------------------------------

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
           (SELECT name FROM sites WHERE site_id = govern_site_at(ST_X(o.g), ST_Y(o.g)))
             AS origin_site,
           ST_X(d.g) AS dest_lon, ST_Y(d.g) AS dest_lat,
           (SELECT name FROM sites WHERE site_id = govern_site_at(ST_X(d.g), ST_Y(d.g)))
             AS dest_site,
           greatest(x.precision_m, :precision) AS precision_m
    FROM trips x
    CROSS JOIN LATERAL (SELECT {_END.format("origin")} AS g) o
    CROSS JOIN LATERAL (SELECT {_END.format("dest")} AS g) d
    WHERE x.subject_id = :subject_id
      AND x.purpose_mask & CAST(:bit AS bigint) <> 0
      AND x.started_at > :window_start AND x.started_at >= :t_from AND x.started_at < :t_to
      AND {zones.visible("x.subject_id", "x.origin_lon", "x.origin_lat", "x.precision_m",
                         "x.started_at", tenant="x.tenant_id")}
      AND {zones.visible("x.subject_id", "x.dest_lon", "x.dest_lat", "x.precision_m",
                         "x.ended_at", tenant="x.tenant_id")}
    ORDER BY x.started_at
    """
)
