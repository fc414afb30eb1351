"""/metrics shows counts across tenants: a token, or loopback without a proxy."""

import pytest

from govern.app import create_app
from govern.config import Config


def test_without_a_token_only_direct_loopback_clients(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 403 and remote.get_json()["error"]["code"] == "forbidden"
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403
    assert client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


@pytest.fixture
def token_app(database_url):
    app = create_app(Config.from_env({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                                      "RATE_LIMITS": "off", "METRICS_TOKEN": "s3cret-scrape"}))
    yield app
    app.extensions["govern"].engine.dispose()


def test_with_a_token_it_is_required_from_anywhere(token_app):
    client = token_app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"},
                    environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert ok.status_code == 200 and "govern_http_requests_total" in ok.get_data(as_text=True)
