"""/v1/zones: GeoJSON Polygon/MultiPolygon, or Point + radius_m; anything invalid is 422."""

import math

import pytest

SQUARE = [[13.40, 52.50], [13.41, 52.50], [13.41, 52.51], [13.40, 52.51], [13.40, 52.50]]
HOLE = [[13.403, 52.503], [13.407, 52.503], [13.407, 52.507], [13.403, 52.507],
        [13.403, 52.503]]
FAR_SQUARE = [[2.30, 48.85], [2.31, 48.85], [2.31, 48.86], [2.30, 48.86], [2.30, 48.85]]


def polygon(*rings):
    return {"type": "Polygon", "coordinates": list(rings)}


def create(tenant, geometry, radius_m=None, **values):
    body = {"name": "home", "geometry": geometry, **values}
    if radius_m is not None:
        body["radius_m"] = radius_m
    return tenant.post("/v1/zones", body)


def stored(superuser, zone_id):
    """The protected shape as drawn; every stored zone's hidden region covers it."""
    row = superuser.execute(
        "SELECT ST_GeometryType(drawn), ST_SRID(drawn), ST_NumGeometries(drawn), "
        "ST_Area(drawn::geography), ST_NRings(drawn), ST_Covers(area, drawn), "
        "ST_Covers(reach, area), ST_GeometryType(area), ST_SRID(area) "
        "FROM zones WHERE zone_id = %s", (zone_id,)).fetchone()
    assert row[5:] == (True, True, "ST_MultiPolygon", 4326)
    return row[:5]


def test_polygon_with_hole_is_multipolygon_4326_and_the_hole_is_outside(tenant, superuser):
    resp = create(tenant, polygon(SQUARE, HOLE))
    assert resp.status_code == 201, resp.get_json()
    zone = resp.get_json()
    assert zone["geometry"] == polygon(SQUARE, HOLE) and zone["subject_id"] is None
    assert zone["created_by"] == f"member:{tenant.owner_member_id}"
    gtype, srid, parts, _, rings = stored(superuser, zone["zone_id"])
    assert (gtype, srid, parts, rings) == ("ST_MultiPolygon", 4326, 1, 2)
    inside_hole, inside_ring = superuser.execute(
        "SELECT ST_Contains(drawn, ST_SetSRID(ST_MakePoint(13.405, 52.505), 4326)), "
        "ST_Contains(drawn, ST_SetSRID(ST_MakePoint(13.401, 52.501), 4326)) "
        "FROM zones WHERE zone_id = %s", (zone["zone_id"],)).fetchone()
    assert (inside_hole, inside_ring) == (False, True)


def test_multipolygon_and_altitude_dropped(tenant, superuser):
    geometry = {"type": "MultiPolygon", "coordinates": [[SQUARE], [FAR_SQUARE]]}
    resp = create(tenant, geometry)
    assert resp.status_code == 201, resp.get_json()
    assert stored(superuser, resp.get_json()["zone_id"])[:3] == ("ST_MultiPolygon", 4326, 2)
    ring = [[lon, lat, 34.0] for lon, lat in SQUARE]
    resp = create(tenant, polygon(ring))
    assert resp.status_code == 201, resp.get_json()
    assert superuser.execute("SELECT ST_NDims(area) + ST_NDims(drawn) FROM zones "
                             "WHERE zone_id = %s",
                             (resp.get_json()["zone_id"],)).fetchone()[0] == 4


def test_one_km_circle_has_about_pi_square_km(tenant, superuser):
    resp = create(tenant, {"type": "Point", "coordinates": [13.405, 52.52]}, radius_m=1000)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["radius_m"] == 1000
    gtype, srid, parts, area, _ = stored(superuser, resp.get_json()["zone_id"])
    assert (gtype, srid, parts) == ("ST_MultiPolygon", 4326, 1)
    assert area == pytest.approx(math.pi * 1e6, rel=0.01)
    north = create(tenant, {"type": "Point", "coordinates": [25.0, 70.0]}, radius_m=1000)
    area = stored(superuser, north.get_json()["zone_id"])[3]
    assert area == pytest.approx(math.pi * 1e6, rel=0.01)  # true metres at 70 degrees north


def covers(superuser, zone_id, lon, lat) -> bool:
    """The drawn shape covers the point, and so does the hidden region."""
    drawn, hidden = superuser.execute(
        "SELECT ST_IsValid(drawn) AND ST_Intersects(drawn, g), "
        "ST_IsValid(area) AND ST_Intersects(area, g) "
        "FROM zones, ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS g WHERE zone_id = %s",
        (lon, lat, zone_id)).fetchone()
    assert hidden or not drawn
    return drawn


def test_circle_across_the_antimeridian_covers_its_centre_and_both_sides(tenant, superuser):
    zone_id = create(tenant, {"type": "Point", "coordinates": [179.999, 0]},
                     radius_m=1000).get_json()["zone_id"]
    assert covers(superuser, zone_id, 179.999, 0)
    assert covers(superuser, zone_id, -179.9995, 0)  # 167 m east, across the line
    assert not covers(superuser, zone_id, 0, 0)


def test_circle_near_the_pole_covers_points_across_it(tenant, superuser):
    zone_id = create(tenant, {"type": "Point", "coordinates": [0, 89.999]},
                     radius_m=1000).get_json()["zone_id"]
    assert covers(superuser, zone_id, 0, 89.999)
    assert covers(superuser, zone_id, 120, 89.9995)


def test_zone_for_a_subject(tenant):
    sid = tenant.subject()["subject_id"]
    zone = create(tenant, polygon(SQUARE), subject_id=sid).get_json()
    create(tenant, polygon(FAR_SQUARE))
    assert zone["subject_id"] == sid
    listed = tenant.get(f"/v1/zones?subject_id={sid}").get_json()["zones"]
    assert [z["zone_id"] for z in listed] == [zone["zone_id"]]
    assert len(tenant.get("/v1/zones").get_json()["zones"]) == 2


def bow_tie():
    return polygon([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]])


def big_ring(n):
    ring = [[13 + math.cos(2 * math.pi * i / n) * 0.01, 52 + math.sin(2 * math.pi * i / n) * 0.01]
            for i in range(n)]
    return polygon(ring + [ring[0]])


POINT = {"type": "Point", "coordinates": [10, 50]}


def assert_all_refused(tenant, superuser, cases):
    """Each case (geometry, radius, detail key, words of its message) is 422; nothing stored."""
    for name, (geometry, radius, key, words) in cases.items():
        resp = create(tenant, geometry, radius_m=radius)
        assert resp.status_code == 422, (name, resp.get_json())
        error = resp.get_json()["error"]
        assert error["code"] == "invalid_geometry", (name, error)
        assert key in error["details"], (name, error)
        assert words in " ".join(error["details"][key]).lower(), (name, error)
    assert superuser.execute("SELECT count(*) FROM zones WHERE tenant_id = %s",
                             (tenant.tenant_id,)).fetchone()[0] == 0


def test_bad_polygon_shapes_are_422(tenant, superuser):
    assert_all_refused(tenant, superuser, {
        "self_intersecting": (bow_tie(), None, "geometry", "self-intersection"),
        "collinear": (polygon([[0, 0], [1, 0], [2, 0], [0, 0]]), None, "geometry",
                      "not valid"),
        "unclosed_ring": (polygon(SQUARE[:-1] + [[13.40, 52.505]]), None,
                          "geometry.coordinates[0]", "not closed"),
        "empty_polygon": (polygon(), None, "geometry.coordinates", "empty"),
        "empty_multipolygon": ({"type": "MultiPolygon", "coordinates": []}, None,
                               "geometry.coordinates", "empty"),
        "three_positions": (polygon([[0, 0], [1, 0], [0, 0]]), None, "geometry.coordinates[0]",
                            "at least 4"),
        "too_many_vertices": (big_ring(10_001), None, "geometry.coordinates", "at most 10000"),
    })
    assert create(tenant, big_ring(9_999)).status_code == 201  # 10000 positions: the limit


def test_coordinates_out_of_range_are_422(tenant, superuser):
    assert_all_refused(tenant, superuser, {
        "longitude": (polygon([[0, 0], [181, 0], [1, 1], [0, 0]]), None,
                      "geometry.coordinates[0][1]", "longitude"),
        "latitude": ({"type": "Point", "coordinates": [10, 91]}, 100, "geometry.coordinates",
                     "latitude"),
        "not_numbers": (polygon([[0, 0], ["1", 0], [1, 1], [0, 0]]), None,
                        "geometry.coordinates[0][1]", "finite numbers"),
    })


def test_bad_radius_is_422(tenant, superuser):
    assert_all_refused(tenant, superuser, {
        "zero": (POINT, 0, "radius_m", "greater than 0"),
        "negative": (POINT, -5, "radius_m", "greater than 0"),
        "over_50_km": (POINT, 50_001, "radius_m", "at most 50000"),
        "not_a_number": (POINT, "big", "radius_m", "number"),
        "point_without_radius": (POINT, None, "radius_m", "required"),
        "radius_with_polygon": (polygon(SQUARE), 100, "radius_m", "only allowed with a point"),
    })


def test_wrong_geojson_type_is_422(tenant, superuser):
    assert_all_refused(tenant, superuser, {
        "line_string": ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, None,
                        "geometry.type", "not accepted"),
        "feature": ({"type": "Feature", "geometry": polygon(SQUARE)}, None, "geometry.type",
                    "feature"),
        "lower_case": ({"type": "polygon", "coordinates": [SQUARE]}, None, "geometry.type",
                       "not accepted"),
        "no_type": ({"coordinates": [SQUARE]}, None, "geometry.type", "required"),
        "not_an_object": ("POLYGON((0 0,1 0,1 1,0 0))", None, "geometry", "geojson"),
    })
    resp = tenant.post("/v1/zones", {})
    assert resp.status_code == 422
    assert {"name", "geometry"} <= set(resp.get_json()["error"]["details"])


def test_delete_zone(tenant, superuser):
    zone_id = create(tenant, polygon(SQUARE)).get_json()["zone_id"]
    assert tenant.delete(f"/v1/zones/{zone_id}").status_code == 204
    assert tenant.get(f"/v1/zones/{zone_id}").status_code == 404
    assert tenant.audit_actions(superuser)[-2:] == ["zone.create", "zone.delete"]


def test_roles(tenant):
    zone_id = create(tenant, polygon(SQUARE)).get_json()["zone_id"]
    auditor = tenant.token_for("auditor")
    assert tenant.get(f"/v1/zones/{zone_id}", token=auditor).status_code == 200
    assert tenant.delete(f"/v1/zones/{zone_id}", token=auditor).status_code == 403
    for role in ("analyst", "dispatcher"):
        token = tenant.token_for(role)
        assert tenant.get("/v1/zones", token=token).status_code == 403
        assert tenant.post("/v1/zones", {"name": "x", "geometry": polygon(SQUARE)},
                           token=token).status_code == 403
    assert tenant.post("/v1/zones", {"name": "x", "geometry": polygon(SQUARE)},
                       token=tenant.token_for("admin")).status_code == 201


def test_other_tenants_zone_and_subject_are_404(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    zone_id = create(b, polygon(SQUARE)).get_json()["zone_id"]
    assert a.get(f"/v1/zones/{zone_id}").status_code == 404
    assert a.delete(f"/v1/zones/{zone_id}").status_code == 404
    assert a.get("/v1/zones").get_json()["zones"] == []
    b_sid = b.subject()["subject_id"]
    resp = create(a, polygon(SQUARE), subject_id=b_sid)
    assert resp.status_code == 404
    assert b.get(f"/v1/zones/{zone_id}").status_code == 200
