"""The console's basemap: street tiles from the configured XYZ source (here a tile server the
test runs on 127.0.0.1), with their attribution and exactly their origin in the page's
Content-Security-Policy; the offline basemap when tiles cannot load or are turned off."""

from __future__ import annotations

import re

import pytest

from govern.config import Config
from tests.e2e.harness import Server, TileServer, sign_in

expect = pytest.importorskip("playwright.sync_api").expect

LEAFLET_BLANK = "data:image/gif;base64,R0lGODlhAQABAAD/ACwAAAAAAQABAAACADs="  # Util.emptyImageUrl


def _img_src(csp: str) -> list[str]:
    directive = next(d for d in csp.split(";") if d.strip().startswith("img-src"))
    return directive.split()[1:]


@pytest.fixture(scope="module")
def tiles():
    with TileServer() as server:
        yield server


@pytest.fixture(scope="module")
def tiled_server(database_url, demo, tiles):
    from govern.app import create_app

    app = create_app(Config.from_env({
        "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "RATE_LIMITS": "off",
        "TILE_URL": tiles.template, "TILE_ATTRIBUTION": "Test tiles",
        "TILE_ATTRIBUTION_URL": "https://tiles.example/terms"}))
    with Server(app) as srv:
        yield srv


def test_the_map_shows_the_configured_tiles(tiled_server, tiles, demo, page):
    resp = page.request.get(f"{tiled_server.url}/console")
    assert _img_src(resp.headers["content-security-policy"]) == [
        "'self'", "data:", "blob:", tiles.origin]

    sign_in(page, tiled_server.url, demo["tokens"]["analyst"])
    page.wait_for_selector("#heatmap-map[data-basemap=ready]")
    heatmap = page.locator("#heatmap-map")
    expect(heatmap).to_have_attribute("data-basemap-source", "tiles")
    loaded = heatmap.locator("img.leaflet-tile-loaded")
    expect(loaded.first).to_be_visible()
    # Leaflet blanks a tile it is discarding (zoom) to this 1-pixel GIF before removing it;
    # under load the page can be read in between: that is no tile from another origin. Wait
    # for a loaded tile that is not being discarded before reading them
    srcs = page.wait_for_function(f"""() => {{
        const srcs = [...document.querySelectorAll('#heatmap-map img.leaflet-tile-loaded')]
          .map((i) => i.src).filter((src) => src !== '{LEAFLET_BLANK}');
        return srcs.length ? srcs : null;
    }}""").json_value()  # read in one step: no zoom can blank them between wait and read
    assert srcs and all(src.startswith(tiles.origin + "/") for src in srcs), srcs
    assert tiles.served and all(re.match(r"^/\d+/\d+/\d+\.png$", p) for p in tiles.served)
    # street-level tiles once the map has zoomed to the demo's hexagons (Berlin)
    expect(heatmap.locator("path.hex-cell").first).to_be_visible()
    page.wait_for_function("""() => [...document.querySelectorAll(
        '#heatmap-map img.leaflet-tile-loaded')].some(
        (i) => Number(new URL(i.src).pathname.split('/')[1]) >= 10)""")
    assert max(int(p.split("/")[1]) for p in tiles.served) >= 10
    attribution = heatmap.locator(".leaflet-control-attribution a", has_text="Test tiles")
    expect(attribution).to_have_attribute("href", "https://tiles.example/terms")
    expect(heatmap.locator("path.hex-cell").first).to_be_visible()
    # no offline basemap drawn under the tiles
    expect(heatmap.locator(".leaflet-basemap-pane path")).to_have_count(0)


def test_unreachable_tiles_fall_back_to_the_offline_basemap(server, demo, page):
    """The suite's app keeps the default (OpenStreetMap); the test's browser has no way out
    (conftest aborts every request off 127.0.0.1), as a console without internet."""
    resp = page.request.get(f"{server.url}/console")
    assert _img_src(resp.headers["content-security-policy"])[-1] == (
        "https://tile.openstreetmap.org")
    config = page.request.get(f"{server.url}/console/config.json").json()
    assert config["tiles"]["url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert config["tiles"]["attribution"] == "© OpenStreetMap contributors"

    sign_in(page, server.url, demo["tokens"]["analyst"])
    heatmap = page.locator("#heatmap-map")
    expect(heatmap).to_have_attribute("data-basemap-source", "offline")
    expect(heatmap).to_have_attribute("data-basemap", "ready")
    expect(heatmap.locator(".leaflet-basemap-pane path").first).to_be_attached()
    expect(heatmap.locator(".leaflet-control-attribution")).to_contain_text("Natural Earth")
    expect(heatmap.locator("img.leaflet-tile")).to_have_count(0)
    expect(heatmap.locator("path.hex-cell").first).to_be_visible()


def test_tiles_turned_off_leave_no_other_origin(database_url):
    from govern.app import create_app

    app = create_app(Config.from_env({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                                      "RATE_LIMITS": "off", "TILE_URL": "none"}))
    client = app.test_client()
    assert _img_src(client.get("/console").headers["Content-Security-Policy"]) == [
        "'self'", "data:", "blob:"]
    assert client.get("/console/config.json").get_json() == {"tiles": None}
