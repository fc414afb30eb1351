"""The precision grid: coordinates reduced to cells at least p metres wide and tall.

A purpose allows some precision in metres ("100 m"), so a cell must be at least that
large in true metres at every latitude. A grid in plain degrees (or Web Mercator) would
make cells at 60°N half as wide as promised. This module is the reference for the PostGIS
SQL function that snaps stored pings; the steps are numbered so it can be ported 1:1.

1. Bands of latitude: n_lat = max(1, floor(180 / (p / M_LAT_MIN))), dlat = 180 / n_lat.
   M_LAT_MIN is the smallest length of a degree of latitude on WGS84 (at the equator),
   so every band is at least p metres tall.
2. Band index i = min(floor((lat + 90) / dlat), n_lat - 1); edges -90 + i*dlat and
   -90 + (i+1)*dlat (the min puts lat = 90 in the last band).
3. phi = the band edge with the larger |lat| (where a degree of longitude is shortest).
4. Cells in the band: m = metres_per_degree_lon(phi);
   n_lon = max(1, floor(360 / (p / m))) (n_lon = 1 when m = 0), dlon = 360 / n_lon.
5. Cell index j = floor((lon + 180) / dlon) mod n_lon (the mod puts lon = 180 in cell 0).
6. Stored point, the cell centre: lat_c = -90 + (i + 0.5) * dlat,
   lon_c = -180 + (j + 0.5) * dlon.

Rounding the band and cell counts down, so that they divide 180° and 360° exactly, makes
cells only larger than p, leaves no narrow partial cell at the antimeridian or pole, and
keeps every centre inside [-90, 90] x [-180, 180): snapping a centre returns it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

M_LAT_MIN = 110_574.0  # metres per degree of latitude at the equator, the WGS84 minimum
WGS84_A = 6_378_137.0  # semi-major axis, metres
WGS84_E2 = 0.00669437999014  # first eccentricity squared


def metres_per_degree_lon(phi_deg: float) -> float:
    """Length in metres of one degree of longitude along the parallel at `phi_deg`."""
    phi = math.radians(phi_deg)
    return (math.pi / 180.0) * WGS84_A * math.cos(phi) / math.sqrt(
        1.0 - WGS84_E2 * math.sin(phi) ** 2)


@dataclass(frozen=True)
class Cell:
    """A grid cell: its edges in degrees and its centre (the stored coordinate)."""

    south: float
    north: float
    west: float
    east: float
    lat: float
    lon: float


def _check(lat: float, lon: float, precision_m: float) -> None:
    if not isinstance(precision_m, int | float) or isinstance(precision_m, bool) \
            or not math.isfinite(precision_m) or precision_m < 1:
        raise ValueError(f"precision must be a number of metres >= 1, got {precision_m!r}")
    for name, value, limit in (("latitude", lat, 90.0), ("longitude", lon, 180.0)):
        if not isinstance(value, int | float) or isinstance(value, bool) \
                or not math.isfinite(value) or not -limit <= value <= limit:
            raise ValueError(f"{name} must be a number between -{limit:g} and {limit:g}, "
                             f"got {value!r}")


def cell(lat: float, lon: float, precision_m: float) -> Cell:
    """The grid cell of `precision_m` containing (lat, lon)."""
    _check(lat, lon, precision_m)
    n_lat = max(1, math.floor(180.0 / (precision_m / M_LAT_MIN)))
    dlat = 180.0 / n_lat
    i = min(math.floor((lat + 90.0) / dlat), n_lat - 1)
    south = -90.0 + i * dlat
    north = min(90.0, -90.0 + (i + 1) * dlat)

    m = metres_per_degree_lon(max(abs(south), abs(north)))
    n_lon = max(1, math.floor(360.0 / (precision_m / m))) if m > 0 else 1
    dlon = 360.0 / n_lon
    j = math.floor((lon + 180.0) / dlon) % n_lon
    west = -180.0 + j * dlon

    return Cell(
        south=south,
        north=north,
        west=west,
        east=west + dlon,
        lat=-90.0 + (i + 0.5) * dlat,
        lon=-180.0 + (j + 0.5) * dlon,
    )


def snap(lat: float, lon: float, precision_m: float) -> tuple[float, float]:
    """(lat, lon) reduced to the centre of its `precision_m` cell."""
    c = cell(lat, lon, precision_m)
    return c.lat, c.lon


class Snapper:
    """snap() for many points at one precision, with the per-band steps (1-4) worked out
    once per band. Same arithmetic in the same order, so the same numbers bit for bit; the
    points are trusted to be in range (validated pings)."""

    __slots__ = ("_precision", "bands", "dlat", "n_lat")

    def __init__(self, precision_m: float):
        _check(0.0, 0.0, precision_m)
        self.n_lat = max(1, math.floor(180.0 / (precision_m / M_LAT_MIN)))
        self.dlat = 180.0 / self.n_lat
        self.bands: dict[int, tuple[int, float, float]] = {}
        self._precision = precision_m

    def _band(self, i: int) -> tuple[int, float, float]:
        dlat = self.dlat
        south = -90.0 + i * dlat
        north = min(90.0, -90.0 + (i + 1) * dlat)
        m = metres_per_degree_lon(max(abs(south), abs(north)))
        n_lon = max(1, math.floor(360.0 / (self._precision / m))) if m > 0 else 1
        band = self.bands[i] = (n_lon, 360.0 / n_lon, -90.0 + (i + 0.5) * dlat)
        return band

    def __call__(self, lat: float, lon: float) -> tuple[float, float]:
        """(lat, lon) of the centre of the cell containing (lat, lon)."""
        i = min(math.floor((lat + 90.0) / self.dlat), self.n_lat - 1)
        band = self.bands.get(i)
        if band is None:
            band = self._band(i)
        n_lon, dlon, lat_c = band
        return lat_c, -180.0 + (math.floor((lon + 180.0) / dlon) % n_lon + 0.5) * dlon
