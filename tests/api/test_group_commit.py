"""Group commit (govern.domain.group): concurrent device requests of a tenant in one
transaction, each answered after its commit with its own result; a failed group runs each
request alone; a commit whose outcome is unknown answers 503 with nothing acknowledged.

Requests are made to queue into one group deterministically: a first request is held at the
database (the test locks ingest_state, which its diagnostics statement writes) while the
others queue behind it in the batcher (the test waits on the batcher's condition until they
have); releasing the lock lets the first group commit and the queued requests form the next.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading

import psycopg
import pytest

from govern.config import libpq_url
from govern.domain.group import GroupCommit
from tests.conftest import CITUS
from tests.tracking import NAV, ping

T = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)


@pytest.fixture
def group(app, monkeypatch):
    batcher = GroupCommit()
    monkeypatch.setattr(app.extensions["govern"], "group", batcher)
    return batcher


@pytest.fixture
def phones(tenant, make_tracked):
    """A tenant with one purpose (navigation) and a function making consenting devices."""
    make_tracked(tenant, purposes=(NAV,), consent=("navigation",))

    def make(n: int, consent: bool = True) -> list[dict]:
        out = []
        for _ in range(n):
            subject = tenant.subject()
            device = tenant.device(subject["subject_id"])
            if consent:
                tenant.consent(subject["subject_id"], "navigation",
                               at=T - dt.timedelta(hours=23))
            out.append(device)
        return out
    return make


def post(app, device, items):
    return app.test_client().post("/v1/pings", json={"pings": items},
                                  headers={"Authorization": f"Bearer {device['token']}"})


class Calls:
    """Calls run each on its own thread; results (or exceptions) by position."""

    def __init__(self, calls):
        self.results = [None] * len(calls)
        self.threads = [threading.Thread(target=self._run, args=(n, fn), daemon=True)
                        for n, fn in enumerate(calls)]
        for t in self.threads:
            t.start()

    def _run(self, n, fn):
        try:
            self.results[n] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.results[n] = exc

    def join(self):
        for t in self.threads:
            t.join(120)
            assert not t.is_alive(), "a request never finished"
        for r in self.results:
            if isinstance(r, BaseException):
                raise r
        return self.results


def in_one_group(group, database_url, tenant_id, first, rest):
    """Run `first` alone in a group held at the database, queue `rest` behind it, release:
    `rest` is then stored as one group. Returns (first's answer, rest's answers)."""
    with psycopg.connect(libpq_url(database_url)) as blocker:
        blocker.execute("LOCK TABLE ingest_state IN SHARE MODE")
        head = Calls([first])
        assert group.wait_until(lambda b: b.taken == 1), "the first group was never taken"
        tail = Calls(rest)
        assert group.wait_until(lambda b: b.queued(tenant_id) == len(rest)), \
            "the requests never queued"
        blocker.rollback()
    return head.join()[0], tail.join()


def grouped(app, group, database_url, tenant_id, first, posts):
    """`posts` ((device, ping id) pairs, each one request of one ping at T) as one group
    behind a first request of `first`; returns their answers."""
    head, answers = in_one_group(
        group, database_url, tenant_id,
        lambda: post(app, first, [ping(id="head", t=T.isoformat())]),
        [lambda d=d, k=k: post(app, d, [ping(id=k, t=T.isoformat())]) for d, k in posts])
    assert head.status_code == 200, head.get_data(as_text=True)
    return answers


def xmins(superuser, tenant_id) -> dict:
    return {(str(r[0]), r[1]): r[2] for r in superuser.execute(
        "SELECT device_id, client_key, xmin::text FROM pings WHERE tenant_id = %s",
        (tenant_id,))}


def test_concurrent_requests_are_stored_in_one_transaction(app, group, tenant, phones,
                                                           superuser, database_url):
    first, *devices = phones(6)
    head, answers = in_one_group(
        group, database_url, tenant.tenant_id,
        lambda: post(app, first, [ping(id="head", t=T.isoformat())]),
        [lambda d=d, n=n: post(app, d, [ping(id=f"p{n}", lat=52.5 + n / 1000,
                                             t=(T + dt.timedelta(seconds=n)).isoformat())])
         for n, d in enumerate(devices)])
    assert head.status_code == 200 and head.get_json()["accepted"] == 1
    for resp in answers:
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json() == {"accepted": 1, "duplicates": 0, "dropped": {},
                                   "rejected": []}
    rows = xmins(superuser, tenant.tenant_id)
    assert len(rows) == 6
    grouped = {rows[(d["device_id"], f"p{n}")] for n, d in enumerate(devices)}
    assert len(grouped) == 1, "the five queued requests were not one transaction"
    assert rows[(first["device_id"], "head")] not in grouped
    assert (group.taken, group.committed, group.largest) == (2, 2, 5)
    # each device's own diagnostics counted its own request
    counts = dict(superuser.execute(
        "SELECT device_id::text, accepted FROM ingest_hourly WHERE tenant_id = %s",
        (tenant.tenant_id,)).fetchall())
    assert counts == {d["device_id"]: 1 for d in [first, *devices]}


def test_a_duplicate_within_a_group_is_answered_duplicate_once(app, group, tenant, phones,
                                                               superuser, database_url):
    first, twice, other = phones(3)
    answers = grouped(app, group, database_url, tenant.tenant_id, first,
                      [(twice, "same"), (twice, "same"), (other, "same")])
    got = sorted((r.get_json()["accepted"], r.get_json()["duplicates"]) for r in answers[:2])
    assert got == [(0, 1), (1, 0)]
    assert answers[2].get_json()["accepted"] == 1  # another device's ping of the same id
    assert group.largest == 3 and group.rolled_back == 0
    stored = superuser.execute("SELECT count(*) FROM pings WHERE device_id = %s",
                               (twice["device_id"],)).fetchone()[0]
    assert stored == 1


def test_refused_pings_in_a_group_leave_the_others_alone(app, group, tenant, phones,
                                                         superuser, database_url):
    first, good, future, invalid = phones(4)
    (unconsented,) = phones(1, consent=False)
    head, answers = in_one_group(
        group, database_url, tenant.tenant_id,
        lambda: post(app, first, [ping(id="head", t=T.isoformat())]),
        [lambda: post(app, good, [ping(id="g", t=T.isoformat())]),
         lambda: post(app, future, [ping(id="f", t=(T + dt.timedelta(days=2)).isoformat())]),
         lambda: post(app, invalid, [ping(id="i", lat=200, t=T.isoformat()),
                                     ping(id="j", t=T.isoformat())]),
         lambda: post(app, unconsented, [ping(id="u", t=T.isoformat())])])
    assert head.status_code == 200
    good_a, future_a, invalid_a, unconsented_a = (r.get_json() for r in answers)
    assert all(r.status_code == 200 for r in answers)
    assert good_a["accepted"] == 1
    assert future_a == {"accepted": 0, "duplicates": 0, "dropped": {"future": 1},
                        "rejected": []}
    assert invalid_a["accepted"] == 1 and [r["index"] for r in invalid_a["rejected"]] == [0]
    assert unconsented_a["dropped"] == {"no_consent": 1} and unconsented_a["accepted"] == 0
    assert group.largest == 4 and group.committed == 2
    assert len(set(xmins(superuser, tenant.tenant_id).values())) == 2


@pytest.fixture
def trigger(superuser):
    """Install a row trigger for the test (`install(table, body)`), dropped afterwards."""
    made = []

    def install(table: str, when: str, body: str):
        name = f"test_fault_{len(made)}"
        superuser.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                          f"$$BEGIN IF {when} THEN {body}; END IF; RETURN NEW; END$$")
        superuser.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
                          f"EXECUTE FUNCTION {name}()")
        made.append((table, name))

    yield install
    for table, name in made:
        superuser.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        superuser.execute(f"DROP FUNCTION IF EXISTS {name}()")


needs_triggers = pytest.mark.skipif(CITUS, reason="a test trigger on a distributed table")


def _one_faulty_ping_in_a_group(app, group, database_url, tenant, phones, trigger, key,
                                fault, others_key):
    """Four phones: a first request, then one whose ping (id `key`) meets `fault` in the pings
    trigger and two fine ones (id `others_key`), grouped behind it; returns (first, faulty,
    others, the three grouped answers)."""
    trigger("pings", f"NEW.client_key = '{key}'", fault)
    first, faulty, *others = phones(4)
    answers = grouped(app, group, database_url, tenant.tenant_id, first,
                      [(faulty, key), *((d, others_key) for d in others)])
    return first, faulty, others, answers


@needs_triggers
def test_a_database_error_in_one_request_fails_only_that_request(
        app, group, tenant, phones, superuser, database_url, trigger):
    first, _bad, others, answers = _one_faulty_ping_in_a_group(
        app, group, database_url, tenant, phones, trigger, "boom",
        "RAISE EXCEPTION 'refused by the test'", "ok")
    assert answers[0].status_code == 500
    assert answers[0].get_json()["error"]["code"] == "internal_error"
    for resp in answers[1:]:
        assert resp.status_code == 200 and resp.get_json()["accepted"] == 1
    assert group.rolled_back == 1  # the group of three, then each on its own
    rows = xmins(superuser, tenant.tenant_id)
    assert set(rows) == {(first["device_id"], "head"), *((d["device_id"], "ok") for d in others)}
    assert len({rows[(d["device_id"], "ok")] for d in others}) == 2  # each its own transaction


def _stored_once_or_refused(superuser, devices, answers, key):
    """Every acknowledged ping is stored, every stored ping once; a refusal is a 5xx."""
    for device, resp in zip(devices, answers, strict=True):
        n = superuser.execute("SELECT count(*) FROM pings WHERE device_id = %s AND "
                              "client_key = %s", (device["device_id"], key)).fetchone()[0]
        if resp.status_code == 200:
            assert resp.get_json()["accepted"] == 1 and n == 1
        else:
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert resp.get_json()["error"]["code"] == "unavailable" and n == 0


@needs_triggers
def test_connection_lost_before_commit_runs_each_request_alone(
        app, group, tenant, phones, superuser, database_url, trigger):
    # the backend storing the group dies inside its first statements: nothing of the group
    # can have committed, so each request runs on its own (the cut one dies again: 503)
    _first, cut, others, answers = _one_faulty_ping_in_a_group(
        app, group, database_url, tenant, phones, trigger, "cut",
        "PERFORM pg_terminate_backend(pg_backend_pid())", "cut-free")
    assert answers[0].status_code == 503
    assert [r.status_code for r in answers[1:]] == [200, 200]
    assert group.rolled_back == 1
    _stored_once_or_refused(superuser, [cut], answers[:1], "cut")
    _stored_once_or_refused(superuser, others, answers[1:], "cut-free")


@needs_triggers
def test_connection_lost_at_commit_answers_503_and_acknowledges_nothing(
        app, group, tenant, phones, superuser, database_url, trigger):
    first, cut, *others = phones(4)
    trigger("ingest_state", f"NEW.device_id = '{cut['device_id']}'",
            "PERFORM pg_terminate_backend(pg_backend_pid())")
    answers = grouped(app, group, database_url, tenant.tenant_id, first,
                      [(d, "late") for d in [cut, *others]])
    # whether COMMIT ran is unknown to the leader: every request of the group is told 503
    assert [r.status_code for r in answers] == [503, 503, 503]
    _stored_once_or_refused(superuser, [cut, *others], answers, "late")
    # the phones retry: stored once each
    for d in others:
        again = post(app, d, [ping(id="late", t=T.isoformat())])
        assert again.status_code == 200 and again.get_json()["accepted"] == 1


def test_withdrawn_consent_and_revoked_token_take_effect_for_the_next_request(
        app, group, tenant, phones):
    a, b = phones(2)
    assert post(app, a, [ping(id="1", t=T.isoformat())]).get_json()["accepted"] == 1
    resp = tenant.post(f"/v1/subjects/{a['subject_id']}/consents", {
        "purpose": "navigation", "status": "withdrawn", "policy_version": "v1",
        "evidence": {"form": "test"}})
    assert resp.status_code == 201, resp.get_json()
    after = post(app, a, [ping(id="2", t=(T + dt.timedelta(seconds=1)).isoformat())])
    assert after.status_code == 200
    assert after.get_json()["accepted"] == 0 and after.get_json()["dropped"] == {
        "no_consent": 1}
    assert post(app, b, [ping(id="1", t=T.isoformat())]).get_json()["accepted"] == 1
    revoked = tenant.client.delete(f"/v1/devices/{b['device_id']}",
                                   headers={"Authorization": f"Bearer {tenant.owner_token}"})
    assert revoked.status_code in (200, 204), revoked.get_data(as_text=True)
    assert post(app, b, [ping(id="2")]).status_code == 401
    assert group.committed >= 3


def test_owntracks_through_the_group(app, group, tenant, phones, superuser):
    (d,) = phones(1)
    basic = base64.b64encode(f"phone:{d['token']}".encode()).decode()
    resp = app.test_client().post(
        "/v1/ingest/owntracks", headers={"Authorization": f"Basic {basic}"},
        json={"_type": "location", "lat": 52.5, "lon": 13.4, "tst": int(T.timestamp())})
    assert resp.status_code == 200 and resp.get_json() == []
    assert group.committed == 1
    assert superuser.execute("SELECT count(*) FROM pings WHERE device_id = %s",
                             (d["device_id"],)).fetchone()[0] == 1


def test_partition_dropped_under_the_cache_with_groups(app, group, tenant, phones, superuser):
    if CITUS:
        pytest.skip("a distributed table's partitions are not dropped like this")
    (d,) = phones(1)
    assert post(app, d, [ping(id="a", t=T.isoformat())]).get_json()["accepted"] == 1
    part = superuser.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'pings'::regclass AND pg_get_expr(c.relpartbound, c.oid) "
        "LIKE %s", (f"%FROM ('{T.date().isoformat()}%",)).fetchone()
    superuser.execute(f'DROP TABLE "{part[0]}"')
    again = post(app, d, [ping(id="b", t=(T + dt.timedelta(seconds=1)).isoformat())])
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["accepted"] == 1
    assert group.rolled_back == 1  # the group failed on the missing partition; alone, made
