"""Rate limits, security headers, CORS, and tokens kept out of logs."""

import logging

import pytest

from govern.app import create_app
from govern.config import Config


@pytest.fixture
def limited_app(database_url):
    config = Config.from_env({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                              "RATE_LIMIT": "5 per minute", "AUTH_FAILURE_LIMIT": "3 per minute",
                              "CORS_ORIGINS": "https://console.example.com"})
    app = create_app(config)
    yield app
    app.extensions["govern"].engine.dispose()


def test_per_token_limit_answers_429_with_retry_after(limited_app, tenant):
    client = limited_app.test_client()
    headers = tenant.headers()
    statuses = [client.get("/v1/members", headers=headers).status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    resp = client.get("/v1/members", headers=headers)
    assert resp.get_json()["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0
    # another token has its own budget
    other = tenant.member("admin")["token"]
    assert client.get("/v1/members", headers={"Authorization": f"Bearer {other}"}).status_code \
        == 200


def test_failed_authentication_is_limited_harder(limited_app):
    client = limited_app.test_client()
    bad = {"Authorization": "Bearer gv_" + "0" * 32 + "_" + "x" * 43}
    statuses = [client.get("/v1/members", headers=bad).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_health_is_never_limited(limited_app):
    client = limited_app.test_client()
    assert {client.get("/healthz").status_code for _ in range(10)} == {200}


def test_security_headers(client, tenant):
    resp = tenant.get("/v1/members")
    for name, value in (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                        ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store")):
        assert resp.headers[name] == value
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    secure = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "max-age" in secure.headers["Strict-Transport-Security"]


def test_cors_only_for_configured_origins(limited_app):
    client = limited_app.test_client()
    ok = client.options("/v1/members", headers={
        "Origin": "https://console.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert ok.headers.get("Access-Control-Allow-Origin") == "https://console.example.com"
    evil = client.get("/v1/members", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_tokens_never_reach_the_logs(tenant, caplog):
    caplog.set_level(logging.DEBUG)
    tenant.get("/v1/members")
    tenant.get("/v1/members", token=tenant.owner_token[:-2] + "zz")
    secret = tenant.owner_token.split("_", 2)[2]
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "request" in text and secret not in text and secret[:12] not in text


def test_retry_after_only_on_refusals(limited_app, tenant):
    """flask-limiter would add Retry-After to every answer; only 429 and 503 carry it."""
    client = limited_app.test_client()
    ok = client.get("/v1/members", headers=tenant.headers())
    assert ok.status_code == 200 and "Retry-After" not in ok.headers
    assert "X-RateLimit-Limit" in ok.headers  # the limiter's other headers stay
    assert "Retry-After" not in client.get("/v1/nothing-here").headers
    for _ in range(6):
        last = client.get("/v1/members", headers=tenant.headers())
    assert last.status_code == 429 and int(last.headers["Retry-After"]) > 0
