"""Site SQL: the sites table itself. (Attributing stops and trip ends to sites is trips SQL.)"""

from sqlalchemy import text

_COLUMNS = ("site_id, name, kind, geometry, radius_m, created_at, created_by, updated_at")

GET_SITE = text(f"SELECT {_COLUMNS} FROM sites WHERE tenant_id = :t AND site_id = :s")
LIST_SITES = text(f"SELECT {_COLUMNS} FROM sites WHERE tenant_id = :t ORDER BY name")
DELETE_SITE = text("DELETE FROM sites WHERE tenant_id = :t AND site_id = :s")


def insert_site(area_expression: str):
    """The INSERT with the site's area computed by one of the zone drawing's AREA_SQL
    expressions (govern.sql.zone_drawing), its parameters bound by the caller."""
    return text(f"INSERT INTO sites (tenant_id, site_id, name, kind, geometry, radius_m, area, "
                f"created_by) VALUES (:t, :s, :name, :kind, CAST(:geometry AS jsonb), "
                f":radius_m, {area_expression}, :actor)")


def update_site(assignments: list[str]):
    """The UPDATE of the given `column = expression` assignments (fixed texts the domain
    composes, never user input: values are bound parameters)."""
    return text(f"UPDATE sites SET {', '.join(assignments)} WHERE site_id = :s")
