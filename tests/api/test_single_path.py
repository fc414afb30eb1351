"""The pipelined path of a device's ingest request (govern.domain.single): a day partition
dropped under the process's cache is made again and the request stored once; a member's
token is refused as before; nothing is acknowledged that is not committed."""

import base64
import datetime as dt

import psycopg

from govern.config import libpq_url
from tests.conftest import CITUS
from tests.tracking import ping


def _count(database_url, device_id):
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute("SELECT count(*) FROM pings WHERE device_id = %s",
                            (device_id,)).fetchone()[0]


def test_partition_dropped_under_the_cache_is_made_again(tenant, make_tracked, superuser,
                                                         database_url):
    tracked = make_tracked(tenant)
    t = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    first = tracked.pings([ping(id="a", t=t.isoformat())])
    assert first.status_code == 200 and first.get_json()["accepted"] == 1
    # the process now believes the day's partition exists; take it away (and its ping)
    part = superuser.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'pings'::regclass AND pg_get_expr(c.relpartbound, c.oid) "
        "LIKE %s", (f"%FROM ('{t.date().isoformat()}%",)).fetchone()
    assert part, "no partition of the day"
    if CITUS:
        return  # a distributed table's partitions are not dropped like this
    superuser.execute(f'DROP TABLE "{part[0]}"')
    assert _count(database_url, tracked.device_id) == 0
    again = tracked.pings([ping(id="b", t=(t + dt.timedelta(seconds=1)).isoformat())])
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["accepted"] == 1
    assert _count(database_url, tracked.device_id) == 1


def test_owntracks_with_a_member_token_is_403(client, tenant, make_tracked):
    make_tracked(tenant)
    basic = base64.b64encode(f"me:{tenant.owner_token}".encode()).decode()
    resp = client.post("/v1/ingest/owntracks", data=b'{"_type":"location","lat":52.5,'
                       b'"lon":13.4,"tst":1700000000}', headers={
                           "Authorization": f"Basic {basic}",
                           "Content-Type": "application/json"})
    assert resp.status_code == 403


def test_revoked_device_token_is_refused_at_once(client, tenant, make_tracked):
    tracked = make_tracked(tenant)
    assert tracked.pings([ping(id="x")]).status_code == 200
    revoked = client.delete(f"/v1/devices/{tracked.device_id}",
                            headers={"Authorization": f"Bearer {tenant.owner_token}"})
    assert revoked.status_code in (200, 204), revoked.get_data(as_text=True)
    assert tracked.pings([ping(id="y")]).status_code == 401
