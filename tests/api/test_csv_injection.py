"""CSV exports escape cells a spreadsheet would run as a formula (OWASP's CSV injection)."""

import csv
import datetime as dt
import io

import pytest

from govern.api.csv_export import FORMULA_STARTS, safe_cell
from tests.api.test_travel import report, team  # noqa: F401  (travel's k = 3 team)

DAY = dt.timedelta(days=1)
EVIL = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_every_formula_start_is_escaped(start):
    assert safe_cell(start + "1+1") == "'" + start + "1+1"


def test_plain_text_and_numbers_are_untouched():
    assert [safe_cell(v) for v in ("depot", "a=b", -13.4, 0, None)] == \
        ["depot", "a=b", -13.4, 0, None]


def _rows(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return list(csv.reader(io.StringIO(resp.get_data(as_text=True))))


def test_site_names_in_visits_and_od_csv_are_escaped(team):  # noqa: F811
    tenant, monday = team["tenant"], team["monday"]
    resp = tenant.patch(f"/v1/sites/{team['sites']['depot']}", {"name": EVIL})
    assert resp.status_code == 200, resp.get_json()
    visits = _rows(report(tenant, "visits", monday + DAY, monday + 2 * DAY, format="csv"))
    od = _rows(report(tenant, "od", monday, monday + 7 * DAY, zones="sites", format="csv"))
    cells = [c for rows in (visits, od) for row in rows for c in row]
    assert "'" + EVIL in cells
    assert not any(c.startswith(FORMULA_STARTS) for c in cells), \
        [c for c in cells if c.startswith(FORMULA_STARTS)]


def test_heatmap_csv_keeps_negative_coordinates_as_numbers():
    from govern.api.csv_export import csv_response

    resp = csv_response("x", ["lat", "lon"], [[-33.868, -151.209]])
    assert resp.get_data(as_text=True).splitlines()[1] == "-33.868,-151.209"
