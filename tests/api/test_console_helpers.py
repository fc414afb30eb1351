"""The console's two server-side helpers: its settings (the tile source) and H3 geometry
for drawing a report's cells, both without data and with explicit limits."""

import h3


def test_h3_cells_give_centres_and_hexagons(client):
    cell = h3.latlng_to_cell(52.52, 13.405, 7)
    body = client.get(f"/console/h3?cells={cell},{h3.cell_to_parent(cell, 5)}").get_json()
    lat, lon = h3.cell_to_latlng(cell)
    assert body["cells"][cell]["lat"] == lat and body["cells"][cell]["lon"] == lon
    assert len(body["cells"][cell]["boundary"]) == 6
    assert len(body["cells"]) == 2


def test_h3_cells_refuse_bad_input_with_the_error_body(client):
    for query in ("", "cells=", "cells=nothex", "cells=" + ",".join(
            h3.grid_disk(h3.latlng_to_cell(52.5, 13.4, 8), 8))):  # 217 cells > 200
        resp = client.get(f"/console/h3?{query}")
        assert resp.status_code == 422, query
        assert resp.get_json()["error"]["code"] == "validation_failed"
        assert "cells" in resp.get_json()["error"]["details"]


def test_the_root_points_to_the_console(client):
    browser = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,"
                                                 "application/xml;q=0.9,*/*;q=0.8"})
    assert browser.status_code == 302 and browser.headers["Location"].endswith("/console")
    plain = client.get("/", headers={"Accept": "*/*"})
    assert plain.status_code == 200
    assert plain.get_json()["console"] == "/console" and plain.get_json()["api"] == "/v1"


def test_metrics_name_their_charset_once(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1, content_type
    assert content_type.startswith("text/plain; version=")
