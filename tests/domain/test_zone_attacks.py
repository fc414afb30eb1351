"""The attack on privacy zones published against fitness apps (Hassan, Sharma, Hartman,
Malik, "Analyzing the Privacy Zones of Fitness Tracking Apps", 2018), run against govern.

A subject with a zone around home walks out and back in several directions. A dispatcher
reads the track and the subject's travel, splits the track where pings pause, and estimates
home two ways: a least-squares circle through where each trip becomes visible and where it
vanishes (track, and the travel's trip ends), and the smallest circle enclosing the first
points. Random homes (any latitude up to 60 degrees) and zone sizes (100-500 m), seeded.

Against a zone centred on home (the weakened `PLAIN` hiding, as zones were before) the
estimate lands within a few metres. Against govern's zones the estimates must stay off by
what each zone states: every circle fit through the track's trip ends by at least
`centre_estimate_off_by_m` (0.15 r), and any estimate by at least `located_no_better_than_m`
(0.097 r) in all but 5% of zones.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
import uuid

import numpy as np
import pytest

from govern.db import tenant_session
from govern.domain import zones
from govern.domain.trips import build_all
from govern.policy import zones as policy
from tests.tracking import ping

# A fixed instant, so the per-trip trims (drawn per quarter hour) are the same on every run;
# no consent needed and a ten-year window, so the instant stays readable.
START = dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.UTC)
NAV = {"key": "navigation", "title": "Navigation", "precision_m": 10, "retention_days": 3650,
       "requires_consent": False, "individual_access": True, "reader_roles": ["dispatcher"]}
SPEED = 1.4  # m/s, walking
STEP_S = 7  # a ping every 7 s: about 10 m apart
HOME_S = 40 * 60  # at home between walks (its pings are inside the zone: never kept)
PAUSE_S = 5 * 60  # the reader splits the track where pings pause this long
M_PER_DEG_LAT = 111_132.0


def offset(lat, lon, east_m, north_m):
    """Local flat-earth step (well under a centimetre off over a couple of kilometres)."""
    return (lat + north_m / M_PER_DEG_LAT,
            lon + east_m / (111_320.0 * math.cos(math.radians(lat))))


def local_m(lat0, lon0, lat, lon):
    return ((lon - lon0) * 111_320.0 * math.cos(math.radians(lat0)),
            (lat - lat0) * M_PER_DEG_LAT)


def walks(rng, home, radius_m, trips, start):
    """Out and back along `trips` directions spread around home, one ping every STEP_S."""
    lat0, lon0 = home
    far = 1.3 * policy.hidden_up_to(radius_m) + 150.0  # out of a square's reach too
    base = rng.uniform(0, 360)
    out, t = [], start
    for k in range(trips):
        bearing = math.radians(base + k * 360.0 / trips + rng.uniform(-10, 10))
        back = bearing + math.radians(rng.uniform(-20, 20))
        n = int(far / (SPEED * STEP_S))
        legs = [(bearing, d) for d in range(n + 1)] + [(back, d) for d in range(n, -1, -1)]
        for b, d in legs:
            dist = d * SPEED * STEP_S
            lat, lon = offset(lat0, lon0, dist * math.sin(b), dist * math.cos(b))
            out.append(ping(lat=lat, lon=lon, t=t.isoformat(), id=f"{k}-{len(out)}"))
            t += dt.timedelta(seconds=STEP_S)
        t += dt.timedelta(seconds=HOME_S)
    return out


def circle_fit(points):
    """Least-squares circle (Kasa): x^2 + y^2 + D x + E y + F = 0."""
    a = np.array([[x, y, 1.0] for x, y in points])
    b = np.array([-(x * x + y * y) for x, y in points])
    (d, e, _f), *_ = np.linalg.lstsq(a, b, rcond=None)
    return -d / 2.0, -e / 2.0


def enclosing_circle(points):
    """Centre of the smallest circle enclosing the points (Welzl, iterative)."""
    def two(a, b):
        return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), math.dist(a, b) / 2

    def three(a, b, c):
        d = 2 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
        if abs(d) < 1e-12:
            return max((two(p, q) for p, q in ((a, b), (a, c), (b, c))), key=lambda x: x[1])
        ux = sum((p[0] ** 2 + p[1] ** 2) * (q[1] - r[1]) for p, q, r in
                 ((a, b, c), (b, c, a), (c, a, b))) / d
        uy = sum((p[0] ** 2 + p[1] ** 2) * (r[0] - q[0]) for p, q, r in
                 ((a, b, c), (b, c, a), (c, a, b))) / d
        return (ux, uy), math.dist((ux, uy), a)

    pts = list(points)
    random.Random(0).shuffle(pts)
    centre, r = pts[0], 0.0
    for i, p in enumerate(pts):
        if math.dist(centre, p) <= r + 1e-9:
            continue
        centre, r = p, 0.0
        for j in range(i):
            q = pts[j]
            if math.dist(centre, q) <= r + 1e-9:
                continue
            centre, r = two(p, q)
            for k in range(j):
                s = pts[k]
                if math.dist(centre, s) > r + 1e-9:
                    centre, r = three(p, q, s)
    return centre


def read_all(tenant, token, subject_id, t_from, t_to):
    features, cursor = [], None
    while True:
        query = {"purpose": "navigation", "from": t_from.isoformat(), "to": t_to.isoformat(),
                 "limit": 10_000}
        if cursor:
            query["cursor"] = cursor
        body = tenant.get(f"/v1/subjects/{subject_id}/track", token=token,
                          query_string=query).get_json()
        features += body["features"]
        cursor = body["properties"]["next_cursor"]
        if not cursor:
            return features


def estimates(tenant, token, subject_id, home, t_from, t_to) -> dict[str, float]:
    """The reader's estimates of home, each as its error in metres."""
    lat0, lon0 = home
    track = read_all(tenant, token, subject_id, t_from, t_to)
    assert track, "the reader sees the walks"
    trips, last = [], None
    for f in track:
        at = dt.datetime.fromisoformat(f["properties"]["t"])
        lon, lat = f["geometry"]["coordinates"]
        if last is None or (at - last).total_seconds() > PAUSE_S:
            trips.append([])
        trips[-1].append(local_m(lat0, lon0, lat, lon))
        last = at
    ends = [p for trip in trips for p in (trip[0], trip[-1])]
    firsts = [trip[0] for trip in trips]
    travel = tenant.get(f"/v1/subjects/{subject_id}/travel", token=token, query_string={
        "purpose": "navigation", "from": t_from.isoformat(),
        "to": t_to.isoformat()}).get_json()
    trip_ends = [local_m(lat0, lon0, e["lat"], e["lon"])
                 for day in travel["days"] for tr in day["trips"]
                 for e in (tr["origin"], tr["destination"])]
    found = {"track circle fit": circle_fit(ends),
             "first points' enclosing circle": enclosing_circle(firsts)}
    if len(trip_ends) >= 3:
        found["travel circle fit"] = circle_fit(trip_ends)
    return {name: math.hypot(*xy) for name, xy in found.items()}


def square(home, radius_m):
    """A square around home with the area of a circle of `radius_m`."""
    half = radius_m * math.sqrt(math.pi) / 2
    corners = [offset(*home, e, n) for e, n in ((-half, -half), (half, -half), (half, half),
                                                (-half, half), (-half, -half))]
    return {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in corners]]}


def run_attack(tenant, make_tracked, sessions, owner, seed, cases, hiding, trips=8,
               shape="circle"):
    """One subject per case; returns [(radius, stated bound, best error, errors)]. A square
    zone has the area of a circle of that radius."""
    token = tenant.token_for("dispatcher")
    rng = random.Random(seed)
    start = START
    people = []
    for n in range(cases):
        home = (rng.uniform(-60, 60), rng.uniform(-179, 179))
        radius = rng.choice([100, 150, 200, 300, 500])
        person = make_tracked(tenant, purposes=[NAV] if n == 0 else [], consent=(),
                              subject={"external_ref": f"s{seed}-{n}"})
        with tenant_session(sessions, tenant.tenant_id) as s:
            zone = zones.create_zone(  # the API's path, with a seeded rng
                s, tenant.tenant_id, "member:test", name="home",
                geometry=square(home, radius) if shape == "square"
                else {"type": "Point", "coordinates": [home[1], home[0]]},
                radius_m=None if shape == "square" else radius,
                subject_id=uuid.UUID(person.subject_id), max_vertices=10_000,
                rng=rng, hiding=hiding)
            bound = zones.protection(zone)["located_no_better_than_m"]
        items = walks(rng, home, radius, trips, start)
        for i in range(0, len(items), 1000):
            body = person.pings(items[i:i + 1000]).get_json()
            assert body["rejected"] == [], body
        people.append((person, home, radius, bound))
    build_all(owner, sessions, tenant_id=tenant.tenant_id)
    t_to = start + dt.timedelta(days=1)
    results = []
    for person, home, radius, bound in people:
        errors = estimates(tenant, token, person.subject_id, home, start, t_to)
        results.append((radius, bound, min(errors.values()), errors))
    return results


def report(label, results):
    """Print what was measured; returns, per estimator, how many zones it placed closer than
    their stated bound."""
    names = sorted({name for *_, errors in results for name in errors})
    closer = {name: sum(errors[name] < bound for _, bound, _, errors in results
                        if name in errors) for name in names}
    best = [e for _, _, e, _ in results]
    print(f"\n{label}: {len(results)} zones; best of the estimates (picked knowing the truth):"
          f" min {min(best):.1f} m, median {statistics.median(best):.1f} m, closer than the "
          f"bound {sum(e < b for _, b, e, _ in results)}")
    for name in names:
        rel = [errors[name] / r for r, _, _, errors in results if name in errors]
        print(f"  {name}: error/radius min {min(rel):.3f}, median "
              f"{statistics.median(rel):.3f}; closer than the bound: {closer[name]}")
    return closer


def test_the_attack_finds_home_behind_a_zone_centred_on_it(tenant, make_tracked, sessions,
                                                           owner):
    results = run_attack(tenant, make_tracked, sessions, owner, seed=17, cases=8,
                         hiding=policy.PLAIN)
    report("plain zones (weakened)", results)
    for radius, _bound, best, errors in results:
        assert best < 5.0, (radius, errors)  # a circle centred on home points at it
        assert errors["track circle fit"] < 5.0, (radius, errors)


@pytest.mark.parametrize("seed,trips", [(1, 8), (2, 8), (3, 16)])
def test_the_attack_stays_off_by_the_stated_bound(tenant, make_tracked, sessions, owner,
                                                  seed, trips):
    results = run_attack(tenant, make_tracked, sessions, owner, seed=seed, cases=16,
                         hiding=policy.OFFSET, trips=trips)
    closer = report(f"offset zones, {trips} trips, seed {seed}", results)
    # Any estimator: closer than `located_no_better_than_m` in at most 5% of zones; of 16,
    # at most 3 (a binomial tail below 1% for 4 or more).
    for name, n in closer.items():
        assert n <= 3, (name, closer)
    for radius, bound, _best, errors in results:
        assert bound == pytest.approx(policy.located_no_better_than(radius), abs=0.1)
        # The published attack, a circle fitted through where the trips appear and vanish,
        # misses home by at least the stated amount in every zone.
        floor = policy.centre_estimate_off_by(radius)
        assert floor == pytest.approx(0.15 * radius)
        assert errors["track circle fit"] >= floor, (radius, errors)


def test_the_attack_stays_off_by_the_stated_bound_behind_a_square(tenant, make_tracked,
                                                                   sessions, owner):
    """A polygon hides its sweep along a random vector: its centre moves by half of it."""
    results = run_attack(tenant, make_tracked, sessions, owner, seed=4, cases=12,
                         hiding=policy.OFFSET, shape="square")
    closer = report("offset squares, 8 trips, seed 4", results)
    for name, n in closer.items():
        assert n <= 3, (name, closer)
    for radius, bound, _best, errors in results:
        assert bound == pytest.approx(policy.located_no_better_than(radius), rel=0.01)
        assert errors["track circle fit"] >= policy.centre_estimate_off_by(radius), errors
