"""Aggregate report SQL: rollups only, never raw pings, so answer time does not grow with
the raw ping volume and reports outlive the raw data."""

from sqlalchemy import text

RESOLUTION_COLUMN = {9: "cell", 8: "r8", 7: "r7", 6: "r6", 5: "r5"}


def heatmap(resolution: int):
    """Cells at `resolution` with pings, distinct subjects, and the smallest daily distinct
    subject count among the days the cell has data (for sticky suppression)."""
    col = RESOLUTION_COLUMN[resolution]
    return text(
        f"""
        WITH per_day AS (
          SELECT {col} AS cell, date_trunc('day', bucket, 'UTC') AS day,
                 sum(pings) AS pings, hll_union_agg(subjects) AS subjects
          FROM rollups
          WHERE bucket >= :t_from AND bucket < :t_to
          GROUP BY 1, 2
        )
        SELECT cell, sum(pings)::bigint AS pings,
               round(hll_cardinality(hll_union_agg(subjects)))::bigint AS subjects,
               min(round(hll_cardinality(subjects)))::bigint AS min_day_subjects
        FROM per_day
        GROUP BY cell
        ORDER BY cell
        """
    )


CHARGE_BUDGET = text(
    """
    INSERT INTO dp_budget AS b (tenant_id, day, spent, queries)
    VALUES (:tenant_id, :day, :epsilon, 1)
    ON CONFLICT (tenant_id, day) DO UPDATE
      SET spent = b.spent + EXCLUDED.spent, queries = b.queries + 1
      WHERE b.spent + EXCLUDED.spent <= :limit + 1e-9
    RETURNING spent
    """
)

BUDGET_SPENT = text("SELECT coalesce(max(spent), 0) FROM dp_budget WHERE day = :day")
