"""Killing the database connection mid-batch leaves no partial batch, and says 503."""

import threading
import time

import pytest

from tests.conftest import CITUS
from tests.tracking import ping


@pytest.mark.skipif(CITUS, reason="single node: on Citus the slow trigger sleeps in the "
                    "worker's backend for the shard, which the coordinator's pg_stat_activity "
                    "(where this test finds the backend to kill) never shows")
def test_connection_killed_mid_batch_stores_nothing(tenant, make_tracked, superuser):
    tracked = make_tracked(tenant)
    # Slow the insert down on one row so the batch is surely in flight when we kill it.
    superuser.execute(
        "CREATE FUNCTION test_slow_ping() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.client_key = 'slow' THEN PERFORM pg_sleep(5); END IF; RETURN NEW; END $$")
    superuser.execute("CREATE TRIGGER test_slow BEFORE INSERT ON pings FOR EACH ROW "
                      "EXECUTE FUNCTION test_slow_ping()")
    try:
        batch = [ping(id=f"p{i}", lat=52.5 + i / 1000) for i in range(50)]
        batch.insert(25, ping(id="slow", lat=52.49))
        result = {}

        def post():
            result["resp"] = tracked.pings(batch)

        worker = threading.Thread(target=post)
        worker.start()
        killed = 0
        deadline = time.monotonic() + 120  # a loaded machine is slow to get there
        while not killed and time.monotonic() < deadline:
            killed = superuser.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE '%INSERT INTO pings%' AND wait_event = 'PgSleep' "
                "AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            time.sleep(0.05)
        worker.join(15)
        assert killed == 1
        resp = result["resp"]
        assert resp.status_code == 503
        assert resp.headers["Retry-After"].isdigit()
        assert resp.get_json()["error"]["code"] == "unavailable"
        assert superuser.execute("SELECT count(*) FROM pings").fetchone()[0] == 0
        assert superuser.execute("SELECT count(*) FROM rollups").fetchone()[0] == 0
    finally:
        superuser.execute("DROP TRIGGER test_slow ON pings")
        superuser.execute("DROP FUNCTION test_slow_ping()")
    # the client retries and everything lands exactly once
    retry = tracked.pings(batch)
    assert retry.status_code == 200 and retry.get_json()["accepted"] == 51
    assert superuser.execute("SELECT count(*) FROM pings").fetchone()[0] == 51
