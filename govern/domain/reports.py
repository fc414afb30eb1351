"""The heatmap: cells of a closed period from the frozen release basis (exact mode), or of
any whole hours from the stored pings, bounded per person-day, with noise (differential
privacy); both through govern.domain.release."""

from __future__ import annotations

import datetime as dt

import h3.api.basic_int as h3
from sqlalchemy.orm import Session

from govern.auth import Principal
from govern.domain import audit, release
from govern.domain.policy import current_policy
from govern.privacy import dp
from govern.sql import dp as dp_sql
from govern.sql import reports as sql

RESOLUTIONS = (5, 6, 7, 8, 9)


def heatmap(session: Session, principal: Principal, t_from: dt.datetime, t_to: dt.datetime,
            resolution: int, request_id: str | None = None, now: dt.datetime | None = None,
            safeguards: release.Safeguards = release.FULL) -> release.Release:
    """Cells with pings and distinct subjects, through the one release path."""
    now = now or dt.datetime.now(dt.UTC)
    policy = current_policy(session)
    period = release.check_range(policy, t_from, t_to, now, safeguards)
    if period is not None:
        spec = release.ExactSpec("heatmap", "heatmap", "heatmap",
                                 f"{period}:{t_from.astimezone(dt.UTC).isoformat()}:{resolution}",
                                 lambda s: _candidates(s, t_from, t_to, resolution))
        result = release.exact(session, principal.tenant_id, policy, spec, t_from, t_to,
                               period, now, safeguards)
    else:
        spec = release.PrivateSpec(
            "heatmap", contributions(session, t_from, t_to, resolution, now),
            lambda key: {"cell": int(key)},
            lambda d, v: {**d, "pings": v["pings"], "subjects": v["subjects"],
                          "person_days": v["person_days"]}, measures=("pings",))
        result = release.private(session, principal.tenant_id, policy, spec, t_from, t_to,
                                 now, safeguards)
    audit.record(session, principal.tenant_id, principal.actor_id, "report.heatmap",
                 target_type="report", target_id="heatmap", request_id=request_id,
                 details={"from": t_from, "to": t_to, "resolution": resolution,
                          "released": len(result.rows), "suppressed": result.suppressed,
                          "mode": result.mode, "epsilon": result.epsilon,
                          "replayed": result.replayed})
    return result


def _candidates(session: Session, t_from: dt.datetime, t_to: dt.datetime,
                resolution: int) -> list[release.Candidate]:
    rows = session.execute(sql.heatmap_from_basis(resolution),
                           {"tenant_id": session.info.get("tenant_id"), "t_from": t_from,
                            "t_to": t_to}).all()
    return [release.Candidate({"cell": r.cell, "pings": r.pings, "subjects": r.subjects},
                              r.subjects, r.min_day_subjects,
                              {"t_from": t_from, "t_to": t_to, "res": resolution,
                               "cell": r.cell}) for r in rows]


def contributions(session: Session, t_from: dt.datetime, t_to: dt.datetime, resolution: int,
                  now: dt.datetime) -> list[dp.Contribution]:
    """Per person-day and cell at `resolution`: its pings, from the stored pings that serve
    an aggregate purpose now (differential privacy bounds them per person-day, which needs
    the subject: the rollups do not keep one), each point at the finest precision an
    aggregate purpose allows. Each distinct point's cell is computed once."""
    cases, params = release.usable_params(session, now)
    precision = session.execute(dp_sql.AGGREGATE_PRECISION,
                                {"tenant_id": session.info.get("tenant_id")}).scalar()
    per: dict[tuple, int] = {}
    session.execute(dp_sql.HEATMAP_MEMORY)
    for r in session.execute(dp_sql.heatmap_points(cases),
                             {**params, "t_from": t_from, "t_to": t_to,
                              "precision": precision}):
        cell = h3.latlng_to_cell(r.lat, r.lon, resolution)
        for subject, day, n in zip(r.subjects, r.days, r.pings, strict=True):
            key = (subject, day, cell)
            per[key] = per.get(key, 0) + n
    return [dp.Contribution(s, d, str(c), {"pings": n}) for (s, d, c), n in per.items()]


def cell_polygon(cell: int) -> list[list[float]]:
    ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(cell)]
    return [ring + [ring[0]]]


def cell_centre(cell: int) -> tuple[float, float]:
    return h3.cell_to_latlng(cell)
