"""Tenant SQL."""

from sqlalchemy import text

# Every tenant, in a stable order: jobs that visit all tenants (retention, trips, periods)
# run on the owner role, which row-level security does not scope.
TENANT_IDS = text("SELECT tenant_id FROM tenants ORDER BY tenant_id")
