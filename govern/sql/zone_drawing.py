"""Drawing privacy zones: their shapes on the spheroid, the hidden region around what they
protect, the per-tenant limits, and storing them. (Applying zones to pings is sql/zones.py.)"""

from sqlalchemy import text

AREA_SQL = {
    "circle": "ST_Multi(ST_SetSRID(ST_GeomFromText(:wkt), 4326))",
    "polygon": "ST_Multi(ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON(:geojson), 4326)))",
}

# Points around the centre at `radius` on the spheroid (PostGIS ST_Project), the radius
# stretched so the 64-gon circumscribes the circle: every point within the radius is inside.
RING = text(
    """
    SELECT ST_X(p::geometry) AS lon, ST_Y(p::geometry) AS lat
    FROM generate_series(0, :n - 1) AS k,
         LATERAL ST_Project(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
                            :radius / cos(pi() / :n), 2 * pi() * k / :n) AS p
    ORDER BY k
    """
)

POLE_DISTANCE = text(
    "SELECT ST_Distance(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, "
    "ST_SetSRID(ST_MakePoint(0, :pole), 4326)::geography)"
)

PROJECT = text(
    "SELECT ST_X(p::geometry) AS lon, ST_Y(p::geometry) AS lat FROM ST_Project("
    "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :distance, radians(:bearing)) AS p"
)

# A polygon's hidden region: the drawn shape swept along (dx, dy) degrees (its Minkowski sum
# with that segment: the shape, its translate, and each edge's parallelogram), buffered by
# the margin on the spheroid, and always the drawn shape itself (a buffer can misbehave at a
# pole or the antimeridian; the union keeps what was drawn hidden whatever happens). Holes
# narrower than the sweep are filled: hiding more is the safe side.
POLYGON_HIDING = text(
    """
    WITH drawn AS (SELECT ST_GeomFromText(:drawn, 4326) AS g),
    pieces AS (
      SELECT g AS q FROM drawn
      UNION ALL SELECT ST_Translate(g, :dx, :dy) FROM drawn
      UNION ALL SELECT ST_ConvexHull(ST_Collect(d.geom, ST_Translate(d.geom, :dx, :dy)))
      FROM drawn, ST_DumpSegments(drawn.g) AS d WHERE :dx <> 0 OR :dy <> 0
    ),
    swept AS (SELECT ST_CollectionExtract(ST_Union(q), 3) AS s FROM pieces),
    hidden AS (
      SELECT ST_Multi(ST_CollectionExtract(ST_Union(CASE WHEN :margin > 0
          THEN ST_Buffer(s::geography, :margin, 'quad_segs=4')::geometry ELSE s END,
          (SELECT g FROM drawn)), 3)) AS a
      FROM swept
    )
    SELECT ST_AsText(a) AS area,
           ST_AsText(ST_Multi(ST_CollectionExtract(ST_Union(a, CASE WHEN :trim > 0
               THEN ST_Buffer(a::geography, :trim, 'quad_segs=4')::geometry ELSE a END), 3)))
             AS reach
    FROM hidden
    """
)

METRES = text(
    "SELECT sqrt(ST_Area(g::geography) / pi()) AS scale, ST_Y(ST_Centroid(g)) AS lat "
    "FROM ST_GeomFromText(:drawn, 4326) AS g"
)

LOCK_ZONES = text("SELECT pg_advisory_xact_lock(hashtextextended("
                   "'govern.zones:' || CAST(:tenant_id AS text), 0))")

ZONE_TOTALS = text(
    """
    SELECT count(*) AS zones,
           count(*) FILTER (WHERE subject_id IS NULL) AS tenant_wide,
           coalesce(sum(vertices) FILTER (WHERE subject_id IS NULL), 0) AS tenant_wide_vertices,
           count(*) FILTER (WHERE subject_id = :subject_id) AS subject_zones,
           coalesce(sum(vertices) FILTER (WHERE subject_id = :subject_id), 0)
             AS subject_vertices
    FROM zones WHERE tenant_id = :tenant_id
    """
)

VERTICES = text("SELECT ST_NPoints(ST_GeomFromText(:wkt))")


def as_text(area_expression: str):
    """The WKT of one of AREA_SQL's expressions (its parameters bound by the caller)."""
    assert area_expression in AREA_SQL.values()
    return text(f"SELECT ST_AsText({area_expression})")


INSERT_ZONE = text(
    "INSERT INTO zones (tenant_id, zone_id, name, subject_id, geometry, radius_m, "
    "drawn, area, reach, trim_m, salt, hiding, vertices, scale_m, created_by) VALUES "
    "(:tenant_id, :zone_id, :name, :subject_id, CAST(:geometry AS jsonb), :radius_m, "
    "ST_Multi(ST_SetSRID(ST_GeomFromText(:drawn), 4326)), "
    "ST_Multi(ST_SetSRID(ST_GeomFromText(:area), 4326)), "
    "ST_Multi(ST_SetSRID(ST_GeomFromText(:reach), 4326)), :trim_m, :salt, :hiding, "
    ":vertices, :scale_m, :actor)")
