"""The DP heatmap counts a ping only as the one usable filter says (govern.sql.travel_reports):
under an aggregate purpose the subject serves now, never at or before that purpose's latest
withdrawal, whatever was granted since, and not at all once erased. The filter's withdrawal
cut is one expression per aggregate purpose (no per-ping subplan): these check it purpose by
purpose, with two aggregate purposes on the same pings, and at the instant of the cut.

Asked at explicit instants in the attack world's March 2026 (tests/privacy).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text

from govern.domain import consents, reports
from tests.privacy.test_dp_presence import World
from tests.privacy.test_release_attacks import C1, DAY, HOUR, MARCH, MONDAY, nine

NOW = MONDAY + 3 * DAY
MINUTE = dt.timedelta(minutes=1)


def _census(world: World) -> int:
    """A second aggregate purpose needing consent; the world's pings serve both."""
    world.tenant.purpose("census", precision_m=500, retention_days=365, aggregate_use=True,
                         individual_access=False)
    with world.session() as s:
        bit = s.execute(text("SELECT bit FROM purposes WHERE key = 'census'")).scalar()
    world.mask |= 1 << bit
    return bit


def _consent(world: World, who: str, purpose: str, status: str, at: dt.datetime) -> None:
    with world.session() as s:
        consents.record_consent(s, world.tenant.tenant_id, uuid.UUID(world.subject(who)),
                                purpose_key=purpose, status=status, at=at,
                                policy_version="v1", evidence={"form": "test"},
                                source="admin", actor="test", now=NOW)


def _pings(world: World, now: dt.datetime = NOW) -> dict[str, int]:
    """Per subject, the pings the DP heatmap's contributions count on Monday."""
    with world.session() as s:
        got = reports.contributions(s, MONDAY, MONDAY + DAY, 9, now)
    names = {uuid.UUID(sid): name for name, sid in world.subjects.items()}
    out: dict[str, int] = {}
    for c in got:
        name = names[uuid.UUID(str(c.subject))]
        out[name] = out.get(name, 0) + int(c.values["pings"])
    return out


def test_a_withdrawal_drops_pings_up_to_its_instant_purpose_by_purpose(tenant, sessions):
    world = World(tenant, sessions, dp_epsilon_per_query=0.5, dp_epsilon_per_day=100.0)
    world.subject("ann")
    _census(world)
    _consent(world, "ann", "census", "granted", MARCH)
    world.ping("ann", MONDAY + 9 * HOUR, nine(C1), n=4)  # 09:00:01 .. 09:00:04
    world.ping("ann", MONDAY + 15 * HOUR, nine(C1), n=2)
    world.ping("bob", MONDAY + 9 * HOUR, nine(C1, 3), n=3)  # never withdraws
    assert _pings(world) == {"ann": 6, "bob": 3}
    # analytics withdrawn: every ping still serves census, so all of them count
    _consent(world, "ann", "analytics", "withdrawn", MONDAY + 12 * HOUR)
    assert _pings(world) == {"ann": 6, "bob": 3}
    # census withdrawn too, at 09:00:02 exactly: she serves no aggregate purpose now
    _consent(world, "ann", "census", "withdrawn", MONDAY + 9 * HOUR + dt.timedelta(seconds=2))
    assert _pings(world) == {"bob": 3}
    # census granted again: the pings after its cut serve it, those at or before it never
    _consent(world, "ann", "census", "granted", MONDAY + 9 * HOUR + 30 * MINUTE)
    assert _pings(world) == {"ann": 4, "bob": 3}
    # analytics granted again: its cut (12:00) takes the 09:00 pings, census's the first two
    _consent(world, "ann", "analytics", "granted", MONDAY + 13 * HOUR)
    assert _pings(world) == {"ann": 4, "bob": 3}
    # asked as of before the withdrawals were recorded (their instants lie ahead): all count
    assert _pings(world, now=MONDAY + 8 * HOUR)["ann"] == 6


def test_an_erased_subject_is_no_longer_counted(tenant, sessions):
    world = World(tenant, sessions, dp_epsilon_per_query=0.5, dp_epsilon_per_day=100.0)
    world.ping("ann", MONDAY + 9 * HOUR, nine(C1), n=2)
    world.ping("bob", MONDAY + 9 * HOUR, nine(C1, 3), n=3)
    assert _pings(world) == {"ann": 2, "bob": 3}
    resp = tenant.post("/v1/requests", {"subject_id": world.subject("ann"), "kind": "erasure"})
    assert resp.status_code == 201, resp.get_json()
    resp = tenant.post(f"/v1/requests/{resp.get_json()['request_id']}/erase", {})
    assert resp.status_code == 200, resp.get_json()
    assert _pings(world) == {"bob": 3}
