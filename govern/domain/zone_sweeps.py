"""Privacy-zone sweeps: what a newly drawn zone covers leaves the disk (pings, stops, trips).

The door drops pings inside a zone from the moment it is drawn and reads hide what it covers
at once; a sweep removes what was stored inside it before. Held subjects are passed over
and swept when their hold ends (govern.domain.retention).
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import sessionmaker

from govern.clock import FOREVER, NEVER
from govern.db import tenant_session
from govern.domain.retention_batches import Entry, TenantRun, day_pieces, delete_in_batches
from govern.sql import retention as sql


def sweep_zone(sessions, tenant_id, zone, now, run: TenantRun, *, held, batch, budget,
                subject_id: uuid.UUID | None = None) -> None:
    """Delete the pings (and stops and trips) stored inside a zone before it was drawn, for
    everyone it covers or one subject, held subjects excepted. The door drops pings in a
    zone from then on, and reads hide these at once; this removes them from disk. A
    tenant-wide zone reads every stored day once, one day partition at a time. Rollups keep
    their counts (aggregates, no person in them)."""
    params = {"tenant_id": tenant_id, "zone_id": zone.zone_id, "subject_id": subject_id,
              "held": list(held), "batch": batch, "t_from": NEVER, "t_to": FOREVER}
    if run.dry_run:
        with tenant_session(sessions, tenant_id) as s:
            deleted = s.execute(sql.COUNT_IN_ZONE, params).scalar()
            travel = s.execute(sql.COUNT_TRAVEL_IN_ZONE, params).one()
    else:
        pieces = [(NEVER, FOREVER)] if (subject_id or zone.subject_id) \
            else day_pieces(sessions, tenant_id, NEVER, FOREVER)
        deleted = sum(delete_in_batches(sessions, tenant_id, sql.SWEEP_ZONE,
                                         {**params, "t_from": lo, "t_to": hi}, batch, budget)
                      for lo, hi in pieces)
        with tenant_session(sessions, tenant_id) as s:
            travel = s.execute(sql.SWEEP_ZONE_TRAVEL, params).one()
    if deleted or travel.stops or travel.trips:
        details = {"zone_id": str(zone.zone_id), "stops": travel.stops, "trips": travel.trips}
        if subject_id or zone.subject_id:
            details["subject_id"] = str(subject_id or zone.subject_id)
        run.entries.append(Entry("zone", None, now, 0, deleted, details=details))


def sweep_new_zones(sessions: sessionmaker, tenant_id: uuid.UUID, now, run: TenantRun, *,
                    held, batch, budget) -> None:
    """Privacy zones drawn since the last run: sweep each, then mark it swept."""
    with tenant_session(sessions, tenant_id) as s:
        zones = s.execute(sql.UNSWEPT_ZONES, {"tenant_id": tenant_id}).all()
    for z in zones:
        sweep_zone(sessions, tenant_id, z, now, run, held=held, batch=batch, budget=budget)
        if not run.dry_run:
            with tenant_session(sessions, tenant_id) as s:
                s.execute(sql.MARK_SWEPT, {"tenant_id": tenant_id, "now": now,
                                           "zone_id": z.zone_id})


def sweep_subject_zones(sessions: sessionmaker, tenant_id: uuid.UUID, subject_id, now,
                        run: TenantRun, *, held, batch, budget) -> None:
    """Zones swept while a hold kept this subject's pings: apply them to the subject now."""
    with tenant_session(sessions, tenant_id) as s:
        zones = s.execute(sql.ZONES_FOR_SUBJECT, {"tenant_id": tenant_id,
                                                  "subject_id": subject_id}).all()
    for z in zones:
        sweep_zone(sessions, tenant_id, z, now, run, held=held, subject_id=subject_id,
                   batch=batch, budget=budget)
