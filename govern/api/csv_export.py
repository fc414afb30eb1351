"""CSV downloads: one writer for every export, with spreadsheet formula injection escaped."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from flask import Response

# OWASP's CSV injection rule: a text cell a spreadsheet could read as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """Text that starts like a formula gets a leading apostrophe (shown literally by
    spreadsheets); numbers stay numbers, so a negative coordinate is still a number."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(name: str, header: list[str], rows: Iterable[Iterable],
                 headers: dict[str, str] | None = None) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    resp = Response(out.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f"attachment; filename={name}.csv"
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp
