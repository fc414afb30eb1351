"""/v1/subjects: unique external_ref, IANA time zone, window override, blocking with a reason."""


def test_subject_takes_the_tenant_timezone_by_default(tenant):
    assert tenant.subject()["timezone"] == "UTC"
    tenant.patch("/v1/policy", {"timezone": "Europe/Berlin"})
    created = tenant.subject("emp-2")
    assert created["timezone"] == "Europe/Berlin"
    assert created["on_duty"] is True and created["collection_blocked"] is False
    assert created["collection_windows"] is None


def test_given_timezone_and_windows_are_kept(tenant):
    created = tenant.subject("emp-1", timezone="America/New_York", display_name="Ann",
                             collection_windows=[{"days": ["fri", "mon"], "start": "22:00",
                                                  "end": "06:00"}])
    assert created["timezone"] == "America/New_York"
    assert created["collection_windows"] == [{"days": ["mon", "fri"], "start": "22:00",
                                              "end": "06:00"}]
    got = tenant.get(f"/v1/subjects/{created['subject_id']}").get_json()
    assert got["display_name"] == "Ann" and got["collection_windows"] == \
        created["collection_windows"]


def test_unknown_timezone_or_bad_windows_are_422(tenant):
    for tz in ("Mars/Olympus", "europe/berlin", "localtime", "../etc/passwd", ""):
        resp = tenant.post("/v1/subjects", {"external_ref": "e", "timezone": tz})
        assert resp.status_code == 422, tz
        assert "timezone" in resp.get_json()["error"]["details"]
    resp = tenant.post("/v1/subjects", {"external_ref": "e", "collection_windows": [
        {"days": ["mon", "funday"], "start": "25:00", "end": "08:00"}]})
    assert resp.status_code == 422
    details = resp.get_json()["error"]["details"]
    text = str(details["collection_windows"])
    assert "funday" in text and "25:00" in text


def test_external_ref_is_required_and_unique(tenant):
    assert tenant.post("/v1/subjects", {}).status_code == 422
    tenant.subject("emp-1")
    resp = tenant.post("/v1/subjects", {"external_ref": "emp-1"})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "subject_exists"


def test_blocked_subject_needs_a_reason(tenant):
    for reason in (None, "", "   "):
        body = {"external_ref": "kid", "collection_blocked": True}
        if reason is not None:
            body["blocked_reason"] = reason
        resp = tenant.post("/v1/subjects", body)
        assert resp.status_code == 422, reason
        assert "blocked_reason" in resp.get_json()["error"]["details"]
    created = tenant.subject("kid", collection_blocked=True, blocked_reason="a minor")
    assert created["collection_blocked"] is True and created["blocked_reason"] == "a minor"


def test_blocking_by_patch_needs_a_reason_and_unblocking_clears_it(tenant, superuser):
    sid = tenant.subject()["subject_id"]
    resp = tenant.patch(f"/v1/subjects/{sid}", {"collection_blocked": True})
    assert resp.status_code == 422
    assert "blocked_reason" in resp.get_json()["error"]["details"]
    resp = tenant.patch(f"/v1/subjects/{sid}", {"collection_blocked": True,
                                                "blocked_reason": "a minor"})
    assert resp.status_code == 200 and resp.get_json()["collection_blocked"] is True
    resp = tenant.patch(f"/v1/subjects/{sid}", {"blocked_reason": None})
    assert resp.status_code == 422
    resp = tenant.patch(f"/v1/subjects/{sid}", {"collection_blocked": False})
    assert resp.get_json()["collection_blocked"] is False
    assert resp.get_json()["blocked_reason"] is None
    assert tenant.audit_actions(superuser)[1:] == ["subject.create", "subject.update",
                                                   "subject.update"]


def test_patch_leaves_unsent_fields_alone_and_validates_what_is_sent(tenant):
    sid = tenant.subject(collection_blocked=True, blocked_reason="a minor",
                         timezone="Asia/Tokyo")["subject_id"]
    resp = tenant.patch(f"/v1/subjects/{sid}", {"display_name": "Bo"})
    body = resp.get_json()
    assert body["display_name"] == "Bo" and body["collection_blocked"] is True
    assert body["timezone"] == "Asia/Tokyo"
    assert tenant.patch(f"/v1/subjects/{sid}", {"external_ref": "x"}).status_code == 422
    resp = tenant.patch(f"/v1/subjects/{sid}", {"timezone": "Nowhere/City"})
    assert resp.status_code == 422 and "timezone" in resp.get_json()["error"]["details"]


def test_window_override_can_be_cleared(tenant):
    sid = tenant.subject(collection_windows=[])["subject_id"]
    assert tenant.get(f"/v1/subjects/{sid}").get_json()["collection_windows"] == []
    resp = tenant.patch(f"/v1/subjects/{sid}", {"collection_windows": None})
    assert resp.status_code == 200 and resp.get_json()["collection_windows"] is None


def test_cleared_window_override_is_sql_null_like_a_new_subject(tenant, superuser):
    sid = tenant.subject(collection_windows=[])["subject_id"]
    tenant.patch(f"/v1/subjects/{sid}", {"collection_windows": None})
    row = superuser.execute("SELECT collection_windows IS NULL FROM subjects "
                            "WHERE subject_id = %s", (sid,)).fetchone()
    assert row[0] is True


def test_list_pages_by_id_and_filters_by_external_ref(tenant):
    ids = sorted(tenant.subject(f"emp-{i}")["subject_id"] for i in range(3))
    page = tenant.get("/v1/subjects?limit=2").get_json()
    assert [s["subject_id"] for s in page["subjects"]] == ids[:2]
    assert page["next_after"] == ids[1]
    rest = tenant.get(f"/v1/subjects?limit=2&after={page['next_after']}").get_json()
    assert [s["subject_id"] for s in rest["subjects"]] == ids[2:]
    assert rest["next_after"] is None
    one = tenant.get("/v1/subjects?external_ref=emp-1").get_json()["subjects"]
    assert [s["external_ref"] for s in one] == ["emp-1"]


def test_roles(tenant):
    sid = tenant.subject()["subject_id"]
    for role in ("dispatcher", "auditor"):
        assert tenant.get(f"/v1/subjects/{sid}", token=tenant.token_for(role)).status_code == 200
        assert tenant.post("/v1/subjects", {"external_ref": "x"},
                           token=tenant.token_for(role)).status_code == 403
    analyst = tenant.token_for("analyst")
    assert tenant.get("/v1/subjects", token=analyst).status_code == 403
    assert tenant.patch(f"/v1/subjects/{sid}", {"display_name": "x"},
                        token=analyst).status_code == 403
    assert tenant.post("/v1/subjects", {"external_ref": "y"},
                       token=tenant.token_for("admin")).status_code == 201


def test_other_tenants_subject_is_404(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    sid = b.subject("emp-1")["subject_id"]
    for resp in (a.get(f"/v1/subjects/{sid}"),
                 a.patch(f"/v1/subjects/{sid}", {"display_name": "x"}),
                 a.get(f"/v1/subjects/{sid}/consents"),
                 a.get(f"/v1/subjects/{sid}/consent-state")):
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "not_found"
    assert a.get("/v1/subjects").get_json()["subjects"] == []
    assert a.subject("emp-1")["external_ref"] == "emp-1"  # unique per tenant only

