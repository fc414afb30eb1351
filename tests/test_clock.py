"""Time comes from a clock the code receives: the app's for requests, the scheduler's for jobs.

These tests move the clock, not the machine: the same ping is "from the future" or fine
depending only on the app's clock, and a job is handed its scheduler's instant."""

import datetime as dt

import pytest

from govern.clock import FixedClock, SystemClock
from govern.scheduler import Job, run_job_exclusively
from tests.factories import TenantHandle
from tests.tracking import ping


def test_a_fixed_clock_stands_still_until_moved():
    at = dt.datetime(2028, 2, 29, 23, 59, 30, tzinfo=dt.UTC)
    clock = FixedClock(at)
    assert clock.now() == clock.now() == at
    assert clock.advance(dt.timedelta(seconds=45)) == dt.datetime(2028, 3, 1, 0, 0, 15,
                                                                 tzinfo=dt.UTC)
    clock.set(dt.datetime(2027, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    assert clock.now() == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert clock.now().tzinfo is dt.UTC
    with pytest.raises(ValueError):
        FixedClock(dt.datetime(2027, 1, 1))
    assert SystemClock().now().tzinfo is dt.UTC


@pytest.fixture
def clocked(config, sessions):
    """A second app on the suite's database whose clock the test holds."""
    from govern.app import create_app

    clock = FixedClock(SystemClock().now())
    app = create_app(config, clock=clock)
    app.testing = True
    yield app, clock
    app.extensions["govern"].engine.dispose()


def test_the_door_judges_against_the_apps_clock(clocked, make_tenant, make_tracked):
    app, clock = clocked
    handle = make_tenant("clocked")
    tracked = make_tracked(handle, consent_at=clock.now() - dt.timedelta(days=10))
    device = TenantHandle(handle.tenant_id, tracked.device_token, handle.owner_member_id,
                          app.test_client())
    stamp = clock.now() - dt.timedelta(days=1)
    body = {"pings": [ping(id="p1", t=stamp.isoformat())]}
    clock.set(stamp - dt.timedelta(days=1))  # the app's "now" is a day before the ping
    first = device.post("/v1/pings", body).get_json()
    assert (first["accepted"], first["dropped"]) == (0, {"future": 1}), first
    clock.set(stamp + dt.timedelta(minutes=5))
    second = device.post("/v1/pings", body).get_json()
    assert (second["accepted"], second["dropped"]) == (1, {}), second


def test_a_job_is_handed_its_schedulers_instant(config):
    at = dt.datetime(2027, 12, 31, 23, 30, tzinfo=dt.UTC)
    seen = []
    job = Job("test-clock", 60, lambda _config, now: seen.append(now) or {})
    run_job_exclusively(config, job, FixedClock(at))
    assert seen == [at]


def test_the_database_and_the_tests_share_one_wall_clock(superuser):
    """The instants run (tests/instants.py) moves the clock of the tests and of the cluster
    they start alike; were it to move only one, fixtures and the database's now() would
    disagree and this says so first."""
    db_now = superuser.execute("SELECT now()").fetchone()[0]
    assert abs((db_now - SystemClock().now()).total_seconds()) < 120


def test_an_instants_run_moves_both_clocks_to_its_instant(superuser):
    """In `make test-instants`, both the tests' and the database's clocks stand near the
    instant of the run (it started there, and a run takes well under three hours)."""
    import os

    from tests.instants import INSTANTS

    name = os.environ.get("GOVERN_TEST_INSTANT")
    if not name:
        pytest.skip("only in an instants run (make test-instants)")
    at = INSTANTS[name][0]
    db_now = superuser.execute("SELECT now()").fetchone()[0]
    for now in (SystemClock().now(), db_now):
        assert at <= now < at + dt.timedelta(hours=3), (name, now)


def test_requests_and_holds_are_judged_against_the_apps_clock(clocked, make_tenant,
                                                              make_tracked):
    """Whether a request is overdue, whether a received_at lies in the future and whether a
    hold is in force follow the app's clock, not the machine's."""
    app, clock = clocked
    handle = make_tenant("clocked-rights")
    tracked = make_tracked(handle)
    owner = TenantHandle(handle.tenant_id, handle.owner_token, handle.owner_member_id,
                         app.test_client())
    start = clock.now()
    ahead = (start + dt.timedelta(days=2)).isoformat()
    refused = owner.post("/v1/requests", {"subject_id": str(tracked.subject_id),
                                          "kind": "access", "received_at": ahead})
    assert refused.status_code == 422, refused.get_json()
    req = owner.post("/v1/requests", {"subject_id": str(tracked.subject_id),
                                      "kind": "access"}).get_json()
    hold = owner.post("/v1/legal-holds", {"reason": "case 7",
                                          "subject_id": str(tracked.subject_id),
                                          "ends_at": ahead}).get_json()
    assert not req["overdue"] and hold["active"], (req, hold)
    clock.set(start + dt.timedelta(days=31))
    assert owner.get(f"/v1/requests/{req['request_id']}").get_json()["overdue"]
    assert not owner.get(f"/v1/legal-holds/{hold['hold_id']}").get_json()["active"]
    clock.set(start + dt.timedelta(days=3))  # received_at is two days behind now
    accepted = owner.post("/v1/requests", {"subject_id": str(tracked.subject_id),
                                           "kind": "access", "received_at": ahead})
    assert accepted.status_code == 201, accepted.get_json()
