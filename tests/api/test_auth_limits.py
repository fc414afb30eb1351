"""Failed-authentication limits refuse guessing, never valid credentials; keys cannot be varied;
forwarded addresses count only from trusted proxies."""

import base64
import datetime as dt

import pytest

from govern.app import create_app
from govern.config import Config

BAD = "gv_" + "0" * 32 + "_" + "x" * 43


def _app(database_url, **env):
    config = Config.from_env({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **env})
    return create_app(config)


@pytest.fixture
def guarded(database_url):
    """A generous general budget and a tight failed-authentication budget."""
    app = _app(database_url, RATE_LIMIT="1000 per minute", AUTH_FAILURE_LIMIT="3 per minute")
    yield app
    app.extensions["govern"].engine.dispose()


def _osmand(identifier):
    return {"id": identifier, "lat": "52.52", "lon": "13.40",
            "timestamp": str(int((dt.datetime.now(dt.UTC)
                                  - dt.timedelta(minutes=1)).timestamp()))}


def test_failed_attempts_never_lock_out_valid_credentials(guarded, tenant, make_tracked):
    tracked = make_tracked(tenant)
    client = guarded.test_client()
    bad = [client.get("/v1/members", headers={"Authorization": f"Bearer {BAD}"}).status_code
           for _ in range(20)]
    assert bad[:3] == [401] * 3 and set(bad[3:]) == {429}
    # the same address, valid credentials: owner, device token, OsmAnd identifier
    assert client.get("/v1/members", headers=tenant.headers()).status_code == 200
    resp = client.post("/v1/pings", json={"pings": []},
                       headers={"Authorization": f"Bearer {tracked.device_token}"})
    assert resp.status_code == 200, resp.get_json()
    assert client.get("/v1/ingest/osmand",
                      query_string=_osmand(tracked.identifier)).status_code == 200
    # and failures from it are still refused
    assert client.get("/v1/members", headers={"Authorization": f"Bearer {BAD}"}
                      ).status_code == 429


def test_scheme_case_and_whitespace_share_one_budget(database_url, tenant):
    app = _app(database_url, RATE_LIMIT="5 per minute")
    client = app.test_client()
    token = tenant.owner_token
    spellings = [f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Bearer   {token}  ",
                 f"\tbEaReR {token}", f"Bearer {token}", f"bearer  {token}"]
    statuses = [client.get("/v1/members", headers={"Authorization": h}).status_code
                for h in spellings]
    assert statuses == [200] * 5 + [429, 429]
    app.extensions["govern"].engine.dispose()


def test_random_authorization_headers_do_not_renew_osmand_guessing(guarded, tenant):
    client = guarded.test_client()
    statuses = []
    for i in range(8):
        junk = base64.b64encode(f"u{i}:{BAD[:-2]}{i:02d}".encode()).decode()
        header = f"Bearer {BAD[:-2]}{i:02d}" if i % 2 else f"Basic {junk}"
        statuses.append(client.get("/v1/ingest/osmand", query_string=_osmand(f"guess-{i:04d}"),
                                   headers={"Authorization": header}).status_code)
    assert statuses[:3] == [404] * 3 and set(statuses[3:]) == {429}


def test_a_well_formed_token_spelled_many_ways_is_one_failure_budget(guarded):
    client = guarded.test_client()
    spellings = [f"Bearer {BAD}", f"bearer {BAD}", f"BEARER  {BAD}", f"Bearer {BAD} "]
    statuses = [client.get("/v1/members", headers={"Authorization": h}).status_code
                for h in spellings]
    assert statuses == [401, 401, 401, 429]


@pytest.fixture
def behind_proxy(database_url):
    app = _app(database_url, AUTH_FAILURE_LIMIT="3 per minute", TRUSTED_PROXY_HOPS="1",
               TRUSTED_PROXIES="10.0.0.0/8")
    yield app
    app.extensions["govern"].engine.dispose()


def _fail(client, peer, forwarded):
    return client.get("/v1/members", headers={"Authorization": f"Bearer {BAD}",
                                              "X-Forwarded-For": forwarded},
                      environ_base={"REMOTE_ADDR": peer}).status_code


def test_forwarded_address_counts_only_from_a_trusted_proxy(behind_proxy):
    client = behind_proxy.test_client()
    # through the proxy: each client has its own budget
    assert [_fail(client, "10.1.2.3", "198.51.100.7") for _ in range(4)] == [401] * 3 + [429]
    assert _fail(client, "10.1.2.3", "198.51.100.8") == 401
    # a client reaching the app directly cannot pick its address by the header
    direct = [_fail(client, "203.0.113.5", f"198.51.100.{100 + i}") for i in range(4)]
    assert direct == [401] * 3 + [429]


def test_forwarded_address_is_ignored_without_trusted_proxies(database_url):
    app = _app(database_url, AUTH_FAILURE_LIMIT="3 per minute")
    client = app.test_client()
    statuses = [_fail(client, "10.1.2.3", f"198.51.100.{i}") for i in range(4)]
    assert statuses == [401] * 3 + [429]
    app.extensions["govern"].engine.dispose()


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        Config.from_env({"DATABASE_URL": "postgresql://x/y", "TRUSTED_PROXIES": "proxy.local"})
