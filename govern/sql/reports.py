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
