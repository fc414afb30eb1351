"""Health, metrics and request-limit SQL (the API's own, no tenant data)."""

from sqlalchemy import text

# readiness: the database answers at all
PING_DATABASE = text("SELECT 1")

# open and overdue subject requests of every tenant (a SECURITY DEFINER function: counts
# only, so /metrics needs no tenant scope)
REQUEST_COUNTS = text("SELECT * FROM govern_request_counts()")

# The first free one of `slots` heavy-read slots (advisory locks (space + slot, key)), taken
# and held until the transaction ends; NULL when all are taken. The scan stops at the first
# lock it gets (LIMIT 1), so it takes at most one.
TRY_HEAVY_SLOT = text(
    """
    SELECT slot FROM generate_series(0, CAST(:slots AS int) - 1) AS slot
    WHERE pg_try_advisory_xact_lock(CAST(:space AS int) + slot, CAST(:key AS int))
    LIMIT 1
    """
)
