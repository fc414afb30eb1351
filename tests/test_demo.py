"""`govern demo` seeds a usable tenant through the governed path."""

from sqlalchemy import text

from govern.db import tenant_session
from govern.demo import PURPOSES, seed_demo


def test_demo_seeds_governed_movement(sessions, client):
    out = seed_demo(sessions, days=1, n_subjects=4, progress=False)
    assert out["pings"]["accepted"] > 300
    assert out["pings"]["dropped"] > 0  # home zones, blocked apprentice
    members = client.get("/v1/members",
                         headers={"Authorization": f"Bearer {out['tokens']['owner']}"})
    assert len(members.get_json()["members"]) == 5
    with tenant_session(sessions, out["tenant_id"]) as s:
        blocked = s.execute(text("SELECT count(*) FROM pings p JOIN subjects s USING "
                                 "(tenant_id, subject_id) WHERE s.collection_blocked")).scalar()
        assert blocked == 0
        assert s.execute(text("SELECT count(*) FROM rollups")).scalar() > 0
        # sites, and stops and trips built from the pings: Visits and OD have something
        assert s.execute(text("SELECT count(*) FROM sites")).scalar() == 8
        assert s.execute(text("SELECT count(*) FROM stops WHERE site_id IS NOT NULL")
                         ).scalar() > 0
    assert out["trips"]["trips"] > 0
    # every role may read something: owner and admin positions, dispatcher too
    by_role = {role: {p["key"] for p in PURPOSES if role in p["reader_roles"]}
               for role in ("owner", "admin", "dispatcher")}
    assert all(by_role.values()), by_role
