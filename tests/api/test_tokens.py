"""/v1/tokens: create (shown once), list own, revoke own; admins revoke any."""


def test_create_shows_secret_once(tenant):
    created = tenant.post("/v1/tokens", {"name": "laptop"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["token"].startswith("gv_") and body["name"] == "laptop"
    listed = tenant.get("/v1/tokens").get_json()["tokens"]
    assert len(listed) == 2
    assert all("token" not in t for t in listed)


def test_members_see_only_their_own_tokens(tenant):
    analyst = tenant.member("analyst")
    mine = tenant.get("/v1/tokens", token=analyst["token"]).get_json()["tokens"]
    assert {t["member_id"] for t in mine} == {analyst["member_id"]}
    assert tenant.get("/v1/tokens?all=true", token=analyst["token"]).status_code == 403
    everyone = tenant.get("/v1/tokens?all=true").get_json()["tokens"]
    assert len(everyone) == 2


def test_member_cannot_revoke_someone_elses_token_but_admin_can(tenant):
    analyst = tenant.member("analyst")
    dispatcher = tenant.member("dispatcher")
    analyst_token_id = tenant.get("/v1/tokens", token=analyst["token"]).get_json()["tokens"][0][
        "token_id"]
    assert tenant.delete(f"/v1/tokens/{analyst_token_id}",
                         token=dispatcher["token"]).status_code == 404
    assert tenant.delete(f"/v1/tokens/{analyst_token_id}").status_code == 204
    assert tenant.get("/v1/tokens", token=analyst["token"]).status_code == 401


def test_expiry_validation(tenant):
    assert tenant.post("/v1/tokens", {"expires_at": "2001-01-01T00:00:00Z"}).status_code == 422
    assert tenant.post("/v1/tokens", {"expires_in_days": 0}).status_code == 422
    assert tenant.post("/v1/tokens", {"expires_at": "2030-01-01T00:00:00"}).status_code == 422
    both = tenant.post("/v1/tokens", {"expires_at": "2030-01-01T00:00:00Z", "expires_in_days": 3})
    assert both.status_code == 422


def test_other_tenants_token_is_404(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    b_token = b.get("/v1/tokens").get_json()["tokens"][0]["token_id"]
    assert a.delete(f"/v1/tokens/{b_token}").status_code == 404


def _token_ids(tenant, token):
    return [t["token_id"] for t in tenant.get("/v1/tokens", token=token).get_json()["tokens"]]


def test_an_admin_cannot_revoke_an_owners_tokens(tenant):
    admin = tenant.member("admin")["token"]
    owner_tokens = _token_ids(tenant, tenant.owner_token)
    for token_id in owner_tokens:
        resp = tenant.delete(f"/v1/tokens/{token_id}", token=admin)
        assert resp.status_code == 403, resp.get_json()
        assert resp.get_json()["error"]["details"] == {"member_role": "owner"}
    assert tenant.get("/v1/members").status_code == 200  # the owner still gets in
    # an admin still revokes other members' tokens, and an owner an admin's
    analyst = tenant.member("analyst")["token"]
    assert tenant.delete(f"/v1/tokens/{_token_ids(tenant, analyst)[0]}",
                         token=admin).status_code == 204
    assert tenant.delete(f"/v1/tokens/{_token_ids(tenant, admin)[0]}").status_code == 204
    assert tenant.get("/v1/members", token=admin).status_code == 401


def test_another_owner_may_revoke_an_owners_token(tenant):
    second = tenant.member("admin")
    tenant.patch(f"/v1/members/{second['member_id']}", {"role": "owner"})
    first_owner_token = _token_ids(tenant, tenant.owner_token)[0]
    assert tenant.delete(f"/v1/tokens/{first_owner_token}",
                         token=second["token"]).status_code == 204
