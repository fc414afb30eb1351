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
