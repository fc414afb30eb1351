"""Travel: stops and trips derived from governed pings, kept governed.

Derivation is govern.policy.staypoints (pure). Governance. A stop or trip serves only
purposes every one of its pings serves (the AND of their masks), keeps one representative
point per end snapped to the finest precision those purposes allow, and an H3 cell at the
resolution that precision allows. It ages with its pings (by its end time; see
govern.domain.travel_ageing), is erased with the subject and exported with it. Reports over
them are govern.domain.travel_reports, a subject's own travel govern.domain.reads.

Incremental building. Per tenant, a watermark on the pings' arrival time (`received_at`);
each run takes the pings that arrived since, and for each subject with new pings rebuilds
from the start of the last stop that ended before the earliest new ping (late pings
included), in one transaction per subject.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import h3.api.basic_int as h3
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from govern.clock import NEVER, SystemClock
from govern.db import tenant_session
from govern.domain.policy import current_policy
from govern.models import Purpose
from govern.policy.cutoffs import window_start
from govern.policy.precision import snap
from govern.policy.staypoints import StopSpan, Track, TripSpan, detect
from govern.sql import trips as sql

log = logging.getLogger("govern.trips")

BUILD_WORKERS = 2  # subjects built at once (one connection each)

# H3 resolution for a precision: the finest whose hexagons (sqrt(3) x average edge wide) are
# at least that many metres wide. Same numbers as SQL govern_h3_res_for (migration 0007).
_H3_WIDTH_LIMITS = ((8, 799), (7, 2114), (6, 5593), (5, 14799), (4, 39155), (3, 103595),
                    (2, 274087), (1, 725168))


def h3_resolution_for(precision_m: int) -> int:
    for res, limit in _H3_WIDTH_LIMITS:
        if precision_m <= limit:
            return res
    return 0


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


def load_governance(session: Session, now: dt.datetime) -> Governance:
    policy = current_policy(session)
    purposes = session.scalars(select(Purpose)).all()
    return Governance(float(policy["stay_radius_m"]), 60.0 * policy["stay_min_minutes"],
                      {p.bit: p.precision_m for p in purposes},
                      {p.bit: window_start(p.retention_days, p.window_floor, now).timestamp()
                       for p in purposes})


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
    ids = {"tenant_id": tenant_id, "s": subject_id}
    if not session.execute(sql.SUBJECT_OPEN, ids).scalar():
        return BuildResult()  # blocked or being erased: derive nothing
    restart = session.execute(sql.RESTART_POINT, {**ids, "t0": t0}).scalar()
    rows = session.execute(sql.SUBJECT_PINGS, {**ids, "t_from": restart or NEVER,
                                               "near_m": gov.radius_m}).all()
    if not rows:
        return BuildResult()
    track = Track.of(rows)
    stops, trips = detect(track, gov.radius_m, gov.min_stay_s)
    t_from = restart or dt.datetime.fromtimestamp(track.t[0], dt.UTC)
    session.execute(sql.DELETE_FROM, {**ids, "t_from": t_from})
    srows, trows = stop_rows(track, stops, gov), trip_rows(track, trips, gov)
    if srows["t0"]:
        session.execute(sql.INSERT_STOPS, {**ids, **srows})
    if trows["t0"]:
        session.execute(sql.INSERT_TRIPS, {**ids, **trows})
    if restart is not None and stops \
            and abs(track.t[stops[0].first] - restart.timestamp()) < 1e-3:
        inbound = session.execute(sql.INBOUND_TRIP, {**ids, "r": restart}).first()
        if inbound is not None:  # the trip into the rebuilt stop: its destination follows
            lon, lat, cell = governed_point(stops[0].lat, stops[0].lon, inbound.precision_m)
            session.execute(sql.SET_DESTINATION, {**ids, "lon": lon, "lat": lat,
                                                  "cell": cell,
                                                  "started_at": inbound.started_at})
    return BuildResult(1, len(track), len(srows["t0"]), len(trows["t0"]))


def build_tenant(sessions: sessionmaker, tenant_id: uuid.UUID, *, workers: int = BUILD_WORKERS,
                 on_progress: Callable[[int], None] | None = None,
                 now: dt.datetime | None = None) -> BuildResult:
    """Turn the pings that arrived since the last run into stops and trips. Each subject is
    its own transaction (`workers` at a time: the database's work for one overlaps the
    detection of another); the watermark moves only when every subject is done, so a run
    stopped half-way is finished (idempotently) by the next. `now` decides which purposes'
    windows a record has left (the system clock when not given)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with tenant_session(sessions, tenant_id) as s:
        horizon = s.execute(sql.HORIZON).scalar()
        since = s.execute(sql.WATERMARK, {"tenant_id": tenant_id}).scalar() or NEVER
        if since > NEVER:  # an increment: BRIN leaves little to read (the first build reads all)
            s.execute(sql.SERIAL_SCAN)
        changed = s.execute(sql.CHANGED_SUBJECTS, {"tenant_id": tenant_id, "since": since,
                                                    "horizon": horizon}).all()
        gov = load_governance(s, now or SystemClock().now())

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
              on_progress: Callable[[int], None] | None = None,
              now: dt.datetime | None = None) -> dict:
    """The trips job: every tenant (or one)."""
    from govern.domain.tenants import tenant_ids

    total = BuildResult()
    tenants = {}
    for tid in [tenant_id] if tenant_id else tenant_ids(owner):
        r = build_tenant(sessions, tid, on_progress=on_progress, now=now)
        total.add(r)
        tenants[str(tid)] = r.__dict__
    return {**{k: v for k, v in total.__dict__.items() if k != "seconds"},
            "tenants": len(tenants), "by_tenant": tenants}
