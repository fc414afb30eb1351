"""The checks every JSON request body passes at the door, and the mark of the views that take
their clients' native non-JSON bodies instead (form posts, query strings)."""

from __future__ import annotations

import re

from govern.errors import ApiError

MAX_JSON_DEPTH = 64


def non_json_body(view):
    """Mark a view whose body is not JSON (or is read as JSON whatever its label): the
    app's Content-Type and JSON checks pass it by, and the view parses the body itself."""
    view.takes_non_json_body = True
    return view


def takes_non_json(view) -> bool:
    return bool(getattr(view, "takes_non_json_body", False))


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_EMPTY_PAIR = re.compile(rb"\{\}|\[\]")
_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _nul_error() -> ApiError:
    return ApiError(422, "Text may not contain NUL (\\u0000) characters.",
                    details={"body": ["contains a NUL character"]})


def _depth_error() -> ApiError:
    return ApiError(422, f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep.",
                    details={"body": [f"nested deeper than {MAX_JSON_DEPTH}"]})


def check_json_text(data: bytes) -> None:
    """check_json_body on the text of a body that parsed as JSON, without walking the parsed
    values in Python: the same two refusals, found with a few passes in C.

    In valid JSON a NUL can only be the escape \\u0000 inside a string (raw control
    characters are not allowed there), so the escape, not preceded by an escaped backslash,
    is the only form to look for. Nesting is measured on the brackets left once the strings,
    which may contain brackets, are cut out: each pass deletes the innermost empty pairs, so
    after MAX_JSON_DEPTH passes only a container nested deeper is left."""
    if b"\\u0000" in data and _NUL_ESCAPE.search(data):
        raise _nul_error()
    brackets = data.translate(None, _ALL_BUT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_JSON_DEPTH:
        return  # not enough containers to nest too deep
    if b'"' in data:
        if b'\\"' in data:  # an escaped quote: find the strings' ends the slow way
            outside = _JSON_STRING.sub(b"", data)
        else:  # no escaped quotes: every other piece between quotes is a string
            outside = b"".join(data.split(b'"')[::2])
        brackets = outside.translate(None, _ALL_BUT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return
        brackets = _EMPTY_PAIR.sub(b"", brackets)  # one level: sub does not rescan its output
    if brackets:
        raise _depth_error()


def check_json_body(value) -> None:
    """PostgreSQL text cannot hold NUL, and nothing we store needs deep nesting: refuse both
    at the door with a 422 rather than fail later."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                raise _nul_error()
        elif isinstance(v, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _depth_error()
            items = [*v.keys(), *v.values()] if isinstance(v, dict) else v
            stack.extend((item, depth + 1) for item in items)
