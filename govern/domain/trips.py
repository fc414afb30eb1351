"""Travel: stops and trips derived from governed pings, kept governed, and released as
reports under the same k floor and differential-privacy budget as the heatmap.

Derivation (stay-point detection). A subject *stays* where its pings remain within
`stay_radius_m` of the first of them for at least `stay_min_minutes`; each stay becomes a
stop, and the movement between stops a trip. A gap of more than MAX_GAP_S between two pings
more than the radius apart splits the track (no trip is invented across it); a gap without
displacement is a stay like any other. Two stops of the same segment less than a radius
apart, with less than the minimum stay between them, are one stop (a GPS outlier does not
make a trip). A trip that never leaves the radius of where it started is noise and is
dropped.

Governance. A stop or trip serves only purposes every one of its pings serves (the AND of
their masks), keeps one representative point per end snapped to the finest precision those
purposes allow, and an H3 cell at the resolution that precision allows. It ages with its
pings (by its end time; see `age_travel`), is erased with the subject and exported with it.

Incremental building. Per tenant, a watermark on the pings' arrival time (`received_at`);
each run takes the pings that arrived since, and for each subject with new pings rebuilds
from the start of the last stop that ended before the earliest new ping (late pings
included), in one transaction per subject.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import h3.api.basic_int as h3
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from govern.auth import Principal
from govern.db import tenant_session
from govern.domain import audit, release
from govern.domain.policy import current_policy
from govern.models import Purpose
from govern.policy.precision import snap
from govern.privacy import dp
from govern.sql import dp as dp_sql
from govern.sql import trips as sql

log = logging.getLogger("govern.trips")

NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FOREVER = dt.datetime.max.replace(tzinfo=dt.UTC)
MAX_GAP_S = 15 * 60  # a longer silence with displacement splits the track
MOVING_MIN_SPEED = 1.0  # m/s between two pings: faster counts as moving time
BUILD_WORKERS = 2  # subjects built at once (one connection each)
EARTH_RADIUS_M = 6_371_008.8

# H3 resolution for a precision: the finest whose hexagons (sqrt(3) x average edge wide) are
# at least that many metres wide. Same numbers as SQL govern_h3_res_for (migration 0007).
_H3_WIDTH_LIMITS = ((8, 799), (7, 2114), (6, 5593), (5, 14799), (4, 39155), (3, 103595),
                    (2, 274087), (1, 725168))


def h3_resolution_for(precision_m: int) -> int:
    for res, limit in _H3_WIDTH_LIMITS:
        if precision_m <= limit:
            return res
    return 0


# ---- detection (pure) -------------------------------------------------------------------------

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


# ---- governed records -------------------------------------------------------------------------

@dataclass
class Governance:
    """What a build needs of the tenant: the stay rule and each purpose bit's precision."""

    radius_m: float
    min_stay_s: float
    precision_by_bit: dict[int, int]
    cutoff_by_bit: dict[int, float] = field(default_factory=dict)  # epoch seconds

    def serving(self, mask: int, ended: float) -> int:
        """The mask less purposes whose window has closed for a record ending at `ended`
        (retention may have passed over travel while its pings were being read)."""
        for bit, cutoff in self.cutoff_by_bit.items():
            if ended <= cutoff:
                mask &= ~(1 << bit)
        return mask

    def precision(self, mask: int, stored: int) -> int:
        """The finest precision the mask's purposes allow, never finer than what is stored."""
        allowed = [p for b, p in self.precision_by_bit.items() if mask & (1 << b)]
        return max(min(allowed) if allowed else stored, stored)


def load_governance(session: Session) -> Governance:
    policy = current_policy(session)
    purposes = session.scalars(select(Purpose)).all()
    now = dt.datetime.now(dt.UTC).timestamp()
    return Governance(float(policy["stay_radius_m"]), 60.0 * policy["stay_min_minutes"],
                      {p.bit: p.precision_m for p in purposes},
                      {p.bit: now - 86400.0 * p.retention_days for p in purposes})


def _span_mask(track: Track, a: int, b: int) -> tuple[int, int]:
    mask, prec = -1, 1
    for k in range(a, b + 1):
        mask &= track.mask[k]
        prec = max(prec, track.prec[k])
    return mask, prec


def governed_point(lat: float, lon: float, precision_m: int) -> tuple[float, float, int]:
    """(lon, lat) snapped to the precision grid, and its H3 cell at the allowed resolution."""
    s_lat, s_lon = snap(lat, lon, precision_m)
    return s_lon, s_lat, h3.latlng_to_cell(s_lat, s_lon, h3_resolution_for(precision_m))


def stop_rows(track: Track, stops: list[StopSpan], gov: Governance) -> dict:
    cols = {k: [] for k in ("t0", "t1", "dur", "lon", "lat", "cell", "n", "mask", "prec")}
    for st in stops:
        mask, stored = _span_mask(track, st.first, st.last)
        mask = gov.serving(mask, track.t[st.last])
        if not mask:
            continue  # its pings serve no purpose in common: nothing may be derived
        prec = gov.precision(mask, stored)
        lon, lat, cell = governed_point(st.lat, st.lon, prec)
        t0, t1 = track.t[st.first], track.t[st.last]
        for k, v in (("t0", t0), ("t1", t1), ("dur", round(t1 - t0)), ("lon", lon),
                     ("lat", lat), ("cell", cell), ("n", st.last - st.first + 1),
                     ("mask", mask), ("prec", prec)):
            cols[k].append(v)
    return cols


def trip_rows(track: Track, trips: list[TripSpan], gov: Governance) -> dict:
    cols = {k: [] for k in ("t0", "t1", "dur", "moving", "dist", "olon", "olat", "ocell",
                            "dlon", "dlat", "dcell", "fs", "ts", "n", "mask", "prec")}
    for tr in trips:
        mask, stored = _span_mask(track, tr.first, tr.last)
        mask = gov.serving(mask, track.t[tr.last])
        if not mask:
            continue
        prec = gov.precision(mask, stored)
        olon, olat, ocell = governed_point(*tr.origin, prec)
        dlon, dlat, dcell = governed_point(*tr.dest, prec)
        t0, t1 = track.t[tr.first], track.t[tr.last]
        for k, v in (("t0", t0), ("t1", t1), ("dur", round(t1 - t0)),
                     ("moving", round(tr.moving_s)), ("dist", round(tr.distance_m, 1)),
                     ("olon", olon), ("olat", olat), ("ocell", ocell), ("dlon", dlon),
                     ("dlat", dlat), ("dcell", dcell), ("fs", tr.from_stop),
                     ("ts", tr.to_stop), ("n", tr.last - tr.first + 1), ("mask", mask),
                     ("prec", prec)):
            cols[k].append(v)
    return cols


# ---- building ---------------------------------------------------------------------------------

@dataclass
class BuildResult:
    subjects: int = 0
    pings: int = 0
    stops: int = 0
    trips: int = 0
    seconds: float = 0.0

    def add(self, other: BuildResult) -> None:
        for k in ("subjects", "pings", "stops", "trips"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def build_subject(session: Session, tenant_id: uuid.UUID, subject_id: uuid.UUID,
                  t0: dt.datetime, gov: Governance) -> BuildResult:
    """Rebuild a subject's stops and trips from the last stop that ended before `t0` (the
    earliest new ping), in the caller's transaction."""
    session.execute(sql.BUILDING, {"tenant_id": str(tenant_id)})
    session.execute(sql.LOCK_SUBJECT, {"s": str(subject_id)})
    if not session.execute(sql.SUBJECT_OPEN, {"s": subject_id}).scalar():
        return BuildResult()  # blocked or being erased: derive nothing
    restart = session.execute(sql.RESTART_POINT, {"s": subject_id, "t0": t0}).scalar()
    rows = session.execute(sql.SUBJECT_PINGS, {"s": subject_id, "t_from": restart or NEVER,
                                               "near_m": gov.radius_m}).all()
    if not rows:
        return BuildResult()
    track = Track.of(rows)
    stops, trips = detect(track, gov.radius_m, gov.min_stay_s)
    t_from = restart or dt.datetime.fromtimestamp(track.t[0], dt.UTC)
    session.execute(sql.DELETE_FROM, {"s": subject_id, "t_from": t_from})
    srows, trows = stop_rows(track, stops, gov), trip_rows(track, trips, gov)
    ids = {"tenant_id": tenant_id, "s": subject_id}
    if srows["t0"]:
        session.execute(sql.INSERT_STOPS, {**ids, **srows})
    if trows["t0"]:
        session.execute(sql.INSERT_TRIPS, {**ids, **trows})
    if restart is not None and stops \
            and abs(track.t[stops[0].first] - restart.timestamp()) < 1e-3:
        inbound = session.execute(sql.INBOUND_TRIP, {"s": subject_id, "r": restart}).first()
        if inbound is not None:  # the trip into the rebuilt stop: its destination follows
            lon, lat, cell = governed_point(stops[0].lat, stops[0].lon, inbound.precision_m)
            session.execute(sql.SET_DESTINATION, {"s": subject_id, "lon": lon, "lat": lat,
                                                  "cell": cell,
                                                  "started_at": inbound.started_at})
    return BuildResult(1, len(track), len(srows["t0"]), len(trows["t0"]))


def build_tenant(sessions: sessionmaker, tenant_id: uuid.UUID, *, workers: int = BUILD_WORKERS,
                 on_progress: Callable[[int], None] | None = None) -> BuildResult:
    """Turn the pings that arrived since the last run into stops and trips. Each subject is
    its own transaction (`workers` at a time: the database's work for one overlaps the
    detection of another); the watermark moves only when every subject is done, so a run
    stopped half-way is finished (idempotently) by the next."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with tenant_session(sessions, tenant_id) as s:
        horizon = s.execute(sql.HORIZON).scalar()
        since = s.execute(sql.WATERMARK).scalar() or NEVER
        if since > NEVER:  # an increment: BRIN leaves little to read (the first build reads all)
            s.execute(sql.SERIAL_SCAN)
        changed = s.execute(sql.CHANGED_SUBJECTS, {"since": since, "horizon": horizon}).all()
        gov = load_governance(s)

    def one(row) -> BuildResult:
        with tenant_session(sessions, tenant_id) as s:
            done = build_subject(s, tenant_id, row.subject_id, row.t0, gov)
        if on_progress:
            on_progress(row.n)
        return done

    result = BuildResult()
    if workers > 1 and len(changed) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trips") as pool:
            for done in pool.map(one, changed):
                result.add(done)
    else:
        for row in changed:
            result.add(one(row))
    with tenant_session(sessions, tenant_id) as s:
        s.execute(sql.SAVE_WATERMARK, {"tenant_id": tenant_id, "horizon": horizon,
                                       "subjects": result.subjects, "pings": result.pings})
    result.seconds = time.perf_counter() - started
    if changed:
        log.info("trips built", extra={"fields": {"tenant_id": str(tenant_id),
                                                  **result.__dict__}})
    return result


def build_all(owner: Engine, sessions: sessionmaker, *, tenant_id: uuid.UUID | None = None,
              on_progress: Callable[[int], None] | None = None) -> dict:
    """The trips job: every tenant (or one)."""
    from govern.domain.retention import tenant_ids

    total = BuildResult()
    tenants = {}
    for tid in [tenant_id] if tenant_id else tenant_ids(owner):
        r = build_tenant(sessions, tid, on_progress=on_progress)
        total.add(r)
        tenants[str(tid)] = r.__dict__
    return {**{k: v for k, v in total.__dict__.items() if k != "seconds"},
            "tenants": len(tenants), "by_tenant": tenants}


# ---- ageing (the retention hook) ----------------------------------------------------------

def age_travel(sessions: sessionmaker, tenant_id: uuid.UUID, params: dict, *,
               dry_run: bool = False, budget=None) -> dict:
    """Apply one retention pass (the same parameters as the pings' pass: rules, touched and
    withdrawn bits, time range, subject, holds, batch) to stops and trips, by end time."""
    counts = {}
    for table in ("stops", "trips"):
        if dry_run:
            with tenant_session(sessions, tenant_id) as s:
                row = s.execute(sql.AGE_PENDING[table], params).one()
            counts[table] = {"aged": row.aged, "deleted": row.deleted}
            continue
        aged = deleted = 0
        while True:
            with tenant_session(sessions, tenant_id) as s:
                s.execute(sql.AGEING, {"tenant_id": str(tenant_id)})
                row = s.execute(sql.AGE_BATCH[table], params).one()
            aged, deleted = aged + row.aged, deleted + row.deleted
            done = row.aged + row.deleted
            if done and budget is not None:
                budget.spend(done)
            if done < params["batch"]:
                break
        counts[table] = {"aged": aged, "deleted": deleted}
    if any(c["aged"] or c["deleted"] for c in counts.values()):
        log.info("travel aged", extra={"fields": {"tenant_id": str(tenant_id),
                                                  "dry_run": dry_run, **counts}})
    return counts


# ---- aggregate reports (released through govern.domain.release) -----------------------------

BUCKETS = ("day", "week")


def _audit(session, principal, action, request_id, details, result: release.Release) -> None:
    audit.record(session, principal.tenant_id, principal.actor_id, action,
                 target_type="report", target_id=action.split(".", 1)[1],
                 request_id=request_id,
                 details={**details, "released": len(result.rows),
                          "suppressed": result.suppressed, "mode": result.mode,
                          "epsilon": result.epsilon, "replayed": result.replayed})


def _bucket_span(bucket_start: dt.datetime, bucket: str, t_from: dt.datetime,
                 t_to: dt.datetime) -> dict:
    """The days a bucket covers inside the asked range (a week bucket is clipped)."""
    end = bucket_start + (dt.timedelta(days=7) if bucket == "week" else dt.timedelta(days=1))
    return {"t_from": max(bucket_start, t_from), "t_to": min(end, t_to)}


def _report(session: Session, principal: Principal, kind: str, t_from: dt.datetime,
            t_to: dt.datetime, key: str, group_report: str, candidates, private_spec,
            now: dt.datetime | None, safeguards: release.Safeguards) -> release.Release:
    now = now or dt.datetime.now(dt.UTC)
    policy = current_policy(session)
    period = release.check_range(policy, t_from, t_to, now, safeguards)
    if period is not None:
        spec = release.ExactSpec("travel", kind, group_report,
                                 f"{t_from.astimezone(dt.UTC).isoformat()}/"
                                 f"{t_to.astimezone(dt.UTC).isoformat()}:{key}", candidates)
        return release.exact(session, principal.tenant_id, policy, spec, t_from, t_to,
                             period, now, safeguards)
    return release.private(session, principal.tenant_id, policy, private_spec(now), t_from,
                           t_to, now, safeguards)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()


def _buckets(t_from: dt.datetime, t_to: dt.datetime, bucket: str) -> list[str]:
    """Every day or ISO week bucket a range touches: the public domain of travel buckets."""
    out: list[str] = []
    for day in release.dp_days(t_from, t_to):
        start = dt.datetime.combine(day - dt.timedelta(days=day.weekday() if bucket == "week"
                                                       else 0), dt.time(0), dt.UTC)
        if not out or out[-1] != _iso(start):
            out.append(_iso(start))
    return out


def _contributions(session: Session, stmt, params: dict, key, values, dwells=None) -> list:
    rows = session.execute(stmt, params).all()
    return [dp.Contribution(r.subject_id, r.day, key(r), values(r),
                            list(dwells(r)) if dwells else []) for r in rows]


def travel_report(session: Session, principal: Principal, t_from: dt.datetime,
                  t_to: dt.datetime, bucket: str, request_id: str | None = None,
                  now: dt.datetime | None = None,
                  safeguards: release.Safeguards = release.FULL) -> release.Release:
    """Per day or week: subjects, trips, distance, moving time and stops."""
    def shape(r, v):
        return {"bucket": r.bucket, "subjects": v["subjects"], "trips": v["trips"],
                "distance_m": round(float(v["distance_m"])), "moving_s": int(v["moving_s"]),
                "stops": v["stops"]}

    def candidates(s):
        rows = s.execute(sql.travel_from_basis(), {"t_from": t_from, "t_to": t_to,
                                                   "bucket": bucket}).all()
        return [release.Candidate(shape(r, r._mapping), r.subjects, r.min_day_subjects,
                                  _bucket_span(r.bucket, bucket, t_from, t_to)) for r in rows]

    def private_spec(now):
        cases, params = release.usable_params(session, now)
        contributions = _contributions(
            session, dp_sql.travel(cases), {**params, "t_from": t_from, "t_to": t_to,
                                            "bucket": bucket, "clamp_m": dp.MAX_TRIP_M,
                                            "clamp_s": dp.MAX_TRIP_S},
            lambda r: _iso(r.bucket),
            lambda r: {"trips": r.trips, "stops": r.stops, "distance_m": float(r.distance_m),
                       "moving_s": float(r.moving_s)})
        return release.PrivateSpec(
            "travel", contributions,
            lambda k: SimpleNamespace(bucket=dt.datetime.fromisoformat(k)), shape,
            domain=_buckets(t_from, t_to, bucket),
            measures=("trips", "stops", "distance_m", "moving_s"))

    result = _report(session, principal, "travel", t_from, t_to, f"travel:{bucket}",
                     "travel", candidates, private_spec, now, safeguards)
    _audit(session, principal, "report.travel", request_id,
           {"from": t_from, "to": t_to, "bucket": bucket}, result)
    return result


def visits_report(session: Session, principal: Principal, t_from: dt.datetime,
                  t_to: dt.datetime, bucket: str, site_id: uuid.UUID | None = None,
                  request_id: str | None = None, now: dt.datetime | None = None,
                  safeguards: release.Safeguards = release.FULL) -> release.Release:
    """Per site and bucket: visits, distinct subjects, median and p90 dwell. One site's
    visits are its rows of the all-sites release, so asking per site releases nothing
    new."""
    if site_id is not None:
        from govern.domain.sites import get_site

        get_site(session, site_id)

    def shape(r, v):
        median = v.get("median_dwell_s", r.median_dwell_s)
        p90 = v.get("p90_dwell_s", r.p90_dwell_s)
        return {"site_id": r.site_id, "site": r.site, "bucket": r.bucket,
                "visits": v["visits"], "subjects": v["subjects"],
                "median_dwell_s": round(median), "p90_dwell_s": round(p90)}

    def candidates(s):
        rows = s.execute(sql.visits_from_basis(), {"t_from": t_from, "t_to": t_to,
                                                   "bucket": bucket}).all()
        return [release.Candidate(shape(r, r._mapping), r.subjects, r.min_day_subjects,
                                  {**_bucket_span(r.bucket, bucket, t_from, t_to),
                                   "site_id": r.site_id}) for r in rows]

    def private_spec(now):
        cases, params = release.usable_params(session, now)
        names = {}

        def key(r):
            k = f"{r.site_id}|{_iso(r.bucket)}"
            names[k] = SimpleNamespace(site_id=r.site_id, site=r.site, bucket=r.bucket,
                                       median_dwell_s=None, p90_dwell_s=None)
            return k

        contributions = _contributions(
            session, dp_sql.visits(cases), {**params, "t_from": t_from, "t_to": t_to,
                                            "bucket": bucket, "site_id": site_id,
                                            "clamp_dwell": dp.MAX_DWELL_S},
            key, lambda r: {"visits": r.visits}, lambda r: r.dwells)
        return release.PrivateSpec("visits", contributions, names.__getitem__, shape,
                                   measures=("visits",), quantiles=True)

    result = _report(session, principal, "visits", t_from, t_to, f"visits:{bucket}",
                     "visits", candidates, private_spec, now, safeguards)
    if site_id is not None and result.mode == "aligned":
        result.rows = [r for r in result.rows if r["site_id"] == str(site_id)]
    _audit(session, principal, "report.visits", request_id,
           {"from": t_from, "to": t_to, "bucket": bucket,
            "site_id": str(site_id) if site_id else None}, result)
    return result


def od_report(session: Session, principal: Principal, t_from: dt.datetime,
              t_to: dt.datetime, zones: str, request_id: str | None = None,
              now: dt.datetime | None = None,
              safeguards: release.Safeguards = release.FULL) -> release.Release:
    """Origin-destination matrix: trips and distinct subjects per zone pair."""
    resolution = None if zones == "sites" else int(zones.split(":", 1)[1])
    names = {}
    if resolution is None:
        names = {r.site_id: r.name for r in session.execute(sql.SITE_NAMES)}

    def zone(key: str) -> dict:
        if resolution is not None:
            return {"cell": key}
        return {"site_id": key or None, "site": names.get(key)}

    def shape(r, v):
        return {"origin": zone(r.origin), "destination": zone(r.destination),
                "trips": v["trips"], "subjects": v["subjects"]}

    def candidates(s):
        rows = s.execute(sql.od_from_basis(resolution), {"t_from": t_from, "t_to": t_to}).all()
        out = []
        for r in rows:
            group = {"t_from": t_from, "t_to": t_to}
            if resolution is None:
                group.update(origin_site=r.origin_key, dest_site=r.dest_key)
            else:
                group.update(res=resolution, origin_cell=r.origin_key, dest_cell=r.dest_key)
            out.append(release.Candidate(shape(r, r._mapping), r.subjects,
                                         r.min_day_subjects, group))
        return out

    def private_spec(now):
        cases, params = release.usable_params(session, now)
        contributions = _contributions(
            session, dp_sql.od(cases, resolution), {**params, "t_from": t_from, "t_to": t_to},
            lambda r: f"{r.origin}|{r.destination}", lambda r: {"trips": r.trips})

        def describe(k):
            origin, destination = k.split("|")
            return SimpleNamespace(origin=origin, destination=destination)

        return release.PrivateSpec("od", contributions, describe, shape, measures=("trips",))

    result = _report(session, principal, "od", t_from, t_to, f"od:{zones}",
                     "od_sites" if resolution is None else "od_h3", candidates, private_spec,
                     now, safeguards)
    _audit(session, principal, "report.od", request_id,
           {"from": t_from, "to": t_to, "zones": zones}, result)
    return result


# ---- individual travel -----------------------------------------------------------------------

def subject_travel(session: Session, principal: Principal, subject_id: uuid.UUID,
                   purpose_key: str, t_from: dt.datetime, t_to: dt.datetime,
                   request_id: str | None = None) -> dict:
    """A subject's trips per local day (distance, moving time, ends at the purpose's
    precision), under a purpose that allows individual reads to the caller's role, for a
    subject whose consent is active now; audited like a track read."""
    from govern.domain import reads
    from govern.domain.subjects import get_subject

    reads.check_range(t_from, t_to)
    purpose = reads.readable_purpose(session, principal, purpose_key)
    subject = get_subject(session, subject_id)
    now = dt.datetime.now(dt.UTC)
    tz = subject.timezone or current_policy(session)["timezone"]
    cutoff = reads.readable_cutoffs(session, purpose, now, subject_id).get(subject_id)
    readable = cutoff is not None
    rows = []
    if readable:
        rows = session.execute(sql.SUBJECT_TRIPS, {
            "subject_id": subject_id, "bit": 1 << purpose.bit, "tz": tz,
            "precision": purpose.precision_m, "window_start": cutoff,
            "t_from": t_from, "t_to": t_to}).all()
    days: dict[dt.date, dict] = {}
    for r in rows:
        day = days.setdefault(r.day, {"date": r.day.isoformat(), "count": 0,
                                      "distance_m": 0.0, "moving_s": 0, "trips": []})
        day["count"] += 1
        day["distance_m"] += r.distance_m
        day["moving_s"] += r.moving_s
        day["trips"].append({
            "started_at": r.started_at, "ended_at": r.ended_at, "duration_s": r.duration_s,
            "moving_s": r.moving_s, "distance_m": round(r.distance_m),
            "origin": {"lon": r.origin_lon, "lat": r.origin_lat, "site": r.origin_site},
            "destination": {"lon": r.dest_lon, "lat": r.dest_lat, "site": r.dest_site},
            "precision_m": r.precision_m})
    for day in days.values():
        day["distance_m"] = round(day["distance_m"])
    audit.record(session, principal.tenant_id, principal.actor_id, "read.travel",
                 target_type="subject", target_id=subject_id, subject_id=subject_id,
                 request_id=request_id,
                 details={"purpose": purpose_key, "from": t_from, "to": t_to,
                          "returned": len(rows), "consent_active": readable})
    return {"subject_id": subject_id, "purpose": purpose_key, "timezone": tz,
            "precision_m": purpose.precision_m, "from": t_from, "to": t_to,
            "days": list(days.values()),
            "totals": {"trips": len(rows),
                       "distance_m": round(sum(r.distance_m for r in rows)),
                       "moving_s": sum(r.moving_s for r in rows)}}
