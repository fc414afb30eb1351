"""Stay-point detection: a subject's stops and the trips between them, from a track.

A subject *stays* where its pings remain within `stay_radius_m` of the first of them for at
least `stay_min_minutes`; each stay becomes a stop, and the movement between stops a trip. A
gap of more than MAX_GAP_S between two pings more than the radius apart splits the track (no
trip is invented across it); a gap without displacement is a stay like any other. Two stops
of the same segment less than a radius apart, with less than the minimum stay between them,
are one stop (a GPS outlier does not make a trip). A trip that never leaves the radius of
where it started is noise and is dropped. Pure: no database, no governance (the masks and
precisions a track carries are kept for the caller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_GAP_S = 15 * 60  # a longer silence with displacement splits the track
MOVING_MIN_SPEED = 1.0  # m/s between two pings: faster counts as moving time
EARTH_RADIUS_M = 6_371_008.8


@dataclass
class Track:
    """One subject's pings in time order: epoch seconds, position, mask, stored precision
    and the geodesic length of the step from the previous ping."""

    t: list[float]
    lon: list[float]
    lat: list[float]
    mask: list[int]
    prec: list[int]
    step: list[float]
    near_zone: list[bool] = field(default_factory=list)  # within a stay radius of a zone

    @classmethod
    def of(cls, rows) -> Track:
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(6)]
        return cls(*(list(c) for c in cols))

    def beside_zone(self, i: int) -> bool:
        return bool(self.near_zone) and self.near_zone[i]

    def __len__(self) -> int:
        return len(self.t)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Short distances (a stay radius): equirectangular, across the antimeridian too."""
    dlon = lon2 - lon1
    if dlon > 180:
        dlon -= 360
    elif dlon < -180:
        dlon += 360
    x = math.radians(dlon) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(x, y)


def _centroid(track: Track, i: int, j: int) -> tuple[float, float]:
    """Mean position of pings i..j, longitudes unwrapped around the first."""
    lon0 = track.lon[i]
    lats = track.lat[i:j + 1]
    lons = [lon + 360 * round((lon0 - lon) / 360) for lon in track.lon[i:j + 1]]
    lon = sum(lons) / len(lons)
    lon = (lon + 180) % 360 - 180
    return sum(lats) / len(lats), lon


def segment_starts(track: Track, radius_m: float, max_gap_s: float = MAX_GAP_S) -> list[bool]:
    """starts[i]: ping i starts a new segment (a long silence with displacement before it,
    or beside a privacy zone: a silence there is time spent inside it, and a stop made of
    the pings around it would sit where trips meet near the place, more often on the side
    nearer to it, pointing at it)."""
    starts = [False] * len(track)
    for i in range(1, len(track)):
        if track.t[i] - track.t[i - 1] > max_gap_s and (
                track.beside_zone(i - 1) or track.beside_zone(i) or distance_m(
                    track.lat[i - 1], track.lon[i - 1], track.lat[i], track.lon[i]) > radius_m):
            starts[i] = True
    return starts


def find_stays(track: Track, radius_m: float, min_stay_s: float,
               starts: list[bool]) -> list[tuple[int, int]]:
    """(first, last) ping index of each stay: within the radius of its first ping for at
    least the minimum time (Li et al. 2008), then neighbouring stays merged."""
    t, lat, lon = track.t, track.lat, track.lon
    n = len(track)
    stays: list[tuple[int, int]] = []
    i = 0
    while i < n:
        j = i + 1
        while j < n and not starts[j] and distance_m(lat[i], lon[i], lat[j], lon[j]) <= radius_m:
            j += 1
        if t[j - 1] - t[i] >= min_stay_s and j - 1 > i:
            stays.append((i, j - 1))
            i = j
        else:
            i += 1
    breaks = [0] * (n + 1)
    for k in range(n):
        breaks[k + 1] = breaks[k] + starts[k]
    merged: list[tuple[int, int]] = []
    for i, j in stays:
        if merged:
            pi, pj = merged[-1]
            if breaks[i + 1] == breaks[pj + 1] and t[i] - t[pj] < min_stay_s and distance_m(
                    *_centroid(track, pi, pj), *_centroid(track, i, j)) <= radius_m:
                merged[-1] = (pi, j)
                continue
        merged.append((i, j))
    return merged


@dataclass
class StopSpan:
    first: int
    last: int
    lat: float
    lon: float


@dataclass
class TripSpan:
    first: int
    last: int
    origin: tuple[float, float]
    dest: tuple[float, float]
    from_stop: bool
    to_stop: bool
    distance_m: float
    moving_s: float


def detect(track: Track, radius_m: float, min_stay_s: float) -> tuple[list[StopSpan],
                                                                       list[TripSpan]]:
    """Stops and the trips between them (and from or to a segment's ends)."""
    n = len(track)
    if n == 0:
        return [], []
    starts = segment_starts(track, radius_m)
    stops = [StopSpan(i, j, *_centroid(track, i, j))
             for i, j in find_stays(track, radius_m, min_stay_s, starts)]
    bounds = [k for k in range(n) if k == 0 or starts[k]] + [n]
    trips: list[TripSpan] = []
    s = 0
    for seg_first, seg_end in zip(bounds, bounds[1:], strict=False):
        seg_last = seg_end - 1
        cursor, previous = seg_first, None
        while s < len(stops) and stops[s].first <= seg_last:
            stop = stops[s]
            if stop.first > cursor:
                trips.append(_trip(track, cursor, stop.first, previous, stop))
            cursor, previous = stop.last, stop
            s += 1
        if seg_last > cursor:
            trips.append(_trip(track, cursor, seg_last, previous, None))
    return stops, [tr for tr in trips
                   if track.t[tr.last] > track.t[tr.first] and _leaves(track, tr, radius_m)]


def _leaves(track: Track, trip: TripSpan, radius_m: float) -> bool:
    """A trip goes somewhere: some ping of it lies beyond the radius of where it started
    (jitter around one place is not a trip; a round trip is)."""
    lat0, lon0 = track.lat[trip.first], track.lon[trip.first]
    return any(distance_m(lat0, lon0, track.lat[k], track.lon[k]) > radius_m
               for k in range(trip.first + 1, trip.last + 1))


def _trip(track: Track, a: int, b: int, origin: StopSpan | None,
          dest: StopSpan | None) -> TripSpan:
    distance = moving = 0.0
    for k in range(a + 1, b + 1):
        step, dt_s = track.step[k], track.t[k] - track.t[k - 1]
        distance += step
        if dt_s > 0 and step / dt_s >= MOVING_MIN_SPEED:
            moving += dt_s
    return TripSpan(a, b,
                    (origin.lat, origin.lon) if origin else (track.lat[a], track.lon[a]),
                    (dest.lat, dest.lon) if dest else (track.lat[b], track.lon[b]),
                    origin is not None, dest is not None, distance, moving)
