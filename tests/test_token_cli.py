"""`govern token create`: the operator recovers a tenant whose owner is locked out."""

import json

import pytest
from click.testing import CliRunner

from govern.cli import main


def _create(monkeypatch, config, *args):
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    result = CliRunner().invoke(main, ["token", "create", *args])
    return result


def _json(result):
    return json.loads(result.stdout[result.stdout.index("{"):])


def _lock_out_owner(tenant):
    for t in tenant.get("/v1/tokens").get_json()["tokens"]:
        assert tenant.delete(f"/v1/tokens/{t['token_id']}").status_code == 204
    assert tenant.get("/v1/members").status_code == 401


@pytest.mark.parametrize("by", ["email", "member_id"])
def test_operator_recovers_a_locked_out_owner(monkeypatch, config, make_tenant, superuser, by):
    tenant = make_tenant("Acme Logistics GmbH")
    _lock_out_owner(tenant)
    member = "OWNER@localhost" if by == "email" else str(tenant.owner_member_id)
    result = _create(monkeypatch, config, "--tenant", str(tenant.tenant_id), "--member", member)
    assert result.exit_code == 0, result.output
    out = _json(result)
    assert out["member_id"] == str(tenant.owner_member_id) and out["role"] == "owner"
    assert tenant.get("/v1/members", token=out["token"]).status_code == 200
    last = superuser.execute("SELECT actor_id, action, details FROM audit_log "
                             "WHERE tenant_id = %s ORDER BY seq DESC LIMIT 1",
                             (tenant.tenant_id,)).fetchone()
    assert last[:2] == ("cli", "token.create") and last[2]["via"] == "operator"
    assert out["token"] not in json.dumps(last[2])


def test_tenant_by_slug_and_member_by_role(monkeypatch, config, make_tenant):
    tenant = make_tenant("Acme Logistics GmbH")
    make_tenant("Other Co")
    result = _create(monkeypatch, config, "--tenant", "acme-logistics-gmbh", "--role", "owner")
    assert result.exit_code == 0, result.output
    assert _json(result)["member_id"] == str(tenant.owner_member_id)
    # a role nobody holds yet gets a member, e.g. for demo tokens
    result = _create(monkeypatch, config, "--tenant", str(tenant.tenant_id), "--role", "auditor")
    out = _json(result)
    assert out["role"] == "auditor"
    assert tenant.get("/v1/audit", token=out["token"]).status_code == 200


def test_refusals(monkeypatch, config, make_tenant):
    tenant = make_tenant("twin")
    make_tenant("twin")
    assert "2 tenants" in _create(monkeypatch, config, "--tenant", "twin", "--role",
                                  "owner").output
    assert "no tenant" in _create(monkeypatch, config, "--tenant", "nope", "--role",
                                  "owner").output
    tid = str(tenant.tenant_id)
    assert _create(monkeypatch, config, "--tenant", tid).exit_code != 0
    assert _create(monkeypatch, config, "--tenant", tid, "--role", "owner", "--member",
                   "x@y").exit_code != 0
    assert "member not found" in _create(monkeypatch, config, "--tenant", tid, "--member",
                                         "ghost@example.com").output
    assert "role must be" in _create(monkeypatch, config, "--tenant", tid, "--role",
                                     "root").output
