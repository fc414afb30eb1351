"""/v1/members: invite, list, change role, remove; last owner protected; tenants isolated."""


def test_owner_lists_themselves(tenant):
    body = tenant.get("/v1/members").get_json()
    assert len(body["members"]) == 1
    assert body["members"][0]["role"] == "owner"
    assert body["members"][0]["member_id"] == str(tenant.owner_member_id)


def test_invite_returns_token_once_and_it_works(tenant):
    invited = tenant.member("analyst", "ana@example.com")
    assert invited["token"].startswith("gv_")
    assert invited["role"] == "analyst"
    listed = tenant.get("/v1/members").get_json()["members"]
    assert all("token" not in m for m in listed)
    me = tenant.get("/v1/tokens", token=invited["token"])
    assert me.status_code == 200


def test_duplicate_email_is_409(tenant):
    tenant.member("analyst", "dup@example.com")
    resp = tenant.post("/v1/members", {"email": "DUP@example.com", "role": "auditor"})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "member_exists"


def test_invalid_invite_is_422_with_details(tenant):
    resp = tenant.post("/v1/members", {"email": "not-an-email", "role": "boss"})
    assert resp.status_code == 422
    details = resp.get_json()["error"]["details"]
    assert "email" in details and "role" in details


def test_admin_cannot_make_or_touch_owners(tenant):
    admin = tenant.token_for("admin")
    assert tenant.post("/v1/members", {"email": "o@x.io", "role": "owner"},
                       token=admin).status_code == 403
    resp = tenant.patch(f"/v1/members/{tenant.owner_member_id}", {"role": "analyst"}, token=admin)
    assert resp.status_code == 403
    assert tenant.delete(f"/v1/members/{tenant.owner_member_id}", token=admin).status_code == 403


def test_admin_manages_non_owners(tenant):
    admin = tenant.token_for("admin")
    analyst = tenant.member("analyst")
    resp = tenant.patch(f"/v1/members/{analyst['member_id']}", {"role": "dispatcher"}, token=admin)
    assert resp.status_code == 200 and resp.get_json()["role"] == "dispatcher"
    assert tenant.delete(f"/v1/members/{analyst['member_id']}", token=admin).status_code == 204
    assert tenant.get(f"/v1/members/{analyst['member_id']}").status_code == 404


def test_removed_member_token_stops_working(tenant):
    analyst = tenant.member("analyst")
    assert tenant.get("/v1/tokens", token=analyst["token"]).status_code == 200
    tenant.delete(f"/v1/members/{analyst['member_id']}")
    assert tenant.get("/v1/tokens", token=analyst["token"]).status_code == 401


def test_last_owner_cannot_be_removed_or_demoted(tenant):
    resp = tenant.delete(f"/v1/members/{tenant.owner_member_id}")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "last_owner"
    resp = tenant.patch(f"/v1/members/{tenant.owner_member_id}", {"role": "admin"})
    assert resp.status_code == 409


def test_second_owner_allows_removing_the_first(tenant):
    second = tenant.member("owner")
    assert tenant.delete(f"/v1/members/{tenant.owner_member_id}",
                         token=second["token"]).status_code == 204
    assert tenant.delete(f"/v1/members/{second['member_id']}",
                         token=second["token"]).status_code == 409


def test_other_tenants_member_is_404(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    b_owner = b.get("/v1/members").get_json()["members"][0]["member_id"]
    for resp in (
        a.get(f"/v1/members/{b_owner}"),
        a.patch(f"/v1/members/{b_owner}", {"role": "admin"}),
        a.delete(f"/v1/members/{b_owner}"),
    ):
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "not_found"
    assert b.get(f"/v1/members/{b_owner}").status_code == 200


def test_member_changes_are_audited(tenant, superuser):
    analyst = tenant.member("analyst")
    tenant.patch(f"/v1/members/{analyst['member_id']}", {"role": "auditor"})
    tenant.delete(f"/v1/members/{analyst['member_id']}")
    actions = [r[0] for r in superuser.execute(
        "SELECT action FROM audit_log WHERE tenant_id = %s ORDER BY seq", (tenant.tenant_id,))]
    assert actions == ["tenant.create", "member.invite", "member.role_change", "member.remove"]


def test_me_tells_the_tenant_and_role(tenant):
    analyst = tenant.member("analyst", "ann@example.com")
    me = tenant.get("/v1/me", token=analyst["token"]).get_json()
    assert me["role"] == "analyst" and me["email"] == "ann@example.com"
    assert me["tenant_name"] == "acme" and me["tenant_id"] == str(tenant.tenant_id)
