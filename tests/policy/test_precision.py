import math
import random

import pytest

from govern.policy.precision import cell, metres_per_degree_lon, snap

# Geodesics are measured with Vincenty's inverse formula on WGS84 (pyproj is not a
# dependency). It is accurate to well under a millimetre. A cell's width is checked along
# its poleward edge, the narrowest, between its two corners: that geodesic is slightly
# shorter than the arc along the parallel the grid measures (relative difference about
# (d * tan(phi) / R)^2 / 24, 3e-8 for 1 km at 80°), hence the 1e-6 relative margin.
WIDTH_MARGIN = 1e-6


def vincenty(lat1, lon1, lat2, lon2) -> float:
    a = 6_378_137.0
    f = 1 / 298.257223563
    b = (1 - f) * a
    big_l = math.radians(lon2 - lon1)
    u1 = math.atan((1 - f) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - f) * math.tan(math.radians(lat2)))
    sin_u1, cos_u1, sin_u2, cos_u2 = math.sin(u1), math.cos(u1), math.sin(u2), math.cos(u2)
    lam = big_l
    for _ in range(200):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        sin_sigma = math.hypot(cos_u2 * sin_lam, cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_lam)
        if sin_sigma == 0:
            return 0.0
        cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_lam
        sigma = math.atan2(sin_sigma, cos_sigma)
        sin_alpha = cos_u1 * cos_u2 * sin_lam / sin_sigma
        cos2_alpha = 1 - sin_alpha**2
        cos_2sm = cos_sigma - 2 * sin_u1 * sin_u2 / cos2_alpha if cos2_alpha else 0.0
        c = f / 16 * cos2_alpha * (4 + f * (4 - 3 * cos2_alpha))
        previous = lam
        lam = big_l + (1 - c) * f * sin_alpha * (
            sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1 + 2 * cos_2sm**2)))
        if abs(lam - previous) < 1e-13:
            break
    else:
        raise AssertionError("vincenty did not converge")
    u_sq = cos2_alpha * (a * a - b * b) / (b * b)
    big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    delta_sigma = big_b * sin_sigma * (cos_2sm + big_b / 4 * (
        cos_sigma * (-1 + 2 * cos_2sm**2)
        - big_b / 6 * cos_2sm * (-3 + 4 * sin_sigma**2) * (-3 + 4 * cos_2sm**2)))
    return b * big_a * (sigma - delta_sigma)


def test_vincenty_sanity():
    # One degree of latitude at the equator and of longitude along it, known WGS84 values.
    assert vincenty(0, 0, 1, 0) == pytest.approx(110_574.4, abs=0.5)
    assert vincenty(0, 0, 0, 1) == pytest.approx(111_319.5, abs=0.5)
    assert metres_per_degree_lon(0) == pytest.approx(111_319.49, abs=0.01)
    assert metres_per_degree_lon(60) == pytest.approx(55_799.98, abs=0.05)


def cell_size(c) -> tuple[float, float, float]:
    """(width at the poleward edge, width at the equatorward edge, height) in metres."""
    poleward, equatorward = sorted((c.south, c.north), key=abs, reverse=True)
    width_pole = vincenty(poleward, c.west, poleward, c.east)
    width_equator = vincenty(equatorward, c.west, equatorward, c.east)
    height = vincenty(c.south, c.west, c.north, c.west)
    return width_pole, width_equator, height


def random_points(n, seed=42):
    rng = random.Random(seed)
    points = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(n)]
    return points + [(90, 180), (-90, -180), (90, 0), (0, 180), (0, -180), (0, 0), (-90, 180),
                     (89.99999, 179.99999), (-89.99999, -179.99999)]


@pytest.mark.parametrize("p", [1, 10, 100, 1000, 12_345.6, 50_000, 1e6, 2e7])
def test_snap_is_idempotent_and_in_range(p):
    for lat, lon in random_points(500):
        snapped = snap(lat, lon, p)
        again = snap(*snapped, p)
        assert again[0] == pytest.approx(snapped[0], abs=1e-9)
        assert again[1] == pytest.approx(snapped[1], abs=1e-9)
        assert -90 <= snapped[0] <= 90 and -180 <= snapped[1] < 180


@pytest.mark.parametrize("lat", [0, 45, 60, 80, -33.9])
@pytest.mark.parametrize("p", [10, 100, 1000])
def test_points_in_a_cell_share_its_centre(lat, p):
    rng = random.Random(lat * 1000 + p)
    c = cell(lat, 13.4, p)
    assert c.south <= lat <= c.north and c.west <= 13.4 <= c.east
    for _ in range(200):
        u, v = rng.uniform(1e-6, 1 - 1e-6), rng.uniform(1e-6, 1 - 1e-6)
        point = (c.south + u * (c.north - c.south), c.west + v * (c.east - c.west))
        assert snap(*point, p) == (c.lat, c.lon)
    assert c.lat == pytest.approx((c.south + c.north) / 2)
    assert c.lon == pytest.approx((c.west + c.east) / 2)


@pytest.mark.parametrize("lat", [0, 45, 60, 80, -60, -80])
@pytest.mark.parametrize("p", [10, 100, 1000])
def test_cells_are_at_least_p_metres_in_true_distance(lat, p):
    for lon in (-179.9, 0.0, 13.4, 179.99):
        width_pole, width_equator, height = cell_size(cell(lat, lon, p))
        assert height >= p
        assert width_pole >= p * (1 - WIDTH_MARGIN)
        assert width_equator >= width_pole
        # Not much larger either: the grid keeps the promised precision, not a coarser one.
        assert height < 1.01 * p
        assert width_equator < 1.05 * p


@pytest.mark.parametrize("p", [10, 100, 1000])
def test_width_at_60_north_is_not_half_of_p(p):
    # A constant step in degrees (or Web Mercator) would give cells about p/2 wide here.
    width_pole, width_equator, _ = cell_size(cell(60.0, 10.0, p))
    assert 0.99 * p <= width_pole <= width_equator < 1.05 * p


@pytest.mark.parametrize("lat", [0, 45, 60, 80])
@pytest.mark.parametrize("p", [10, 100, 1000])
def test_snapped_point_stays_within_the_cell(lat, p):
    for lon in (0.001, 42.42, -120.5):
        snapped = snap(lat, lon, p)
        # Half the cell diagonal: about 0.71 p for a square cell.
        assert vincenty(lat, lon, *snapped) <= 0.75 * p


def test_antimeridian_and_poles():
    c = cell(0.0, 180.0, 1000)
    assert c == cell(0.0, -180.0, 1000)
    assert c.west == -180.0
    polar = cell(90.0, 123.0, 100)
    assert polar.north == 90.0 and polar.lon == 0.0  # a single cell around the pole
    assert snap(90.0, 123.0, 100) == snap(90.0, -45.0, 100)
    assert snap(-90.0, 10.0, 100)[0] < -89.99


def test_coarse_precision_is_one_cell():
    assert snap(52.5, 13.4, 5e7) == (0.0, 0.0)


@pytest.mark.parametrize("p", [0, 0.5, -10, math.nan, math.inf, "100", None, True])
def test_precision_must_be_at_least_one_metre(p):
    with pytest.raises(ValueError, match="precision must be a number of metres >= 1"):
        snap(52.5, 13.4, p)


@pytest.mark.parametrize("lat,lon", [(91, 0), (-90.1, 0), (0, 180.5), (math.nan, 0),
                                     (0, math.inf), ("52", 13)])
def test_coordinates_must_be_in_range(lat, lon):
    with pytest.raises(ValueError, match="must be a number between"):
        snap(lat, lon, 100)
