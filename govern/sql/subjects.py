"""Subject and device SQL."""

from sqlalchemy import text

# the history ingest judges late pings by: off duty then means dropped, even if the app
# uploads them after going back on duty
RECORD_DUTY = text("INSERT INTO duty_events (tenant_id, subject_id, at, on_duty) "
                   "VALUES (:t, :s, :at, :on)")

# The tenant-less OsmAnd route of a device identifier (SECURITY DEFINER functions: the
# routing table is across tenants and the app role cannot read it).
CLAIM_DEVICE_ROUTE = text("SELECT govern_claim_device_route(:i, :d)")
DEVICE_ROUTE = text("SELECT tenant_id, device_id FROM govern_device_route(:i)")
RETIRE_DEVICE_ROUTES = text("SELECT govern_retire_device_routes(CAST(:d AS uuid[]))")
