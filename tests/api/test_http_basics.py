"""Error bodies, request ids, health, readiness, metrics, OpenAPI and the docs page."""

import uuid

import pytest

from govern.app import create_app
from govern.config import Config


def _error(resp):
    body = resp.get_json()
    assert set(body) == {"error"}
    assert {"code", "message", "details"} <= set(body["error"])
    return body["error"]


def test_unknown_route_is_json_404(client):
    resp = client.get("/nope")
    assert resp.status_code == 404 and _error(resp)["code"] == "not_found"


def test_wrong_method_is_json_405(client):
    resp = client.put("/healthz")
    assert resp.status_code == 405 and _error(resp)["code"] == "method_not_allowed"


def test_body_over_limit_is_413(app, tenant):
    limit = app.config["MAX_CONTENT_LENGTH"]
    resp = tenant.client.post("/v1/members", data=b"x" * (limit + 1),
                              headers={**tenant.headers(), "Content-Type": "application/json"})
    assert resp.status_code == 413 and _error(resp)["code"] == "payload_too_large"


def test_wrong_content_type_is_415(tenant):
    resp = tenant.client.post("/v1/members", data="email=a@b.c&role=admin",
                              headers={**tenant.headers(),
                                       "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and _error(resp)["code"] == "unsupported_media_type"


def test_malformed_json_is_400(tenant):
    resp = tenant.client.post("/v1/members", data="{not json",
                              headers={**tenant.headers(), "Content-Type": "application/json"})
    assert resp.status_code in (400, 422)
    _error(resp)


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers[
        "X-Request-ID"] == "abc-123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers[
        "X-Request-ID"] != "bad id!"


def test_readyz_reports_schema_at_head(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ok" and body["schema_revision"] == body["head_revision"]


def test_metrics_counts_requests(client):
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'govern_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in text
    assert "govern_http_request_duration_seconds_bucket" in text


def test_openapi_and_offline_docs(client):
    spec = client.get("/openapi.json").get_json()
    assert "/v1/members" in spec["paths"]
    page = client.get("/docs").get_data(as_text=True)
    assert "/docs/static/swagger-ui-bundle.js" in page and "http" not in page.replace(
        'url: "/openapi.json"', "")
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


@pytest.fixture
def unreachable_app(tmp_path):
    config = Config.from_env({
        "DATABASE_URL": f"postgresql://postgres@/govern?host={tmp_path}&port=1",
        "LOG_LEVEL": "CRITICAL",
    })
    application = create_app(config)
    yield application
    application.extensions["govern"].engine.dispose()


def test_database_unreachable_is_503_with_retry_after(unreachable_app):
    client = unreachable_app.test_client()
    token = f"gv_{uuid.uuid4().hex}_{'a' * 43}"
    resp = client.get("/v1/members", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"].isdigit()
    assert _error(resp)["code"] == "unavailable"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "Retry-After" in ready.headers
    assert client.get("/healthz").status_code == 200


def test_a_device_post_with_the_database_unreachable_is_503_not_500(unreachable_app):
    """The pipelined device path checks its connection out of the pool itself; a server
    that is gone must answer 503 with Retry-After there too (seen in a restart test)."""
    client = unreachable_app.test_client()
    token = f"gv_{uuid.uuid4().hex}_{'a' * 43}"
    resp = client.post("/v1/pings", json={"pings": [{"lat": 52.5, "lon": 13.4,
                                                     "t": "2026-03-09T10:00:00Z"}]},
                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert resp.headers["Retry-After"].isdigit()
    assert _error(resp)["code"] == "unavailable"
