def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_members_list_owner(tenant):
    resp = tenant.get("/v1/members")
    assert resp.status_code == 200, resp.get_json()
    assert [m["role"] for m in resp.get_json()["members"]] == ["owner"]
