"""Tenant policy SQL."""

from sqlalchemy import text

# Policy versions of one tenant are written one at a time (each is the current one changed).
LOCK_POLICY = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")
