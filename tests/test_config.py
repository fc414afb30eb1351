"""Settings are checked when the configuration is read: the console's tile source
(TILE_URL) and the on/off switches."""

import pytest

from govern.config import OSM_TILES, Config


def _tiles(value):
    env = {"DATABASE_URL": "postgresql://x@127.0.0.1/x"}
    if value is not None:
        env["TILE_URL"] = value
    return Config.from_env(env).tile_url


def test_tiles_default_to_openstreetmap_and_can_be_turned_off():
    assert _tiles(None) == OSM_TILES == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert _tiles("none") is None
    assert _tiles("https://tiles.example/a/{z}/{x}/{y}.png?key=k") == (
        "https://tiles.example/a/{z}/{x}/{y}.png?key=k")


@pytest.mark.parametrize("bad", ["ftp://tiles.example/{z}/{x}/{y}.png",
                                 "https://{s}.tile.example/{z}/{x}/{y}.png",
                                 "https://tiles.example/{z}/{x}.png", "tiles.example"])
def test_a_tile_url_that_cannot_work_is_refused(bad):
    with pytest.raises(ValueError, match="TILE_URL"):
        _tiles(bad)


def _config(**env):
    return Config.from_env({"DATABASE_URL": "postgresql://x@127.0.0.1/x", **env})


@pytest.mark.parametrize("name,field", [("RATE_LIMITS", "rate_limits_enabled"),
                                        ("GROUP_COMMIT", "group_commit")])
def test_on_off_switches_read_alike_and_refuse_a_misspelling(name, field):
    default = getattr(_config(), field)
    assert getattr(_config(**{name: ""}), field) is default
    for on in ("on", "1", "true", "yes", " ON "):
        assert getattr(_config(**{name: on}), field) is True
    for off in ("off", "0", "false", "no", "Off"):
        assert getattr(_config(**{name: off}), field) is False
    # a typo must not leave the operator with the opposite of what was meant
    with pytest.raises(ValueError, match=name):
        _config(**{name: "of"})
