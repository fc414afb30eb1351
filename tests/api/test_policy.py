"""/v1/policy: validated, versioned; every change a new version with who changed what."""

WINDOW = {"days": ["mon", "tue"], "start": "22:00", "end": "06:00"}


def test_new_tenant_has_version_one_with_defaults(tenant):
    body = tenant.get("/v1/policy").get_json()
    assert body["version"] == 1
    assert body["created_by"] == "cli"  # whoever created the tenant (factories: the CLI)
    assert (body["timezone"], body["collection_windows"], body["k_min_subjects"]) == (
        "UTC", [], 5)
    assert body["dp_epsilon_per_query"] is None and body["dp_epsilon_per_day"] is None
    assert body["min_accuracy_m"] == 500


def test_patch_makes_a_new_version_only_on_change_and_keeps_the_rest(tenant):
    resp = tenant.patch("/v1/policy", {"k_min_subjects": 10, "collection_windows": [WINDOW]})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["version"] == 2 and body["k_min_subjects"] == 10
    assert body["collection_windows"] == [WINDOW]
    body = tenant.patch("/v1/policy", {"timezone": "Europe/Berlin"}).get_json()
    assert body["version"] == 3 and body["k_min_subjects"] == 10
    assert tenant.get("/v1/policy").get_json() == body
    assert tenant.patch("/v1/policy", {"k_min_subjects": 10}).get_json()["version"] == 3
    assert tenant.patch("/v1/policy", {}).get_json()["version"] == 3  # no change, no version
    assert len(tenant.get("/v1/policy/versions").get_json()["versions"]) == 3


def test_put_replaces_and_unsent_settings_take_defaults(tenant):
    tenant.patch("/v1/policy", {"k_min_subjects": 9, "min_accuracy_m": 50})
    body = tenant.put("/v1/policy", {"timezone": "Asia/Tokyo"}).get_json()
    assert (body["timezone"], body["k_min_subjects"], body["min_accuracy_m"]) == (
        "Asia/Tokyo", 5, 500)
    latest = tenant.get("/v1/policy/versions").get_json()["versions"][0]
    assert latest["changed"] == ["k_min_subjects", "min_accuracy_m", "timezone"]


def test_versions_grow_newest_first_with_changed_keys_author_and_audit(tenant, superuser):
    admin = tenant.member("admin")
    tenant.patch("/v1/policy", {"k_min_subjects": 8})
    tenant.patch("/v1/policy", {"dp_epsilon_per_query": 0.5, "dp_epsilon_per_day": 2,
                                "min_accuracy_m": 100}, token=admin["token"])
    versions = tenant.get("/v1/policy/versions").get_json()["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["changed"] for v in versions] == [
        ["dp_epsilon_per_day", "dp_epsilon_per_query", "min_accuracy_m"], ["k_min_subjects"], []]
    assert [v["created_by"] for v in versions] == [
        f"member:{admin['member_id']}", f"member:{tenant.owner_member_id}", "cli"]
    assert versions[0]["policy"]["dp_epsilon_per_query"] == 0.5
    assert versions[2]["policy"]["k_min_subjects"] == 5
    rows = superuser.execute(
        "SELECT action, details FROM audit_log WHERE tenant_id = %s AND action = 'policy.update' "
        "ORDER BY seq", (tenant.tenant_id,)).fetchall()
    assert [r[1]["changed"] for r in rows][0] == {"k_min_subjects": {"from": 5, "to": 8}}
    assert len(rows) == 2


def assert_all_refused(tenant, cases):
    """Each (body, detail key) answers 422 naming the key, and writes no version."""
    for body, field in cases:
        resp = tenant.patch("/v1/policy", body)
        assert resp.status_code == 422, (body, resp.get_json())
        error = resp.get_json()["error"]
        assert error["code"] == "validation_failed" and field in error["details"], (body, error)
    assert len(tenant.get("/v1/policy/versions").get_json()["versions"]) == 1


def test_out_of_range_settings_are_422(tenant):
    assert_all_refused(tenant, [
        ({"k_min_subjects": 1}, "k_min_subjects"),
        ({"k_min_subjects": "five"}, "k_min_subjects"),
        ({"min_accuracy_m": 0}, "min_accuracy_m"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"aggregate_retention_days": 0}, "aggregate_retention_days"),
        ({"unknown_setting": 1}, "unknown_setting"),
    ])


def test_dp_settings_go_in_pairs_daily_at_least_one_query_and_both_null_is_off(tenant):
    assert_all_refused(tenant, [
        ({"dp_epsilon_per_query": 0.5}, "dp_epsilon_per_day"),
        ({"dp_epsilon_per_query": 0.5, "dp_epsilon_per_day": None}, "dp_epsilon_per_day"),
        ({"dp_epsilon_per_query": 2, "dp_epsilon_per_day": 1}, "dp_epsilon_per_day"),
        ({"dp_epsilon_per_query": 0, "dp_epsilon_per_day": 1}, "dp_epsilon_per_query"),
    ])
    tenant.patch("/v1/policy", {"dp_epsilon_per_query": 0.5, "dp_epsilon_per_day": 0.5})
    body = tenant.patch("/v1/policy", {"dp_epsilon_per_query": None,
                                       "dp_epsilon_per_day": None}).get_json()
    assert body["dp_epsilon_per_query"] is None and body["dp_epsilon_per_day"] is None
    assert body["version"] == 3


def test_invalid_windows_are_422_naming_the_bad_entry(tenant):
    assert_all_refused(tenant, [
        ({"collection_windows": "always"}, "collection_windows"),
        ({"collection_windows": [{"days": [], "start": "08:00", "end": "18:00"}]},
         "collection_windows"),
        ({"collection_windows": [{"days": ["mon"], "start": "08:00", "end": "08:00"}]},
         "collection_windows"),
        ({"collection_windows": [{"days": ["mon"], "start": "24:00", "end": "08:00"}]},
         "collection_windows"),
    ])
    resp = tenant.patch("/v1/policy", {"collection_windows": [
        WINDOW, {"days": ["mon"], "start": "8:00", "end": "18:00"}]})
    details = resp.get_json()["error"]["details"]["collection_windows"]
    assert "collection_windows[1].start" in details


def test_midnight_end_is_normalised_and_overnight_kept(tenant):
    body = tenant.patch("/v1/policy", {"collection_windows": [
        {"days": ["SAT"], "start": "22:00", "end": "00:00"}, WINDOW]}).get_json()
    assert body["collection_windows"] == [{"days": ["sat"], "start": "22:00", "end": "24:00"},
                                          WINDOW]


def test_roles(tenant):
    for role in ("analyst", "dispatcher", "auditor"):
        token = tenant.token_for(role)
        assert tenant.get("/v1/policy", token=token).status_code == 200
        assert tenant.patch("/v1/policy", {"k_min_subjects": 9},
                            token=token).status_code == 403
        assert tenant.put("/v1/policy", {}, token=token).status_code == 403
    assert tenant.get("/v1/policy/versions", token=tenant.token_for("auditor")).status_code == 200
    assert tenant.get("/v1/policy/versions",
                      token=tenant.token_for("analyst")).status_code == 403
    assert tenant.get("/v1/policy").get_json()["version"] == 1


def test_tenants_have_separate_policies(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    a.patch("/v1/policy", {"k_min_subjects": 20})
    assert b.get("/v1/policy").get_json()["k_min_subjects"] == 5
    assert len(b.get("/v1/policy/versions").get_json()["versions"]) == 1

