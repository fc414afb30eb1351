"""Purpose SQL."""

from sqlalchemy import text

# Purposes of one tenant are created one at a time (the free bit is read, then taken).
LOCK_PURPOSES = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")

# stored pings of a new purpose are at its precision: retention starts from here
START_RETENTION_STATE = text("INSERT INTO retention_state (tenant_id, purpose_id, "
                             "precision_applied) VALUES (:t, :p, :pr)")

# a purpose is in use once any stored ping serves it
PINGS_SERVE_BIT = text(
    "SELECT EXISTS (SELECT 1 FROM pings WHERE tenant_id = :tenant_id "
    "AND purpose_mask & (1::bigint << :bit) <> 0)")
HAS_PINGS_TABLE = text("SELECT to_regclass('pings') IS NOT NULL")
