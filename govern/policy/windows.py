"""Weekly collection windows in an IANA time zone.

Admins write windows as wall-clock rules ("mon-fri 08:00-18:00, Europe/Berlin"), so
every question is answered in the zone's local time. Each occurrence of a window is
turned into a pair of real instants before comparing, which is what keeps DST days
right: a start inside the spring-forward gap begins at the first instant after the gap,
and an ambiguous fall-back time means its first occurrence (fold=0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_WINDOWS = 50
MINUTES_PER_DAY = 1440
# How far next_change looks. Over a week, so every weekly boundary is seen; two weeks, so a
# window that a DST gap swallows this week is still found next week.
HORIZON = timedelta(days=15)

_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2})")
_FIELDS = ("days", "start", "end")
_DAYS_HINT = "mon, tue, wed, thu, fri, sat or sun"


class WindowsInvalid(ValueError):
    """Collection windows a client sent cannot be used; details name each bad field."""

    def __init__(self, message: str, details: dict[str, list[str]]):
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Window:
    """One weekly rule: on each of `days`, from `start` to `end` (minutes since midnight).

    `end` < `start` is an overnight window that ends on the following day.
    """

    days: frozenset[int]  # 0 = Monday ... 6 = Sunday
    start: int  # 0..1439
    end: int  # 1..1440

    def __post_init__(self):
        if not self.days or not all(isinstance(d, int) and 0 <= d <= 6 for d in self.days):
            raise ValueError("Window.days must be a non-empty set of 0..6")
        if not 0 <= self.start < MINUTES_PER_DAY or not 0 < self.end <= MINUTES_PER_DAY:
            raise ValueError("Window.start must be in 0..1439 and Window.end in 1..1440")
        if self.start == self.end:
            raise ValueError("Window.start and Window.end must differ")

    @property
    def overnight(self) -> bool:
        return self.end < self.start


# --------------------------------------------------------------------------- parsing


def _summary(what: str, details: dict[str, list[str]]) -> str:
    """One sentence naming the first problem, so a 422 is useful even without details."""
    key, messages = next(iter(details.items()))
    extra = sum(len(m) for m in details.values()) - 1
    more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
    return f"{what}: {key}: {messages[0]}{more}"


def _show(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 20 else text[:20] + "..."


def _parse_days(raw: object, key: str, problems: dict[str, list[str]]) -> frozenset[int] | None:
    if not isinstance(raw, list):
        problems.setdefault(key, []).append(f"must be a list of day names ({_DAYS_HINT})")
        return None
    if not raw:
        problems.setdefault(key, []).append("must name at least one day")
        return None
    days: set[int] = set()
    ok = True
    for j, name in enumerate(raw):
        day = name.lower() if isinstance(name, str) else None
        if day not in DAY_NAMES:
            problems.setdefault(f"{key}[{j}]", []).append(
                f"'{_show(name)}' is not a day; use {_DAYS_HINT}"
            )
            ok = False
        else:
            days.add(DAY_NAMES.index(day))
    return frozenset(days) if ok else None


def _parse_time(raw: object, key: str, is_end: bool, problems: dict[str, list[str]]) -> int | None:
    m = _TIME_RE.fullmatch(raw) if isinstance(raw, str) else None
    if m is None:
        problems.setdefault(key, []).append(
            f"'{_show(raw)}' is not a time; use HH:MM with two digits each, e.g. 08:30"
        )
        return None
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours == 24 and minutes == 0:
        if is_end:
            return MINUTES_PER_DAY
        problems.setdefault(key, []).append("24:00 is only allowed as an end time")
        return None
    if hours > 23 or minutes > 59:
        upper = "00:00 to 24:00" if is_end else "00:00 to 23:59"
        problems.setdefault(key, []).append(f"'{raw}' is not a valid time; use {upper}")
        return None
    return hours * 60 + minutes


def parse_windows(raw: object, *, field: str = "windows") -> tuple[Window, ...]:
    """Validate windows as clients send them; raise WindowsInvalid listing every problem.

    `field` prefixes the detail keys (e.g. "windows[2].start") so callers nesting the list
    under another name can point at the right place.
    """
    if not isinstance(raw, list):
        details = {field: ["must be a list of windows like "
                           '{"days": ["mon"], "start": "08:00", "end": "18:00"}']}
        raise WindowsInvalid(_summary("invalid collection windows", details), details)
    if len(raw) > MAX_WINDOWS:
        details = {field: [f"at most {MAX_WINDOWS} windows are allowed, got {len(raw)}"]}
        raise WindowsInvalid(_summary("invalid collection windows", details), details)

    problems: dict[str, list[str]] = {}
    windows: list[Window] = []
    for i, item in enumerate(raw):
        key = f"{field}[{i}]"
        if not isinstance(item, dict):
            problems.setdefault(key, []).append("must be an object with days, start and end")
            continue
        for name in item:
            if name not in _FIELDS:
                problems.setdefault(f"{key}.{name}", []).append(
                    "unknown field; a window has only days, start and end"
                )
        for name in _FIELDS:
            if name not in item:
                problems.setdefault(f"{key}.{name}", []).append("is required")
        if any(name not in item for name in _FIELDS):
            continue
        days = _parse_days(item["days"], f"{key}.days", problems)
        start = _parse_time(item["start"], f"{key}.start", False, problems)
        end = _parse_time(item["end"], f"{key}.end", True, problems)
        if days is None or start is None or end is None:
            continue
        if end == 0 and start != 0:
            end = MINUTES_PER_DAY  # "22:00"-"00:00" ends at midnight: same as "24:00"
        if start == end:
            problems.setdefault(f"{key}.end", []).append(
                "must differ from start; for a whole day use start 00:00 and end 24:00"
            )
            continue
        windows.append(Window(days, start, end))
    if problems:
        raise WindowsInvalid(_summary("invalid collection windows", problems), problems)
    return tuple(windows)


def _format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def windows_to_json(windows: Sequence[Window] | None) -> list[dict]:
    """The client shape of `windows`; parse_windows(windows_to_json(w)) == w."""
    return [
        {
            "days": [DAY_NAMES[d] for d in sorted(w.days)],
            "start": _format_minutes(w.start),
            "end": _format_minutes(w.end),
        }
        for w in windows or ()
    ]


# --------------------------------------------------------------------------- time zones


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(name: object) -> str:
    """Return `name` if it is a known IANA zone, else raise ValueError saying why."""
    if not isinstance(name, str) or not name:
        raise ValueError("a time zone is required: an IANA name such as Europe/Berlin")
    bad = ValueError(
        f"'{_show(name)}' is not a known IANA time zone; use a name such as Europe/Berlin "
        "or America/New_York (case-sensitive)"
    )
    if ".." in name or name.startswith("/") or "\\" in name or "\x00" in name:
        raise bad
    if name == "localtime" or name not in _known_zones():  # "localtime" depends on the server
        raise bad
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise bad from None
    return name


@lru_cache(maxsize=256)
def _zone(tz_name: str) -> ZoneInfo:
    return ZoneInfo(validate_timezone(tz_name))


# --------------------------------------------------------------------------- evaluation


def _require_aware(instant: datetime) -> datetime:
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError("instant must be a timezone-aware datetime")
    return instant


def _offset_at(zone: ZoneInfo, ts: int) -> timedelta:
    return datetime.fromtimestamp(ts, zone).utcoffset()


def _resolve(zone: ZoneInfo, local: datetime) -> datetime:
    """The UTC instant of naive wall time `local` in `zone`.

    Ambiguous times take their first occurrence (fold=0). Times in a spring-forward gap
    take the first instant after the gap, i.e. the transition itself.
    """
    utc = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == local:
        return utc
    # In a gap, fold=0 and fold=1 apply the offsets before and after the transition; the
    # transition lies between the two instants. Transitions fall on whole seconds.
    other = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo_ts = math.floor(min(utc, other).timestamp())
    hi_ts = math.ceil(max(utc, other).timestamp())
    before = _offset_at(zone, lo_ts)
    while hi_ts - lo_ts > 1:
        mid = (lo_ts + hi_ts) // 2
        if _offset_at(zone, mid) == before:
            lo_ts = mid
        else:
            hi_ts = mid
    return datetime.fromtimestamp(hi_ts, UTC)


def _occurrences(windows: Sequence[Window], zone: ZoneInfo, first: date, last: date
                 ) -> list[tuple[datetime, datetime]]:
    """[start, end) UTC intervals of every window occurrence starting on local days first..last."""
    out: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        midnight = datetime(day.year, day.month, day.day)
        for w in windows:
            if day.weekday() not in w.days:
                continue
            end = w.end + MINUTES_PER_DAY if w.overnight else w.end
            start_at = _resolve(zone, midnight + timedelta(minutes=w.start))
            end_at = _resolve(zone, midnight + timedelta(minutes=end))
            if start_at < end_at:  # a window lying wholly inside a DST gap does not happen
                out.append((start_at, end_at))
        day += timedelta(days=1)
    return out


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Union of intervals, so that adjacent or overlapping windows show no false boundary."""
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def in_collection_window(windows: Sequence[Window] | None, tz_name: str,
                         instant: datetime) -> bool:
    """Whether `instant` falls in one of `windows` (no windows means no restriction)."""
    if not windows:
        return True
    instant = _require_aware(instant)
    zone = _zone(tz_name)
    today = instant.astimezone(zone).date()
    occurrences = _occurrences(windows, zone, today - timedelta(days=2), today + timedelta(days=1))
    return any(start <= instant < end for start, end in occurrences)


def next_change(windows: Sequence[Window] | None, tz_name: str,
                instant: datetime) -> datetime | None:
    """The first UTC instant after `instant` where in_collection_window flips, or None.

    None means it never flips: no windows, or windows covering the whole week. Devices use
    this to sleep until collection opens or closes instead of polling.
    """
    if not windows:
        return None
    instant = _require_aware(instant)
    zone = _zone(tz_name)
    today = instant.astimezone(zone).date()
    intervals = _merged(
        _occurrences(windows, zone, today - timedelta(days=2), today + timedelta(days=17))
    )
    horizon = instant + HORIZON
    for start, end in intervals:
        if start <= instant < end:
            # Open for the whole horizon means open for good (the rules repeat weekly).
            return end if end <= horizon else None
        if start > instant:
            return start if start <= horizon else None
    return None
