"""Health, metrics and request-limit SQL (the API's own, no tenant data)."""

from sqlalchemy import text

# readiness: the database answers at all
PING_DATABASE = text("SELECT 1")

# open and overdue subject requests of every tenant (a SECURITY DEFINER function: counts
# only, so /metrics needs no tenant scope)
REQUEST_COUNTS = text("SELECT * FROM govern_request_counts()")

# one of a tenant's heavy-read slots, held until the request's transaction ends
TRY_HEAVY_SLOT = text("SELECT pg_try_advisory_xact_lock(:a, :b)")
