"""`govern demo`: a demo tenant with purposes, policy, zones, sites, team, subjects and a few
days of synthetic field-worker movement (commute, depot, site visits with stops), ingested
through the same governed path as real pings, with its stops and trips built as the
scheduler's trips job would. Every role finds something it may see: the owner and admins
read positions and tracks (dispatch, time tracking), dispatchers positions (navigation,
dispatch), analysts the aggregate reports (analytics), auditors the audit log."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

from tqdm import tqdm

from govern.db import tenant_session
from govern.domain import consents, policy, purposes, sites, subjects, zones
from govern.domain.ingest import ingest
from govern.domain.members import invite_member
from govern.domain.tenants import create_tenant
from govern.domain.trips import build_tenant
from govern.synthetic import distance_m, offset

CENTRE = (52.52, 13.405)  # Berlin
PURPOSES = [
    {"key": "navigation", "title": "Turn-by-turn navigation", "precision_m": 10,
     "retention_days": 7, "individual_access": True, "aggregate_use": False,
     "reader_roles": ["dispatcher"], "requires_consent": True,
     "description": "Live routing for the worker; kept one week."},
    {"key": "dispatch", "title": "Dispatch", "precision_m": 100, "retention_days": 30,
     "individual_access": True, "aggregate_use": False,
     "reader_roles": ["dispatcher", "admin", "owner"], "requires_consent": True,
     "description": "Assigning the nearest worker to a job."},
    {"key": "time_tracking", "title": "Time and mileage", "precision_m": 250,
     "retention_days": 400, "individual_access": True, "aggregate_use": False,
     "reader_roles": ["admin", "owner"], "requires_consent": True,
     "description": "Working time and mileage reimbursement."},
    {"key": "analytics", "title": "Operations analytics", "precision_m": 250,
     "retention_days": 365, "individual_access": False, "aggregate_use": True,
     "reader_roles": [], "requires_consent": True,
     "description": "Aggregate heatmaps and travel reports only."},
]
SITES = [("Depot Moabit", 52.530, 13.335), ("Clinic Mitte", 52.525, 13.390),
         ("Store Kreuzberg", 52.497, 13.420), ("Office Friedrichshain", 52.512, 13.455),
         ("Warehouse Neukölln", 52.478, 13.440), ("Hotel Charlottenburg", 52.507, 13.300),
         ("School Prenzlauer Berg", 52.540, 13.420), ("Mall Schöneberg", 52.485, 13.355)]


@dataclass
class Leg:
    lat: float
    lon: float
    stay_minutes: float


def workday(rng: random.Random, home: tuple[float, float], day: dt.date) -> list[dict]:
    """One worker's day: leave home ~7:30, depot, 3-5 sites with stops, depot, home."""
    depot = SITES[0][1:]
    visits = rng.sample(SITES[1:], rng.randint(3, 5))
    plan = [Leg(*depot, rng.uniform(15, 30))]
    plan += [Leg(lat, lon, rng.uniform(20, 75)) for _, lat, lon in visits]
    plan += [Leg(*depot, rng.uniform(10, 20)), Leg(*home, 0)]
    t = dt.datetime.combine(day, dt.time(6, 30), dt.UTC) + dt.timedelta(
        minutes=rng.uniform(0, 40))
    pos, pings = home, []
    for leg in plan:
        target = (leg.lat, leg.lon)
        dist = distance_m(pos, target)
        speed = rng.uniform(7, 13)  # m/s in city traffic
        steps = max(1, int(dist / speed / 30))
        for s in range(1, steps + 1):
            f = s / steps
            lat = pos[0] + (target[0] - pos[0]) * f
            lon = pos[1] + (target[1] - pos[1]) * f
            lat, lon = offset(lat, lon, rng.gauss(0, 6), rng.gauss(0, 6))
            t += dt.timedelta(seconds=30)
            pings.append({"t": t, "lat": lat, "lon": lon, "speed": round(speed, 1),
                          "acc": round(rng.uniform(4, 20), 1), "activity": "in_vehicle"})
        pos = target
        stay_end = t + dt.timedelta(minutes=leg.stay_minutes)
        while t < stay_end:
            t += dt.timedelta(minutes=2)
            lat, lon = offset(*pos, rng.gauss(0, 15), rng.gauss(0, 15))
            pings.append({"t": t, "lat": lat, "lon": lon, "speed": 0.0,
                          "acc": round(rng.uniform(5, 30), 1), "activity": "still"})
    for i, p in enumerate(pings):
        p["id"] = f"{day.isoformat()}-{i}"
        p["t"] = p["t"].isoformat()
    return pings


def seed_demo(sessions, name: str = "Demo Field Services", days: int = 3,
              n_subjects: int = 12, seed: int = 7, progress: bool = True,
              now: dt.datetime | None = None) -> dict:
    """Movement fills the `days` whole UTC days before `now`'s (default: the wall clock)."""
    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.UTC)
    engine = sessions.kw["bind"]
    out: dict = {}
    with tenant_session(sessions, None) as session:
        created = create_tenant(session, name, owner_email="owner@demo.example")
        tid, actor = created.tenant_id, "cli:demo"
        out = {"tenant_id": str(created.tenant_id), "tokens": {"owner": created.owner_token}}
        owner = _owner_principal(tid, created.owner_member_id)
        for role in ("admin", "analyst", "dispatcher", "auditor"):
            _, token = invite_member(session, owner, f"{role}@demo.example", role)
            out["tokens"][role] = token
        policy.update_policy(session, tid, actor, {
            "timezone": "Europe/Berlin", "k_min_subjects": 3, "min_accuracy_m": 100,
            "collection_windows": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                    "start": "06:00", "end": "21:00"}]})
        for spec in PURPOSES:
            purposes.create_purpose(session, tid, actor, dict(spec))
        for site_name, lat, lon in SITES:
            sites.create_site(session, tid, actor, name=site_name,
                              geometry={"type": "Point", "coordinates": [lon, lat]},
                              radius_m=150, kind="depot" if "Depot" in site_name else None,
                              max_vertices=10_000)
        workers = []
        for n in range(n_subjects):
            home = offset(*CENTRE, rng.uniform(-6000, 6000), rng.uniform(-8000, 8000))
            blocked = n == n_subjects - 1  # an apprentice under 16: never collected
            subject = subjects.create_subject(session, tid, actor, {
                "external_ref": f"worker-{n + 1:03d}", "display_name": f"Worker {n + 1}",
                "timezone": "Europe/Berlin", "collection_blocked": blocked,
                "blocked_reason": "under 16" if blocked else None})
            device, token = subjects.enrol_device(session, tid, actor, subject.subject_id,
                                                  platform=rng.choice(["android", "ios"]))
            zones.create_zone(session, tid, actor, name=f"home of worker-{n + 1:03d}",
                              geometry={"type": "Point", "coordinates": [home[1], home[0]]},
                              radius_m=300, subject_id=subject.subject_id, max_vertices=10_000)
            granted_at = now - dt.timedelta(days=days + 1)
            keys = [p["key"] for p in PURPOSES]
            if n % 5 == 4:
                keys.remove("analytics")  # some decline analytics
            for key in keys:
                consents.record_consent(session, tid, subject.subject_id, purpose_key=key,
                                        status="granted", at=granted_at,
                                        policy_version="2026-01", source="admin", actor=actor,
                                        evidence={"form": "onboarding", "signed": True})
            workers.append((subject, device, home))
            if n == 0:
                out["device"] = {"identifier": device.identifier, "token": token,
                                 "subject_id": str(subject.subject_id)}
    totals = {"accepted": 0, "dropped": 0}
    today = now.date()
    jobs = [(w, today - dt.timedelta(days=d)) for d in range(days, 0, -1) for w in workers]
    for (subject, device, home), day in tqdm(jobs, desc="demo movement", unit="worker-day",
                                             disable=not progress):
        pings = workday(rng, home, day)
        for i in range(0, len(pings), 500):
            with tenant_session(sessions, tid) as session:
                result = ingest(session, engine, tid, device.device_id, subject.subject_id,
                                pings[i:i + 500], now=now)
            totals["accepted"] += result.accepted
            totals["dropped"] += sum(result.dropped.values())
    out["pings"] = totals
    built = build_tenant(sessions, tid, now=now)  # what the scheduler's trips job does next
    out["trips"] = {"stops": built.stops, "trips": built.trips}
    return out


def _owner_principal(tenant_id: uuid.UUID, member_id: uuid.UUID):
    from govern.auth import Principal

    return Principal(tenant_id=tenant_id, kind="member", token_id=None, member_id=member_id,
                     role="owner")
