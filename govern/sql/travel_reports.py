"""Aggregate travel SQL (travel, visits, origin-destination): the usable records, their
reduction to one row per group, UTC day and subject, and the frozen daily basis exact
releases are computed from (govern.domain.release)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from govern.sql import consent


@dataclass(frozen=True)
class Shape:
    """What the `usable` filter's SQL is written for (govern.domain.release.usable_params):
    how many window cases, and how many aggregate purposes (each one's withdrawal cut is an
    expression of its own, so no per-record subplan)."""

    windows: int = 1
    purposes: int = 1


def _usable(shape: Shape) -> tuple[str, str]:
    """CTEs `ok` (per subject, the aggregate purposes it serves now: consent active, or none
    needed) and a filter expression on alias x: some aggregate purpose in the record's mask
    that the subject serves now and whose window the record's start has not left. `ok` is
    materialized: inlined, its consent look-ups ran once per record (measured on the DP
    heatmap's pings: 225,000 look-ups, 7.6 s of a 10 s query). Every table names the tenant
    (`:tenant_id`): Citus runs the statement on the tenant's shard only so, and refuses its
    correlated subqueries beside unnest() otherwise."""
    cases = " ".join(f"WHEN x.started_at > :wc{i} THEN CAST(:wm{i} AS bigint)"
                     for i in range(shape.windows))
    window = f"(CASE {cases} ELSE 0 END)" if shape.windows else "0"
    # cuts: per aggregate purpose (:a_bits), the subject's latest withdrawal; a record that
    # started at or before it no longer serves that purpose (govern.policy.cutoffs)
    ok = """
    ok AS MATERIALIZED (
      SELECT s.subject_id, CAST(:free_bits AS bigint) | coalesce((
        SELECT bit_or(1::bigint << r.bit)
        FROM unnest(CAST(:c_bits AS int[]), CAST(:c_ids AS uuid[])) AS r(bit, pid)
        WHERE {granted}), 0) AS bits,
        ARRAY(SELECT {withdrawn}
              FROM unnest(CAST(:a_ids AS uuid[])) WITH ORDINALITY AS r(pid, i)
              ORDER BY r.i) AS cuts
      FROM subjects s WHERE s.tenant_id = :tenant_id
    )""".format(granted=consent.granted_at(":tenant_id", "s.subject_id", "r.pid", ":now"),
               withdrawn=consent.withdrawn_until(":tenant_id", "s.subject_id", "r.pid", ":now"))
    # one CASE per aggregate purpose, in :a_bits order: a NULL cut (never withdrawn) takes
    # nothing away. Was a subplan over unnest(:a_bits, ok.cuts) per record: measured on the
    # DP heatmap's 1,012,500 pings, it was the scan's largest cost (docs/benchmarks.md)
    withdrawn = " | ".join(
        f"(CASE WHEN x.started_at <= ok.cuts[{i + 1}] "
        f"THEN 1::bigint << (CAST(:a_bits AS int[]))[{i + 1}] ELSE 0 END)"
        for i in range(shape.purposes)) or "0::bigint"
    return ok, f"x.purpose_mask & ok.bits & {window} & ~({withdrawn}) <> 0"


def _records(table: str, shape: Shape, extra: str = "") -> tuple[str, str]:
    ok, usable = _usable(shape)
    return ok, f"""
      SELECT x.* FROM {table} x JOIN ok ON ok.subject_id = x.subject_id
      WHERE x.tenant_id = :tenant_id AND x.started_at >= :t_from AND x.started_at < :t_to
        AND {usable} {extra}"""


_NO_SITE = "'00000000-0000-0000-0000-000000000000'::uuid"


SITE_NAMES = text("SELECT CAST(site_id AS text) AS site_id, name FROM sites "
                  "WHERE tenant_id = :tenant_id")


# ---- the frozen travel basis (exact releases, govern.domain.release) ------------------------

def freeze_travel_basis(shape: Shape = Shape()):
    """One UTC day of usable stops (per site, as sites stand now) and trips (per origin and
    destination cell and site), counts, sums, dwell times and a distinct-subject sketch:
    what every exact travel, visits and origin-destination release of the day is computed
    from, whatever later happens to the records (late pings, redrawn sites, ageing). Read
    here, stored by SAVE_TRAVEL_ATOM: as one INSERT ... SELECT Citus would collect the rows
    on the coordinator and COPY them to the shard, which row-level security refuses."""
    ok, stops = _records("stops", shape)
    _, trips = _records("trips", shape)
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
        SELECT row_number() OVER () AS atom, a.kind, a.site_id, a.origin_cell, a.dest_cell,
               a.origin_site, a.dest_site, a.records, a.distance_m, a.moving_s,
               CAST(a.dwells AS text) AS dwells, CAST(a.subjects AS text) AS subjects
        FROM a
        """
    )


# One row of freeze_travel_basis (dwells and the sketch as text), one INSERT of VALUES a
# row: Citus routes each to the tenant's shard.
SAVE_TRAVEL_ATOM = text(
    """
    INSERT INTO release_travel_atoms (tenant_id, bucket, atom, kind, site_id, origin_cell,
                                      dest_cell, origin_site, dest_site, records,
                                      distance_m, moving_s, dwells, subjects)
    VALUES (:tenant_id, :t_from, :atom, :kind, :site_id, :origin_cell, :dest_cell,
            :origin_site, :dest_site, :records, :distance_m, :moving_s,
            CAST(:dwells AS int[]), CAST(:subjects AS hll))
    """
)


_BASIS = """
    a AS (
      SELECT x.*, date_trunc(:bucket, x.bucket, 'UTC') AS b
      FROM release_travel_atoms x
      WHERE x.tenant_id = :tenant_id AND x.bucket >= :t_from AND x.bucket < :t_to {where}
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
        LEFT JOIN sites s ON s.tenant_id = :tenant_id AND s.site_id = g.site_id
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
          WHERE x.tenant_id = :tenant_id AND x.bucket >= :t_from AND x.bucket < :t_to {where}
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
