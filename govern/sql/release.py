"""Release SQL: freezing a day's basis, reading released groups back as regions of their
Venn diagram, and the ledger of answers (govern.domain.release)."""

from __future__ import annotations

from sqlalchemy import text

NO_SITE = "'00000000-0000-0000-0000-000000000000'::uuid"

# One release at a time per tenant and family: the complementary check reads the groups
# already released and must see every one committed before its own.
LOCK = text("SELECT pg_advisory_xact_lock(hashtext('govern.release'), "
            "hashtext(CAST(:tenant_id AS text) || :family))")

FROZEN_DAYS = text(
    "SELECT day FROM release_days WHERE tenant_id = :tenant_id AND family = :family "
    "AND day >= :t_from AND day < :t_to"
)
MARK_FROZEN = text(
    """
    INSERT INTO release_days (tenant_id, family, day, frozen_at, atoms)
    VALUES (:tenant_id, :family, :day, :now, :atoms)
    """
)

# The heatmap basis of one UTC day: the hourly rollups summed per resolution-9 cell. Late
# pings that reach the rollups afterwards are in no release. The rollups name the tenant and
# the rows take it from them, so Citus runs the INSERT ... SELECT on the tenant's shard (not
# as a COPY through the coordinator, which row-level security refuses).
FREEZE_CELLS = text(
    """
    INSERT INTO release_cell_atoms (tenant_id, bucket, cell, r8, r7, r6, r5, pings, subjects)
    SELECT tenant_id, :day, cell, min(r8), min(r7), min(r6), min(r5), sum(pings),
           hll_union_agg(subjects)
    FROM rollups
    WHERE tenant_id = :tenant_id
      AND bucket >= :day AND bucket < :day + interval '1 day' AND bucket >= :cutoff
    GROUP BY tenant_id, cell
    """
)

# Weakened configurations only (tests, bench): forget a frozen basis.
UNFREEZE = {
    "heatmap": [text("DELETE FROM release_cell_atoms WHERE bucket >= :t_from "
                     "AND bucket < :t_to"),
                text("DELETE FROM release_days WHERE family = 'heatmap' "
                     "AND day >= :t_from AND day < :t_to")],
    "travel": [text("DELETE FROM release_travel_atoms WHERE bucket >= :t_from "
                    "AND bucket < :t_to"),
               text("DELETE FROM release_days WHERE family = 'travel' "
                    "AND day >= :t_from AND day < :t_to")],
}

ANSWER = text("SELECT body, released_at FROM release_answers "
              "WHERE tenant_id = :tenant_id AND report = :report AND key = :key")
SAVE_ANSWER = text(
    """
    INSERT INTO release_answers (tenant_id, report, key, t_from, t_to, released_at, body)
    VALUES (:tenant_id, :report, :key, :t_from, :t_to, :now, CAST(:body AS jsonb))
    """
)

GROUP_COLUMNS = ("t_from", "t_to", "res", "cell", "site_id", "origin_cell", "dest_cell",
                 "origin_site", "dest_site")
ADD_GROUPS = text(
    """
    INSERT INTO release_groups (tenant_id, family, report, t_from, t_to, res, cell, site_id,
                                origin_cell, dest_cell, origin_site, dest_site)
    SELECT :tenant_id, :family, :report, u.t_from, u.t_to, u.res, u.cell, u.site_id,
           u.origin_cell, u.dest_cell, u.origin_site, u.dest_site
    FROM unnest(CAST(:t_from AS timestamptz[]), CAST(:t_to AS timestamptz[]),
                CAST(:res AS smallint[]), CAST(:cell AS bigint[]), CAST(:site_id AS uuid[]),
                CAST(:origin_cell AS bigint[]), CAST(:dest_cell AS bigint[]),
                CAST(:origin_site AS uuid[]), CAST(:dest_site AS uuid[]))
         WITH ORDINALITY AS u(t_from, t_to, res, cell, site_id, origin_cell, dest_cell,
                              origin_site, dest_site, n)
    ORDER BY u.n
    RETURNING group_id  -- identities follow the insertion order: sorted, they map to n
    """
)
DROP_GROUPS = text("DELETE FROM release_groups "
                   "WHERE tenant_id = :tenant_id AND group_id = ANY(:ids) AND pending")
CONFIRM_GROUPS = text("UPDATE release_groups SET pending = false "
                      "WHERE tenant_id = :tenant_id AND pending")

# The span of days any region touching [t_from, t_to) can cover: a region lies inside each
# of its groups, so the groups overlapping the range bound it.
SPAN = text(
    """
    SELECT least(CAST(:t_from AS timestamptz), min(t_from)) AS lo,
           greatest(CAST(:t_to AS timestamptz), max(t_to)) AS hi
    FROM release_groups
    WHERE tenant_id = :tenant_id AND family = :family AND t_from < :t_to AND t_to > :t_from
    """
)

# Every table names the tenant (:tenant_id): Citus runs the statement on the tenant's shard
# (planned on the coordinator across shards, this one crashed it).
_REGIONS = """
    WITH m AS ({membership}),
    sig AS (
      SELECT bucket, {atom}, array_agg(group_id ORDER BY group_id) AS groups
      FROM m GROUP BY bucket, {atom}
    )
    SELECT s.groups, round(hll_cardinality(hll_union_agg(a.subjects)))::bigint AS subjects
    FROM sig s JOIN {table} a ON a.tenant_id = :tenant_id AND a.bucket = s.bucket
                              AND a.{atom} = s.{atom}
    GROUP BY s.groups
"""

_CELL_MEMBERSHIP = " UNION ALL ".join(
    f"""SELECT a.bucket, a.cell, g.group_id FROM release_cell_atoms a
        JOIN release_groups g ON g.tenant_id = :tenant_id AND g.family = 'heatmap'
         AND g.res = {res} AND g.cell = a.{col} AND a.bucket >= g.t_from AND a.bucket < g.t_to
        WHERE a.tenant_id = :tenant_id AND a.bucket >= :lo AND a.bucket < :hi"""
    for res, col in ((9, "cell"), (8, "r8"), (7, "r7"), (6, "r6"), (5, "r5")))

_TRAVEL_MEMBERSHIP = f"""
    SELECT a.bucket, a.atom, g.group_id FROM release_travel_atoms a
    JOIN release_groups g ON g.tenant_id = :tenant_id AND g.family = 'travel'
     AND a.bucket >= g.t_from
     AND a.bucket < g.t_to AND (
       g.report = 'travel'
       OR (g.report = 'visits' AND a.kind = 'stop' AND a.site_id = g.site_id)
       OR (g.report = 'od_sites' AND a.kind = 'trip'
           AND coalesce(a.origin_site, {NO_SITE}) = g.origin_site
           AND coalesce(a.dest_site, {NO_SITE}) = g.dest_site)
       OR (g.report = 'od_h3' AND a.kind = 'trip'
           AND ((a.origin_cell >> 52) & 15) >= g.res AND ((a.dest_cell >> 52) & 15) >= g.res
           AND govern_h3_parent(a.origin_cell, g.res) = g.origin_cell
           AND govern_h3_parent(a.dest_cell, g.res) = g.dest_cell))
    WHERE a.tenant_id = :tenant_id AND a.bucket >= :lo AND a.bucket < :hi
"""

# The regions are a set-wise join of every atom in the span with the groups it lies in. Just
# inserted, the pending groups have no statistics, so the planner takes them for one row and
# loops over them, scanning the span's atoms once per group (measured: 23 s for 3,572 groups
# over a week of 2.3 million pings, against well under a second hashed).
HASHED_REGIONS = text("SET LOCAL enable_nestloop = off")
PLANNED_AS_USUAL = text("SET LOCAL enable_nestloop TO DEFAULT")

REGIONS = {
    "heatmap": text(_REGIONS.format(membership=_CELL_MEMBERSHIP, atom="cell",
                                    table="release_cell_atoms")),
    "travel": text(_REGIONS.format(membership=_TRAVEL_MEMBERSHIP, atom="atom",
                                   table="release_travel_atoms")),
}

# Exact differences of distinct-subject counts, which regions do not bound: distinct counts
# do not add up over atoms, so for a group B holding every atom of a group A, |B| - |A| is
# the number of people only in B's other atoms, and when groups A1..An are exactly B's
# atoms, |A1| + ... + |An| - |B| counts the crossings: a person in two of them adds one.
# Rows of the first kind are nestings (A inside B, at least one of them pending), with C when
# a group is exactly B's other atoms (n = 2); rows of the second kind (travel family only:
# the heatmap's covers are found across levels in Python) are covers of B by three or more
# groups of one level (report, resolution and length of period: groups of one level share
# no atom), where B or a part is pending. Atom sets are compared by their size
# and a sum of 64-bit hashes of their atoms: C's is B's minus A's, and a cover's parts add
# up to B's. A hash collision can only find a C or a cover that is not there, which
# withholds more, never less.
_COUNTS = """
    WITH m AS MATERIALIZED ({membership}),
    g AS (
      SELECT m.group_id, count(*) AS atoms,
             sum(hashtextextended(CAST(m.{atom} AS text),
                                  CAST(extract(epoch FROM m.bucket) AS bigint))::numeric)
               AS print,
             round(hll_cardinality(hll_union_agg(a.subjects)))::bigint AS subjects
      FROM m JOIN {table} a ON a.tenant_id = :tenant_id AND a.bucket = m.bucket
                            AND a.{atom} = m.{atom}
      GROUP BY m.group_id
    )"""

_PAIRS = """,
    shared AS (  -- atoms a pending group shares with each other group
      SELECT p.group_id AS pending_id, o.group_id AS other_id, count(*) AS atoms
      FROM m p JOIN m o ON o.bucket = p.bucket AND o.{atom} = p.{atom}
                       AND o.group_id <> p.group_id
      WHERE p.group_id = ANY(CAST(:pending AS bigint[]))
      GROUP BY p.group_id, o.group_id
    ),
    pairs AS (
      SELECT pending_id AS inner_id, other_id AS outer_id, atoms FROM shared
      UNION SELECT other_id, pending_id, atoms FROM shared
    ),
    nested AS (
      SELECT s.inner_id, s.outer_id, i.subjects AS inner_subjects,
             o.subjects AS outer_subjects, o.atoms - i.atoms AS rest_atoms,
             o.print - i.print AS rest_print
      FROM pairs s
      JOIN g i ON i.group_id = s.inner_id
      JOIN g o ON o.group_id = s.outer_id
      WHERE s.atoms = i.atoms AND i.atoms < o.atoms
    )"""

_COVERS = """,
    level AS MATERIALIZED (
      SELECT group_id, report, res, t_to - t_from AS length FROM release_groups
      WHERE tenant_id = :tenant_id AND family = '{family}' AND t_from < :hi AND t_to > :lo
    ),
    inside AS (  -- for a pending whole, every group; for a released one, the pending level's
      SELECT pending_id AS whole_id, other_id AS part_id, atoms FROM shared
      UNION ALL
      SELECT w.group_id, o.group_id, count(*)
      FROM m w JOIN m o ON o.bucket = w.bucket AND o.{atom} = w.{atom}
                       AND o.group_id <> w.group_id
      WHERE w.group_id IN (SELECT outer_id FROM nested
                           WHERE inner_id = ANY(CAST(:pending AS bigint[])))
        AND NOT w.group_id = ANY(CAST(:pending AS bigint[]))
        AND o.group_id IN (SELECT l.group_id FROM level l JOIN level p
                             ON p.report = l.report AND p.res IS NOT DISTINCT FROM l.res
                            AND p.length = l.length
                           WHERE p.group_id = ANY(CAST(:pending AS bigint[])))
      GROUP BY w.group_id, o.group_id
    ),
    parts AS (  -- groups inside a whole, one per atom set (the same set asked twice counts once)
      SELECT DISTINCT ON (i.whole_id, l.report, l.res, l.length, p.atoms, p.print)
             i.whole_id, l.report, l.res, l.length, p.group_id, p.atoms, p.subjects
      FROM inside i
      JOIN g p ON p.group_id = i.part_id AND p.atoms = i.atoms
      JOIN level l ON l.group_id = i.part_id
      ORDER BY i.whole_id, l.report, l.res, l.length, p.atoms, p.print, p.group_id
    ),
    covers AS (
      SELECT whole_id, array_agg(group_id ORDER BY group_id) AS parts,
             sum(subjects)::bigint AS parts_subjects, sum(atoms) AS atoms
      FROM parts GROUP BY whole_id, report, res, length
      HAVING count(*) >= 3
    )"""

_NESTED_ROWS = """
    SELECT n.inner_id, n.outer_id, n.inner_subjects, n.outer_subjects,
           c.group_id AS rest_id, c.subjects AS rest_subjects,
           NULL::bigint[] AS parts, NULL::bigint AS parts_subjects
    FROM nested n
    LEFT JOIN g c ON c.atoms = n.rest_atoms AND c.print = n.rest_print
"""

_COVER_ROWS = """
    UNION ALL
    SELECT NULL, c.whole_id, NULL, w.subjects, NULL, NULL, c.parts, c.parts_subjects
    FROM covers c JOIN g w ON w.group_id = c.whole_id AND w.atoms = c.atoms
"""

# The heatmap's covers are found in Python (govern.policy.release.chain_covers) from where
# each group lies (PLACED), across levels; the travel family's, of one level each, here.
_HEATMAP = {"membership": _CELL_MEMBERSHIP, "atom": "cell", "table": "release_cell_atoms",
            "family": "heatmap"}
_TRAVEL = {"membership": _TRAVEL_MEMBERSHIP, "atom": "atom", "table": "release_travel_atoms",
           "family": "travel"}
NESTINGS = {
    "heatmap": text((_COUNTS + _PAIRS + _NESTED_ROWS).format(**_HEATMAP)),
    "travel": text((_COUNTS + _PAIRS + _COVERS + _NESTED_ROWS + _COVER_ROWS).format(**_TRAVEL)),
}

# Every heatmap group of the span where it lies, with its counts (chain_covers).
PLACED = text((_COUNTS + """
    SELECT g.group_id, r.t_from, r.t_to, r.res, r.cell, g.atoms, g.subjects
    FROM g JOIN release_groups r ON r.tenant_id = :tenant_id AND r.group_id = g.group_id
""").format(**_HEATMAP))

# Aggregate retention of the release tables (the retention run, with the rollups).
EXPIRE = [
    text("DELETE FROM release_cell_atoms WHERE bucket < :cutoff"),
    text("DELETE FROM release_travel_atoms WHERE bucket < :cutoff"),
    text("DELETE FROM release_days WHERE day < :cutoff"),
    text("DELETE FROM release_groups WHERE t_from < :cutoff"),
    text("DELETE FROM release_answers WHERE t_from < :cutoff"),
]
