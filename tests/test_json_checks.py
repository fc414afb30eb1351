"""The body checks on raw JSON text refuse exactly what the walk over parsed values refuses."""

import json
import random

import pytest

from govern.api.bodies import MAX_JSON_DEPTH, check_json_body, check_json_text
from govern.errors import ApiError

PIECES = ["a", "[", "]", "{", "}", "\\", '"', "\x00", "\\u0000", "é", "\n", "u0000", "\\\\"]


def _verdict(fn, arg):
    try:
        fn(arg)
    except ApiError as exc:
        return exc.status, exc.message
    return None


def _text(rng):
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 6)))


def _value(rng, depth):
    kind = rng.random()
    if depth > 0 and kind < 0.45:
        if rng.random() < 0.5:
            return [_value(rng, depth - 1) for _ in range(rng.randrange(0, 3))]
        return {_text(rng): _value(rng, depth - 1) for _ in range(rng.randrange(0, 3))}
    if kind < 0.8:
        return _text(rng)
    return rng.choice([1, 2.5, None, True, -3])


def _nest(value, levels, rng):
    for _ in range(levels):
        value = [value] if rng.random() < 0.5 else {_text(rng): value}
    return value


@pytest.mark.parametrize("seed", range(300))
def test_text_check_agrees_with_the_walk(seed):
    rng = random.Random(seed)
    value = _nest(_value(rng, 4), rng.choice([0, 0, MAX_JSON_DEPTH - 5, MAX_JSON_DEPTH - 1,
                                              MAX_JSON_DEPTH, MAX_JSON_DEPTH + 3]), rng)
    data = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
    walk, text = _verdict(check_json_body, value), _verdict(check_json_text, data)
    if walk is None or text is None:
        assert walk == text, data[:200]
    else:  # with both faults in one body, either refusal is right
        assert walk[0] == text[0] == 422


@pytest.mark.parametrize("body, refused", [
    (b'{"a": "x\\u0000"}', True),
    (b'{"a": "x\\\\u0000"}', False),  # an escaped backslash, then the letters u0000
    (b'{"a": "x\\\\\\u0000"}', True),
    (b'{"a\\u0000": 1}', True),
    (b'["[[[[' + b"[" * 100 + b'"]', False),  # brackets inside a string do not nest
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), True),
    (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
    (b"[" + b"[]," * 200 + b"[]]", False),
    (b'{"a": [{"a": [' * 16 + b"1" + b"]}]}" * 16, False),  # 64 levels, alternating
    (b'{"a": [{"a": [' * 16 + b"[1]" + b"]}]}" * 16, True),  # 65
    (b'{"a": [{"a": [' * 16 + b'{"b": 1}' + b"]}]}" * 16, True),
    (b'{"x": "\\"", "a": [{"a": [' * 16 + b"[1]" + b"]}]}" * 16, True),  # escaped quote
])
def test_text_check_cases(body, refused):
    assert (_verdict(check_json_text, body) is not None) is refused
    assert (_verdict(check_json_body, json.loads(body)) is not None) is refused
