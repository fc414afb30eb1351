"""Faults: the database restarts while devices post; a gunicorn worker dies mid-request.
In the end every acknowledged ping is stored exactly once and no batch is half-stored."""

import http.client
import json
import os
import signal
import subprocess
import threading
import time

import psycopg

from govern.config import libpq_url
from tests.conftest import CITUS
from tests.tracking import now_iso, ping

# On Citus the batch's insert (and the slow trigger's sleep) runs in the worker's backend for
# the shard, as `INSERT INTO public.pings_<shard> ...`: citus_stat_activity shows every
# node's backends, pg_stat_activity only the coordinator's
ACTIVITY = "citus_stat_activity" if CITUS else "pg_stat_activity"
BATCH_INSERT = "%INSERT INTO %pings%" if CITUS else "%INSERT INTO pings%"


def _count(database_url, where="true"):
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(f"SELECT count(*) FROM pings WHERE {where}").fetchone()[0]


def test_database_restart_while_devices_post(app, tenant, make_tracked, pg_cluster,
                                             database_url):
    devices = [make_tracked(tenant, subject={"external_ref": f"w{i}"} if i else None,
                            identifier=f"restart-dev-{i}") for i in range(1)]
    devices += [make_tracked(tenant, purposes=[], consent=("navigation",),
                             subject={"external_ref": f"w{i}"}, identifier=f"restart-dev-{i}")
                for i in range(1, 3)]
    acknowledged: dict[str, set] = {}
    saw_503 = []
    warmed = [threading.Event() for _ in devices]  # each device has landed a few batches
    down = threading.Event()  # the database has been stopped

    def device_loop(n, tracked, n_batches=25, before_restart=3):
        client = app.test_client()
        headers = {"Authorization": f"Bearer {tracked.device_token}"}
        acked = acknowledged.setdefault(tracked.device_id, set())
        for b in range(n_batches):
            if b == before_restart:
                warmed[n].set()
                assert down.wait(120), "the database was never stopped"
            batch = [ping(id=f"{b}-{i}", lat=52.5 + i / 1000, t=now_iso()) for i in range(20)]
            deadline = time.monotonic() + 120  # a loaded machine restarts slowly
            while time.monotonic() < deadline:
                resp = client.post("/v1/pings", json={"pings": batch}, headers=headers)
                if resp.status_code == 200:
                    body = resp.get_json()
                    assert body["accepted"] + body["duplicates"] == 20
                    acked.update(p["id"] for p in batch)
                    break
                assert resp.status_code == 503, resp.get_data(as_text=True)
                assert int(resp.headers["Retry-After"]) > 0
                saw_503.append(1)
                time.sleep(0.2)  # the test's stand-in for Retry-After
            else:
                raise AssertionError(f"batch {b} was never acknowledged")

    threads = [threading.Thread(target=device_loop, args=(n, d)) for n, d in enumerate(devices)]
    for t in threads:
        t.start()
    for w in warmed:  # conditions, not naps: every device is posting, then the server goes
        assert w.wait(120), "a device never got going"
    pg_cluster.stop("fast")  # a restart: connections die, the server is gone for a while
    down.set()
    deadline = time.monotonic() + 120
    while not saw_503 and time.monotonic() < deadline:
        time.sleep(0.05)
    pg_cluster.start()
    for t in threads:
        t.join(240)
    assert not any(t.is_alive() for t in threads)
    assert saw_503, "the restart should have been seen by at least one post"
    total = sum(len(v) for v in acknowledged.values())
    assert total == 3 * 25 * 20
    assert _count(database_url) == total  # every acknowledged ping once, none twice
    with psycopg.connect(libpq_url(database_url)) as conn:
        dupes = conn.execute("SELECT count(*) FROM (SELECT device_id, client_key FROM pings "
                             "GROUP BY 1, 2 HAVING count(*) > 1) d").fetchone()[0]
    assert dupes == 0


def _post(port, token, batch, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", "/v1/pings", body=json.dumps({"pings": batch}),
                 headers={"Authorization": f"Bearer {token}",
                          "Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_worker_killed_mid_request_leaves_no_partial_batch(gunicorn, tenant, make_tracked,
                                                           superuser, database_url):
    proc, port = gunicorn
    tracked = make_tracked(tenant)
    superuser.execute(
        "CREATE FUNCTION test_slow_ping() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.client_key = 'slow' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$")
    superuser.execute("CREATE TRIGGER test_slow BEFORE INSERT ON pings FOR EACH ROW "
                      "EXECUTE FUNCTION test_slow_ping()")
    batch = [ping(id=f"k{i}", lat=52.5 + i / 1000) for i in range(30)]
    batch.insert(15, ping(id="slow", lat=52.49))
    try:
        outcome = {}

        def post():
            try:
                outcome["resp"] = _post(port, tracked.device_token, batch)
            except (OSError, http.client.HTTPException) as exc:
                outcome["error"] = exc

        t = threading.Thread(target=post)
        t.start()
        deadline = time.monotonic() + 120  # a loaded machine is slow to get there
        worker = None
        while time.monotonic() < deadline and worker is None:
            row = superuser.execute(
                f"SELECT pid FROM {ACTIVITY} WHERE wait_event = 'PgSleep' "
                f"AND query LIKE '{BATCH_INSERT}' AND query NOT LIKE '%stat_activity%'"
            ).fetchone()
            if row:
                children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                          text=True).stdout.split()
                worker = int(children[0])
            time.sleep(0.05)
        assert worker, "the batch never reached the database"
        os.kill(worker, signal.SIGKILL)  # the worker dies with the batch in flight
        t.join(30)
        assert "error" in outcome or outcome["resp"][0] >= 500
        # the orphaned statement finishes its sleep, then its transaction must die: wait for
        # the server to have no statement of that batch left, then look
        deadline = time.monotonic() + 120
        while superuser.execute(
                f"SELECT count(*) FROM {ACTIVITY} WHERE query LIKE '{BATCH_INSERT}' "
                "AND query NOT LIKE '%stat_activity%' "
                "AND state <> 'idle' AND pid <> pg_backend_pid()").fetchone()[0]:
            assert time.monotonic() < deadline, "the orphaned batch never ended"
            time.sleep(0.05)
        assert _count(database_url) == 0
    finally:
        superuser.execute("DROP TRIGGER test_slow ON pings")
        superuser.execute("DROP FUNCTION test_slow_ping()")
    # the device retries against the respawned worker: all of it lands, once
    for _ in range(50):
        try:
            status, body = _post(port, tracked.device_token, batch)
            break
        except OSError:
            time.sleep(0.2)
    assert status == 200 and json.loads(body)["accepted"] == 31
    assert _count(database_url) == 31
