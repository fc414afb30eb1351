"""Aggregate report SQL: rollups only, never raw pings, so answer time does not grow with
the raw ping volume and reports outlive the raw data."""

from sqlalchemy import text

RESOLUTION_COLUMN = {9: "cell", 8: "r8", 7: "r7", 6: "r6", 5: "r5"}


def _heatmap_select(resolution: int, table: str = "rollups") -> str:
    """Cells at `resolution` with pings, distinct subjects, and the smallest daily distinct
    subject count among the days the cell has data (for sticky suppression), from the
    hourly rollups (or a release basis: the same columns per day) of [t_from, t_to)."""
    col = RESOLUTION_COLUMN[resolution]
    return f"""
        WITH per_day AS (
          SELECT {col} AS cell, date_trunc('day', bucket, 'UTC') AS day,
                 sum(pings) AS pings, hll_union_agg(subjects) AS subjects
          FROM {table}
          WHERE tenant_id = :tenant_id AND bucket >= :t_from AND bucket < :t_to
          GROUP BY 1, 2
        )
        SELECT cell, sum(pings)::bigint AS pings,
               round(hll_cardinality(hll_union_agg(subjects)))::bigint AS subjects,
               min(round(hll_cardinality(subjects)))::bigint AS min_day_subjects
        FROM per_day
        GROUP BY cell
        """


def heatmap(resolution: int):
    """The heatmap from the hourly rollups (any range; the fallback for periods not built)."""
    return text(_heatmap_select(resolution) + " ORDER BY cell")


def heatmap_from_basis(resolution: int):
    """The heatmap from a frozen release basis (govern.sql.release): exact releases."""
    return text(_heatmap_select(resolution, "release_cell_atoms") + " ORDER BY cell")


# -- rollup periods: closed ISO weeks and months, precomputed (govern.domain.rollup_periods) --

# A built period's cells; nothing when the period is not built (or was invalidated).
PERIOD_CELLS = text(
    """
    SELECT c.cell, c.pings, c.subjects, c.min_day_subjects
    FROM rollup_period_cells c
    WHERE c.period = :period AND c.period_start = :start AND c.resolution = :resolution
      AND EXISTS (SELECT 1 FROM rollup_periods h
                  WHERE h.tenant_id = c.tenant_id AND h.period = :period
                    AND h.period_start = :start)
    ORDER BY c.cell
    """
)

PERIOD_BUILT = text(
    "SELECT 1 FROM rollup_periods WHERE period = :period AND period_start = :start"
)

FIRST_BUCKET = text("SELECT min(bucket) FROM rollups")

BUILT_PERIODS = text(
    "SELECT period, period_start FROM rollup_periods WHERE period_start >= :since"
)

# Builders and late pings of one tenant take turns: a build reads the hourly rollups only
# after the lock is held, and a late ping drops the periods it lands in only under it, so
# a period is never marked built without a ping committed before the mark.
LOCK_PERIODS = text(
    "SELECT pg_advisory_xact_lock(hashtext('govern.rollup_periods'), "
    "hashtext(CAST(:tenant_id AS text)))"
)

INVALIDATE_PERIODS = text(
    "DELETE FROM rollup_periods WHERE period_start <= :last AND period_end > :first"
)

CLEAR_PERIOD = text(
    """
    WITH h AS (DELETE FROM rollup_periods WHERE period = :period AND period_start = :start)
    DELETE FROM rollup_period_cells WHERE period = :period AND period_start = :start
    """
)


def build_period_cells(resolution: int):
    return text(
        "INSERT INTO rollup_period_cells (tenant_id, period, period_start, resolution, cell, "
        "pings, subjects, min_day_subjects) "
        f"SELECT :tenant_id, :period, :start, {int(resolution)}, h.cell, h.pings, h.subjects, "
        f"h.min_day_subjects FROM ({_heatmap_select(resolution)}) AS h"
    )


MARK_BUILT = text(
    """
    INSERT INTO rollup_periods (tenant_id, period, period_start, period_end, cells)
    VALUES (:tenant_id, :period, :start, :end, :cells)
    """
)

# Aggregate retention: a period any part of which is past the cut-off is no longer served.
EXPIRE_PERIODS = text(
    """
    WITH h AS (DELETE FROM rollup_periods WHERE period_start < :cutoff)
    DELETE FROM rollup_period_cells WHERE period_start < :cutoff
    """
)
