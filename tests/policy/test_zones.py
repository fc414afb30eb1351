import math

import pytest
import shapely

from govern.policy.zones import GeometryInvalid, validate_zone

SQUARE = [[13.0, 52.0], [13.1, 52.0], [13.1, 52.1], [13.0, 52.1], [13.0, 52.0]]
HOLE = [[13.02, 52.02], [13.02, 52.08], [13.08, 52.08], [13.08, 52.02], [13.02, 52.02]]
OTHER = [[14.0, 52.0], [14.1, 52.0], [14.1, 52.1], [14.0, 52.0]]


def polygon(*rings):
    return {"type": "Polygon", "coordinates": list(rings)}


def invalid(geometry, radius_m=None, **kwargs) -> dict:
    with pytest.raises(GeometryInvalid) as exc:
        validate_zone(geometry, radius_m, **kwargs)
    assert exc.value.message == str(exc.value)
    assert exc.value.message.startswith("invalid zone geometry: ")
    return exc.value.details


# --------------------------------------------------------------------------- valid shapes


def test_polygon_with_hole():
    geom = validate_zone(polygon(SQUARE, HOLE), None)
    assert isinstance(geom, shapely.Polygon)
    assert len(geom.interiors) == 1
    assert geom.area == pytest.approx(0.01 - 0.0036)
    assert not geom.contains(shapely.Point(13.05, 52.05))
    assert geom.contains(shapely.Point(13.01, 52.01))


def test_polygon_altitudes_are_dropped_and_orientation_is_free():
    ring = [[lon, lat, 35.5] for lon, lat in reversed(SQUARE)]
    geom = validate_zone(polygon(ring))
    assert not geom.has_z
    assert geom.area == pytest.approx(0.01)


def test_multipolygon():
    geom = validate_zone({"type": "MultiPolygon", "coordinates": [[SQUARE, HOLE], [OTHER]]})
    assert isinstance(geom, shapely.MultiPolygon)
    assert len(geom.geoms) == 2


def test_point_with_radius():
    geom = validate_zone({"type": "Point", "coordinates": [13.4, 52.5]}, 150)
    assert geom == shapely.Point(13.4, 52.5)
    assert validate_zone({"type": "Point", "coordinates": [13.4, 52.5, 40]}, 50_000.0).equals(
        shapely.Point(13.4, 52.5))


# --------------------------------------------------------------------------- type and shape


@pytest.mark.parametrize("geometry", [None, [], "POLYGON((0 0, 1 0, 1 1, 0 0))"])
def test_not_an_object(geometry):
    details = invalid(geometry)
    assert list(details) == ["geometry"]


@pytest.mark.parametrize("gtype", ["LineString", "polygon", "GeometryCollection", 7])
def test_wrong_type(gtype):
    details = invalid({"type": gtype, "coordinates": [SQUARE]})
    assert list(details) == ["geometry.type"]
    assert "is not accepted" in details["geometry.type"][0]


def test_feature_is_refused_with_hint():
    details = invalid({"type": "Feature", "geometry": polygon(SQUARE), "properties": {}})
    assert "send its geometry object" in details["geometry.type"][0]


def test_missing_type():
    assert invalid({"coordinates": [SQUARE]}) == {
        "geometry.type": ["is required: Polygon, MultiPolygon or Point"]}


@pytest.mark.parametrize("coordinates", [None, "13,52", {"0": SQUARE}, 5])
def test_missing_or_non_list_coordinates(coordinates):
    geometry = {"type": "Polygon"}
    if coordinates is not None:
        geometry["coordinates"] = coordinates
    details = invalid(geometry)
    assert list(details) == ["geometry.coordinates"]


def test_empty_polygon_and_multipolygon():
    assert "is empty" in invalid(polygon())["geometry.coordinates"][0]
    assert "is empty" in invalid(
        {"type": "MultiPolygon", "coordinates": []})["geometry.coordinates"][0]
    details = invalid({"type": "MultiPolygon", "coordinates": [[SQUARE], []]})
    assert list(details) == ["geometry.coordinates[1]"]


def test_ring_not_a_list():
    details = invalid(polygon(SQUARE, "hole"))
    assert list(details) == ["geometry.coordinates[1]"]


def test_ring_with_too_few_positions():
    details = invalid(polygon(SQUARE[:2] + [SQUARE[0]]))
    assert details == {"geometry.coordinates[0]": [
        "a ring needs at least 4 positions (the first repeated as the last), got 3"]}
    assert list(invalid(polygon([]))) == ["geometry.coordinates[0]"]


def test_unclosed_ring_is_refused_not_closed():
    details = invalid(polygon(SQUARE[:4] + [[13.0, 52.05]]))
    assert details == {"geometry.coordinates[0]": [
        "the ring is not closed: its last position must repeat the first ([13, 52])"]}


def test_unclosed_ring_in_multipolygon_hole():
    details = invalid({"type": "MultiPolygon", "coordinates": [[OTHER], [SQUARE, HOLE[:4]]]})
    assert list(details) == ["geometry.coordinates[1][1]"]


@pytest.mark.parametrize("bad", [
    [13.0], [13.0, 52.0, 1.0, 2.0], "13,52", None,
    [math.nan, 52.0], [13.0, math.inf], [True, 52.0], ["13", "52"], [13.0, 10**400],
])
def test_bad_positions(bad):
    ring = [list(p) for p in SQUARE]
    ring[2] = bad
    details = invalid(polygon(ring))
    assert list(details) == ["geometry.coordinates[0][2]"]
    assert "position" in details["geometry.coordinates[0][2]"][0]


def test_out_of_range_coordinates():
    ring = [[13.0, 52.0], [181.0, 52.0], [13.1, -90.5], [13.0, 52.0]]
    details = invalid(polygon(ring))
    assert details == {
        "geometry.coordinates[0][1]": [
            "longitude 181 is outside -180..180 (positions are [longitude, latitude])"],
        "geometry.coordinates[0][2]": [
            "latitude -90.5 is outside -90..90 (positions are [longitude, latitude])"],
    }


def test_swapped_lat_lon_hint():
    details = invalid({"type": "Point", "coordinates": [52.5, 113.4]}, 100)
    assert "positions are [longitude, latitude]" in details["geometry.coordinates"][0]


def test_self_intersecting_polygon():
    bow_tie = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    details = invalid(polygon(bow_tie))
    assert details == {"geometry": ["the polygon is not valid: self-intersection near [0.5, 0.5]"]}


def test_hole_outside_shell():
    details = invalid(polygon(SQUARE, [[p[0] + 1, p[1]] for p in HOLE]))
    assert "hole lies outside shell" in details["geometry"][0]


def test_overlapping_multipolygon():
    details = invalid({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE]]})
    assert details["geometry"][0].startswith("the multipolygon is not valid")


def test_zero_area_polygon():
    details = invalid(polygon([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]))
    assert list(details) == ["geometry"]


def test_too_many_vertices_is_refused_cheaply():
    n = 100_000
    ring = [[math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)] for k in range(n)]
    ring.append(ring[0])
    details = invalid(polygon(ring))
    assert details == {"geometry.coordinates": [
        "has 100001 positions; at most 10000 are allowed, simplify the shape"]}
    # Counted across rings and polygons.
    assert list(invalid(polygon(SQUARE, HOLE), max_vertices=9)) == ["geometry.coordinates"]
    validate_zone(polygon(SQUARE, HOLE), max_vertices=10)


def test_details_are_capped_for_huge_bad_input():
    ring = [[500.0, 0.0]] * 1000
    with pytest.raises(GeometryInvalid) as exc:
        validate_zone(polygon(ring))
    assert len(exc.value.details) == 20
    assert "(and 999 more problems)" in exc.value.message


# --------------------------------------------------------------------------- radius


def test_point_requires_radius():
    details = invalid({"type": "Point", "coordinates": [13.4, 52.5]})
    assert details == {"radius_m": ["is required for a Point: the circle's radius in metres"]}


@pytest.mark.parametrize("radius,message", [
    (0, "must be greater than 0 metres"),
    (-5, "must be greater than 0 metres"),
    (50_000.1, "must be at most 50000 metres"),
    (math.nan, "must be a number of metres"),
    ("100", "must be a number of metres"),
    (True, "must be a number of metres"),
])
def test_bad_radius(radius, message):
    details = invalid({"type": "Point", "coordinates": [13.4, 52.5]}, radius)
    assert details == {"radius_m": [message]}


def test_radius_with_polygon():
    details = invalid(polygon(SQUARE), 100)
    assert list(details) == ["radius_m"]
    assert "only allowed with a Point" in details["radius_m"][0]


def test_bad_point_position():
    details = invalid({"type": "Point", "coordinates": [[13.4, 52.5]]}, 100)
    assert list(details) == ["geometry.coordinates"]


def test_custom_field_names_and_multiple_problems():
    with pytest.raises(GeometryInvalid) as exc:
        validate_zone({"type": "Point", "coordinates": [200, 0]}, -1,
                      field="zones[2].geometry", radius_field="zones[2].radius_m")
    assert set(exc.value.details) == {"zones[2].radius_m", "zones[2].geometry.coordinates"}
    assert "(and 1 more problem)" in exc.value.message
