"""security round two: tenant-scoped device routes; purposes' read cut-offs never move back

Purposes get `window_floor` (the latest cut-off any earlier `retention_days` setting put in
force: lengthening a window never brings back what a shorter one had already closed) and
`individual_since` (when individual reads were last allowed: widening a purpose from
aggregate-only applies only to data collected after it).

Tenant device routes: OsmAnd identifiers are scoped to a tenant; the global route is legacy.

Traccar Client now posts to `/v1/ingest/osmand/<tenant id>`, where an identifier is looked
up in that tenant only, so two tenants may use the same identifier and enrolling one never
answers for another tenant. The global identifier -> tenant route (`device_routes`) is kept
for the devices that have it when this migration runs and, from now on, only for devices
whose identifier the server generated (claimed through `govern_claim_device_route`; an
identifier an admin chose never gets one, so it cannot be used to probe other tenants).
A revoked or deleted device's route is retired, never deleted: its identifier can never
route a ping again, to anyone.

Revision ID: 0012_security_round_two
Revises: 0011_zone_sweeps
Create Date: 2026-12-01
"""

from alembic import op

from govern.config import APP_ROLE

revision = "0012_security_round_two"
down_revision = "0011_zone_sweeps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE purposes ADD COLUMN window_floor timestamptz, "
               "ADD COLUMN individual_since timestamptz")
    op.execute("ALTER TABLE device_routes ADD COLUMN retired_at timestamptz")
    op.execute("DROP TRIGGER IF EXISTS devices_route ON devices")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION govern_sync_device_route() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
          IF (TG_OP = 'UPDATE' AND NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
             OR TG_OP = 'DELETE' THEN
            UPDATE device_routes SET retired_at = COALESCE(retired_at, now())
            WHERE identifier = OLD.identifier AND tenant_id = OLD.tenant_id
              AND device_id = OLD.device_id;
          END IF;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER devices_route AFTER UPDATE OR DELETE ON devices "
        "FOR EACH ROW EXECUTE FUNCTION govern_sync_device_route()"
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION govern_device_route(p_identifier text)
        RETURNS TABLE (tenant_id uuid, device_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
          SELECT r.tenant_id, r.device_id FROM device_routes r
          WHERE r.identifier = p_identifier AND r.retired_at IS NULL
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION govern_claim_device_route(p_identifier text, p_device_id uuid)
        RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
          t uuid := NULLIF(current_setting('govern.tenant_id', true), '')::uuid;
        BEGIN
          -- only a live device of the caller's own tenant, and only an identifier no device
          -- of any tenant ever routed by
          IF t IS NULL OR NOT EXISTS (
              SELECT 1 FROM devices d WHERE d.tenant_id = t AND d.device_id = p_device_id
                AND d.identifier = p_identifier AND d.revoked_at IS NULL) THEN
            RETURN false;
          END IF;
          INSERT INTO device_routes (identifier, tenant_id, device_id)
          VALUES (p_identifier, t, p_device_id) ON CONFLICT (identifier) DO NOTHING;
          RETURN FOUND;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION govern_claim_device_route(text, uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION govern_claim_device_route(text, uuid) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("ALTER TABLE purposes DROP COLUMN IF EXISTS window_floor, "
               "DROP COLUMN IF EXISTS individual_since")
    op.execute("DROP FUNCTION IF EXISTS govern_claim_device_route(text, uuid)")
    op.execute("DROP TRIGGER IF EXISTS devices_route ON devices")
    op.execute("DELETE FROM device_routes WHERE retired_at IS NOT NULL")
    op.execute("ALTER TABLE device_routes DROP COLUMN retired_at")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION govern_device_route(p_identifier text)
        RETURNS TABLE (tenant_id uuid, device_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
          SELECT r.tenant_id, r.device_id FROM device_routes r WHERE r.identifier = p_identifier
        $$
        """
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION govern_sync_device_route() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            IF NEW.revoked_at IS NULL THEN
              INSERT INTO device_routes (identifier, tenant_id, device_id)
              VALUES (NEW.identifier, NEW.tenant_id, NEW.device_id);
            END IF;
          ELSIF TG_OP = 'UPDATE' THEN
            IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
              DELETE FROM device_routes WHERE identifier = OLD.identifier
                AND tenant_id = OLD.tenant_id AND device_id = OLD.device_id;
            END IF;
          ELSIF TG_OP = 'DELETE' THEN
            DELETE FROM device_routes WHERE identifier = OLD.identifier
              AND tenant_id = OLD.tenant_id AND device_id = OLD.device_id;
          END IF;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER devices_route AFTER INSERT OR UPDATE OR DELETE ON devices "
        "FOR EACH ROW EXECUTE FUNCTION govern_sync_device_route()"
    )
