"""Bearer tokens: 401 without, 403 for the wrong role, revocation and expiry."""

import datetime as dt

from sqlalchemy import text

from govern.db import tenant_session


def test_missing_token_is_401_with_error_body(client):
    resp = client.get("/v1/members")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthenticated"
    assert "Bearer" in resp.headers["WWW-Authenticate"]


def test_garbage_and_unknown_tokens_are_401(client, tenant):
    for token in ("nope", "gv_" + "0" * 32 + "_" + "a" * 43, tenant.owner_token[:-1] + "x"):
        resp = client.get("/v1/members", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token


def test_token_of_one_tenant_with_other_tenants_prefix_fails(make_tenant, client):
    a, b = make_tenant("a"), make_tenant("b")
    forged = f"gv_{b.tenant_id.hex}_{a.owner_token.split('_', 2)[2]}"
    resp = client.get("/v1/members", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401


def test_only_hash_is_stored(tenant, superuser):
    rows = superuser.execute("SELECT token_hash, hint FROM api_tokens").fetchall()
    secret = tenant.owner_token.split("_", 2)[2]
    for token_hash, hint in rows:
        assert secret.encode() not in token_hash
        assert len(token_hash) == 32
        assert secret.startswith(hint) and len(hint) < 10


def test_role_not_allowed_is_403(tenant):
    analyst = tenant.token_for("analyst")
    resp = tenant.get("/v1/members", token=analyst)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_revoked_token_is_401(tenant):
    created = tenant.post("/v1/tokens", {"name": "ci"}).get_json()
    assert tenant.get("/v1/tokens", token=created["token"]).status_code == 200
    assert tenant.delete(f"/v1/tokens/{created['token_id']}").status_code == 204
    assert tenant.get("/v1/tokens", token=created["token"]).status_code == 401


def test_expired_token_is_401(tenant, sessions):
    created = tenant.post("/v1/tokens", {"name": "short", "expires_in_days": 1}).get_json()
    assert tenant.get("/v1/tokens", token=created["token"]).status_code == 200
    with tenant_session(sessions, tenant.tenant_id) as s:
        s.execute(text("UPDATE api_tokens SET expires_at = now() - interval '1 second' "
                       "WHERE token_id = :id"), {"id": created["token_id"]})
    assert tenant.get("/v1/tokens", token=created["token"]).status_code == 401


def test_last_used_is_recorded(tenant):
    tenant.get("/v1/members")
    tokens = tenant.get("/v1/tokens").get_json()["tokens"]
    assert tokens[0]["last_used_at"] is not None
    assert dt.datetime.fromisoformat(tokens[0]["last_used_at"]) <= dt.datetime.now(dt.UTC)
