"""Aggregate travel reports (travel, visits, origin-destination), released through
govern.domain.release like every aggregate."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

from sqlalchemy.orm import Session

from govern.auth import Principal
from govern.domain import audit, release
from govern.domain.policy import current_policy
from govern.privacy import dp
from govern.sql import dp as dp_sql
from govern.sql import travel_reports as sql

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
        rows = s.execute(sql.travel_from_basis(), {"tenant_id": principal.tenant_id,
                                                   "t_from": t_from, "t_to": t_to,
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
        rows = s.execute(sql.visits_from_basis(), {"tenant_id": principal.tenant_id,
                                                   "t_from": t_from, "t_to": t_to,
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
        rows = session.execute(sql.SITE_NAMES, {"tenant_id": session.info.get("tenant_id")})
        names = {r.site_id: r.name for r in rows}

    def zone(key: str) -> dict:
        if resolution is not None:
            return {"cell": key}
        return {"site_id": key or None, "site": names.get(key)}

    def shape(r, v):
        return {"origin": zone(r.origin), "destination": zone(r.destination),
                "trips": v["trips"], "subjects": v["subjects"]}

    def candidates(s):
        rows = s.execute(sql.od_from_basis(resolution), {"tenant_id": principal.tenant_id,
                                                         "t_from": t_from, "t_to": t_to}).all()
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
