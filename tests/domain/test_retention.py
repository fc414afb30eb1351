"""Retention with a controllable clock: ageing, windows, withdrawal, holds, partitions,
resumability."""

import datetime as dt

import pytest

from govern.domain.retention import Budget, Interrupted, maintain_partitions, run_all
from govern.sql.retention import SHARD_BRIN_SUMMARIZE
from tests.conftest import CITUS
from tests.tracking import now_iso, ping

DAY = dt.timedelta(days=1)
NAV = {"key": "navigation", "title": "Nav", "precision_m": 10, "retention_days": 7,
       "individual_access": True, "reader_roles": ["dispatcher"]}
ANALYTICS = {"key": "analytics", "title": "Analytics", "precision_m": 500,
             "retention_days": 30, "aggregate_use": True, "individual_access": True,
             "reader_roles": ["analyst"]}


@pytest.fixture
def tracked(tenant, make_tracked):
    return make_tracked(tenant, purposes=(NAV, ANALYTICS))


def run(owner, sessions, days=0.0, **kw):
    return run_all(owner, sessions, dt.datetime.now(dt.UTC) + dt.timedelta(days=days), **kw)


def rows(superuser):
    return superuser.execute("SELECT purpose_mask, precision_m, ST_Y(geom), ST_X(geom) "
                             "FROM pings ORDER BY t").fetchall()


def bits(tenant):
    return {p["key"]: 1 << i for i, p in enumerate(
        sorted(tenant.get("/v1/purposes").get_json()["purposes"], key=lambda p: p["created_at"]))}


def track(tracked, purpose, role):
    token = tracked.tenant.token_for(role)
    since = (dt.datetime.now(dt.UTC) - 20 * DAY).isoformat().replace("+00:00", "Z")
    resp = tracked.tenant.get(f"/v1/subjects/{tracked.subject_id}/track",
                              query_string={"purpose": purpose, "from": since}, token=token)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["features"]


def test_a_ping_ages_through_each_window_to_deletion(tracked, owner, sessions, superuser):
    tracked.pings([ping(lat=60.1699, lon=24.9384)])
    (mask, precision, _, _), = rows(superuser)
    assert mask == 0b11 and precision == 10
    run(owner, sessions, days=3)
    assert rows(superuser)[0][:2] == (0b11, 10)  # nothing due yet
    run(owner, sessions, days=8)  # navigation's 7 days are over
    (mask, precision, lat, lon), = rows(superuser)
    assert mask == 0b10 and precision == 500
    from govern.policy.precision import snap
    assert (lat, lon) == pytest.approx(snap(lat, lon, 500), abs=1e-9)  # on the 500 m grid
    run(owner, sessions, days=31)  # analytics' 30 days too: nothing remains
    assert rows(superuser) == []
    kinds = superuser.execute("SELECT kind, purpose_key, aged, deleted, dropped "
                              "FROM retention_runs WHERE aged + deleted + dropped > 0 "
                              "ORDER BY finished_at").fetchall()
    # the day is past every window of every tenant, so its whole partition went
    assert kinds == [("age", "navigation", 1, 0, 0), ("partition_drop", None, 0, 0, 1)]


def test_deletion_when_the_last_window_closes(tracked, superuser, owner, sessions):
    tracked.pings([ping()])
    run(owner, sessions, days=8)
    report = run(owner, sessions, days=31, tenant_id=tracked.tenant.tenant_id)  # no partitions
    assert rows(superuser) == []
    entries = next(iter(report["tenants"].values()))["entries"]
    deleted = [(e["kind"], e["purpose_key"], e["deleted"]) for e in entries if e["deleted"]]
    assert deleted == [("age", "analytics", 1)]  # rollups keep their own 730 days


def test_evidence_is_listed_for_auditors(tenant, tracked, owner, sessions):
    tracked.pings([ping()])
    run(owner, sessions, days=8)
    runs = tenant.get("/v1/retention/runs", token=tenant.token_for("auditor")).get_json()["runs"]
    aged = [r for r in runs if r["kind"] == "age" and r["aged"]]
    assert aged and aged[0]["purpose"] == "navigation" and aged[0]["cutoff"]
    assert tenant.get("/v1/retention/runs",
                      token=tenant.token_for("analyst")).status_code == 403


def test_reads_never_return_past_the_window_even_before_a_run(tenant, make_tracked, superuser,
                                                              owner, sessions):
    tracked = make_tracked(tenant, purposes=(NAV, ANALYTICS),
                           consent_at=dt.datetime.now(dt.UTC) - 3 * DAY)
    tracked.pings([ping(t=now_iso(-2 * DAY), id="old"), ping(id="new")])
    assert len(track(tracked, "navigation", "dispatcher")) == 2
    nav_id = tracked.purposes["navigation"]["purpose_id"]
    tenant.patch(f"/v1/purposes/{nav_id}", {"retention_days": 1})
    assert len(track(tracked, "navigation", "dispatcher")) == 1  # hidden at once
    assert len(rows(superuser)) == 2  # still on disk
    run(owner, sessions)
    masks = [r[0] for r in rows(superuser)]
    assert masks == [0b10, 0b11]  # the old ping lost navigation on disk


def test_coarser_precision_applies_to_reads_at_once_and_disk_at_next_run(tenant, tracked,
                                                                        superuser, owner,
                                                                        sessions):
    tracked.pings([ping(lat=52.520008, lon=13.404954)])
    nav_id = tracked.purposes["navigation"]["purpose_id"]
    tenant.patch(f"/v1/purposes/{nav_id}", {"precision_m": 1000})
    feature, = track(tracked, "navigation", "dispatcher")
    assert feature["properties"]["precision_m"] == 1000
    lon, lat = feature["geometry"]["coordinates"]
    from govern.policy.precision import snap
    assert (lat, lon) == pytest.approx(snap(lat, lon, 1000), abs=1e-9)
    assert rows(superuser)[0][1] == 10
    run(owner, sessions)
    assert rows(superuser)[0][1] == 500  # finest of what remains: analytics' 500 m


def test_withdrawal_hides_at_once_and_leaves_disk_at_next_run(tracked, superuser, owner,
                                                             sessions):
    tracked.pings([ping()])
    assert len(track(tracked, "navigation", "dispatcher")) == 1
    resp = tracked.post("/v1/device/consents", {"purpose": "navigation", "status": "withdrawn",
                                                "policy_version": "v1"})
    assert resp.status_code == 201
    assert track(tracked, "navigation", "dispatcher") == []
    assert len(track(tracked, "analytics", "analyst")) == 1  # other purposes unaffected
    assert rows(superuser)[0][0] == 0b11
    run(owner, sessions)
    assert rows(superuser)[0][:2] == (0b10, 500)


def test_hold_stops_ageing_and_releases_on_its_end_date(tenant, tracked, superuser, owner,
                                                        sessions):
    tracked.pings([ping()])
    ends = (dt.datetime.now(dt.UTC) + 10 * DAY).isoformat()
    resp = tenant.post("/v1/legal-holds", {"subject_id": tracked.subject_id,
                                           "reason": "litigation 2026-17", "ends_at": ends})
    assert resp.status_code == 201 and resp.get_json()["active"]
    run(owner, sessions, days=8)
    assert rows(superuser)[0][0] == 0b11  # held: navigation kept past its window
    run(owner, sessions, days=31)  # hold over, and every window closed meanwhile
    assert rows(superuser) == []
    released = superuser.execute("SELECT count(*) FROM retention_runs "
                                 "WHERE kind = 'hold_released'").fetchone()[0]
    assert released == 1


def test_tenant_wide_hold_pauses_everything(tenant, tracked, superuser, owner, sessions):
    tracked.pings([ping()])
    tenant.post("/v1/legal-holds", {"reason": "regulator inquiry"})
    run(owner, sessions, days=40)
    assert len(rows(superuser)) == 1


def test_holds_are_audited_and_listed(tenant, tracked):
    hold = tenant.post("/v1/legal-holds", {"subject_id": tracked.subject_id,
                                           "reason": "subpoena 12"}).get_json()
    listed = tenant.get("/v1/legal-holds", token=tenant.token_for("auditor")).get_json()
    assert [h["hold_id"] for h in listed["legal_holds"]] == [hold["hold_id"]]
    ended = tenant.post(f"/v1/legal-holds/{hold['hold_id']}/end", {})
    assert ended.status_code == 200 and not ended.get_json()["active"]
    assert tenant.post(f"/v1/legal-holds/{hold['hold_id']}/end", {}).status_code == 409
    assert tenant.post("/v1/legal-holds", {"reason": "x" * 5},
                       token=tenant.token_for("analyst")).status_code == 403


def test_dry_run_changes_nothing(tracked, superuser, owner, sessions):
    tracked.pings([ping()])
    report = run(owner, sessions, days=8, dry_run=True)
    assert sum(t["aged"] for t in report["tenants"].values()) == 1
    assert rows(superuser)[0][0] == 0b11
    assert superuser.execute("SELECT count(*) FROM retention_runs").fetchone()[0] == 0


def test_a_run_killed_half_way_is_finished_by_the_next(tracked, superuser, owner, sessions):
    batch = [ping(id=str(i), lat=52.5 + i / 500) for i in range(40)]
    tracked.pings(batch)
    with pytest.raises(Interrupted):
        run(owner, sessions, days=8, batch=7, budget=Budget(max_batches=2))
    masks = [r[0] for r in rows(superuser)]
    assert masks.count(0b10) == 14 and masks.count(0b11) == 26  # consistent, half done
    run(owner, sessions, days=8, batch=7)
    assert {r[:2] for r in rows(superuser)} == {(0b10, 500)}


def test_partitions_past_every_window_are_dropped_whole(tracked, superuser, owner, sessions):
    old_day = (dt.datetime.now(dt.UTC) - 45 * DAY).date()
    superuser.execute("SELECT govern_ensure_ping_partition(%s)", (old_day,))
    superuser.execute(
        "INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask, "
        "precision_m, geom) VALUES (%s, %s, %s, %s, 'x', 2, 500, "
        "ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326))",
        (tracked.tenant.tenant_id, tracked.device_id, tracked.subject_id,
         dt.datetime.combine(old_day, dt.time(12), dt.UTC)))
    name = f"pings_{old_day:%Y%m%d}"
    result = maintain_partitions(owner, sessions, dt.datetime.now(dt.UTC))
    assert result["dropped"] >= 1
    assert superuser.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None
    evidence = superuser.execute("SELECT dropped, details->>'partition' FROM retention_runs "
                                 "WHERE kind = 'partition_drop'").fetchall()
    assert (1, name) in evidence
    tomorrow = (dt.datetime.now(dt.UTC) + 3 * DAY).strftime("%Y%m%d")
    assert superuser.execute("SELECT to_regclass(%s)", (f"pings_{tomorrow}",)).fetchone()[0]


def test_held_rows_keep_their_partition(tenant, tracked, superuser, owner, sessions):
    tenant.post("/v1/legal-holds", {"subject_id": tracked.subject_id, "reason": "subpoena"})
    old_day = (dt.datetime.now(dt.UTC) - 45 * DAY).date()
    superuser.execute("SELECT govern_ensure_ping_partition(%s)", (old_day,))
    superuser.execute(
        "INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask, "
        "precision_m, geom) VALUES (%s, %s, %s, %s, 'x', 2, 500, "
        "ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326))",
        (tracked.tenant.tenant_id, tracked.device_id, tracked.subject_id,
         dt.datetime.combine(old_day, dt.time(12), dt.UTC)))
    maintain_partitions(owner, sessions, dt.datetime.now(dt.UTC))
    assert superuser.execute("SELECT count(*) FROM pings").fetchone()[0] == 1


def test_rollups_follow_their_own_retention(tenant, tracked, superuser, owner, sessions):
    tracked.pings([ping()])
    tenant.patch("/v1/policy", {"aggregate_retention_days": 10})
    run(owner, sessions, days=40)
    assert rows(superuser) == []
    assert superuser.execute("SELECT count(*) FROM rollups").fetchone()[0] == 0


def _insert_old(superuser, tracked, day: dt.date, n: int, mask: int = 0b11, prec: int = 10):
    superuser.execute("SELECT govern_ensure_ping_partition(%s)", (day,))
    superuser.execute(
        "INSERT INTO pings (tenant_id, device_id, subject_id, t, client_key, purpose_mask, "
        "precision_m, geom) SELECT %s, %s, %s, %s + k * interval '5 seconds', 'x', %s, %s, "
        "ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326) FROM generate_series(0, %s - 1) AS k",
        (tracked.tenant.tenant_id, tracked.device_id, tracked.subject_id,
         dt.datetime.combine(day, dt.time(9), dt.UTC), mask, prec, n))


def _masks_by_day(superuser):
    return superuser.execute("SELECT t::date, array_agg(DISTINCT purpose_mask) FROM pings "
                             "GROUP BY 1 ORDER BY 1").fetchall()


def test_a_run_without_ageing_state_walks_day_by_day_and_keeps_its_progress(
        tracked, superuser, owner, sessions):
    """A first run (no ageing state) walks the days one partition at a time; killed in the
    middle, it has recorded how far it got, and the next run finishes from there."""
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=k) for k in (12, 11, 10)]  # navigation's window closed
    for day in days:
        _insert_old(superuser, tracked, day, 5)
    with pytest.raises(Interrupted):  # day 1: a full batch, then an empty one; day 2: killed
        run(owner, sessions, batch=5, budget=Budget(max_batches=2))
    assert _masks_by_day(superuser)[:3] == [(days[0], [0b10]), (days[1], [0b10]),
                                            (days[2], [0b11])]
    until, = superuser.execute(
        "SELECT s.aged_until FROM retention_state s JOIN purposes p USING (tenant_id, "
        "purpose_id) WHERE p.key = 'navigation'").fetchone()
    assert until == dt.datetime.combine(days[1], dt.time(0), dt.UTC) - dt.timedelta(
        microseconds=1)  # the first day is done; the second committed but not recorded yet
    run(owner, sessions, batch=5)
    assert {m for _, ms in _masks_by_day(superuser) for m in ms} == {0b10}
    aged = superuser.execute("SELECT aged FROM retention_runs WHERE kind = 'age' "
                             "AND purpose_key = 'navigation'").fetchall()
    assert aged == [(5,)]  # the second run aged the third day; the first left no evidence


def test_day_pieces_lie_each_in_one_partition(tracked, superuser, sessions):
    from govern.domain.retention import FOREVER, NEVER, _day_pieces

    today = dt.datetime.now(dt.UTC).date()
    for k in (20, 19):
        superuser.execute("SELECT govern_ensure_ping_partition(%s)",
                          (today - dt.timedelta(days=k),))
    bounds = superuser.execute(
        "SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), "
        "'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)'))::timestamptz[] "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'pings'::regclass ORDER BY 1").fetchall()
    us = dt.timedelta(microseconds=1)
    tid = tracked.tenant.tenant_id
    assert _day_pieces(sessions, tid, NEVER, FOREVER) == [(lo - us, hi - us)
                                                          for (lo, hi), in bounds]
    d20 = dt.datetime.combine(today - dt.timedelta(days=20), dt.time(0), dt.UTC)
    # (noon on day -20, midnight ending day -19]: the rest of day -20, all of day -19, and
    # the one instant of day -18's partition that the range still holds
    start, end = d20 + dt.timedelta(hours=12), d20 + 2 * DAY
    pieces = _day_pieces(sessions, tid, start, end)
    assert pieces[:2] == [(start, d20 + DAY - us), (d20 + DAY - us, end - us)]
    assert pieces[2:] in ([], [(end - us, end)])  # day -18's partition, if it exists
    assert _day_pieces(sessions, tid, d20 - 400 * DAY, d20 - 399 * DAY) == []  # no partition


def test_partition_drop_counts_each_tenant_and_respects_tenant_wide_holds(
        make_tenant, make_tracked, superuser, owner, sessions):
    acme, other = make_tenant("acme"), make_tenant("other")
    a, b = (make_tracked(t, purposes=(NAV, ANALYTICS)) for t in (acme, other))  # 30 days
    today = dt.datetime.now(dt.UTC).date()
    day1, day2 = today - dt.timedelta(days=45), today - dt.timedelta(days=44)
    for day in (day1, day2):
        _insert_old(superuser, a, day, 3, mask=0b10, prec=500)
        _insert_old(superuser, b, day, 2, mask=0b10, prec=500)
    resp = other.post("/v1/legal-holds", {"reason": "regulator inquiry", "ends_at": (
        dt.datetime.now(dt.UTC) + 10 * DAY).isoformat()})
    assert resp.status_code == 201, resp.get_json()
    assert maintain_partitions(owner, sessions, dt.datetime.now(dt.UTC))["dropped"] == 0
    left = superuser.execute("SELECT t::date, count(*) FROM pings WHERE t::date < %s "
                             "GROUP BY 1 ORDER BY 1", (today - dt.timedelta(days=30),))
    assert left.fetchall() == [(day1, 5), (day2, 5)]  # other's hold keeps both days whole
    assert other.post(f"/v1/legal-holds/{resp.get_json()['hold_id']}/end", {}).status_code == 200
    result = maintain_partitions(owner, sessions, dt.datetime.now(dt.UTC))
    assert result["dropped"] >= 2
    evidence = superuser.execute(
        "SELECT tenant_id, details->>'partition', dropped FROM retention_runs "
        "WHERE kind = 'partition_drop' ORDER BY 2, 3").fetchall()
    assert evidence == [
        (b.tenant.tenant_id, f"pings_{day1:%Y%m%d}", 2), (a.tenant.tenant_id,
                                                         f"pings_{day1:%Y%m%d}", 3),
        (b.tenant.tenant_id, f"pings_{day2:%Y%m%d}", 2), (a.tenant.tenant_id,
                                                         f"pings_{day2:%Y%m%d}", 3)]


def test_partitions_job_summarizes_the_arrival_index_of_days_that_ended(
        tracked, superuser, owner, sessions):
    """The retention run starts with the trips build, which asks which pings arrived since
    the last build: an unsummarized BRIN range matches every such scan, so the job
    summarizes the days that have ended (not today's, which ingest is filling)."""
    today = dt.datetime.now(dt.UTC).date()
    for day in (today - 4 * DAY, today - 3 * DAY, today):
        _insert_old(superuser, tracked, day, 3000)  # some 60 pages: two BRIN ranges

    def unsummarized(day) -> int:  # summarizing again reports what was left to do
        part = f"pings_{day:%Y%m%d}"
        if CITUS:  # the coordinator's partition is an empty shell: the rows are in shards
            return superuser.execute(
                "SELECT coalesce(sum(result::bigint), 0) FROM run_command_on_shards(%s, %s) "
                "WHERE success", (part, SHARD_BRIN_SUMMARIZE)).fetchone()[0]
        return superuser.execute(
            "SELECT brin_summarize_new_values(i.indexrelid) FROM pg_index i "
            "JOIN pg_inherits h ON h.inhrelid = i.indexrelid "
            "WHERE h.inhparent = 'pings_received'::regclass AND i.indrelid = %s::regclass",
            (part,)).fetchone()[0]

    assert unsummarized(today - 4 * DAY) >= 1  # ranges past the first wait for VACUUM
    maintain_partitions(owner, sessions, dt.datetime.now(dt.UTC))
    assert unsummarized(today - 3 * DAY) == 0
    assert unsummarized(today) >= 1  # left to ingest
