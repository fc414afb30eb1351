from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from govern.policy.windows import (
    MAX_WINDOWS,
    Window,
    WindowsInvalid,
    in_collection_window,
    next_change,
    parse_windows,
    validate_timezone,
    windows_to_json,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: str, *args, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz), fold=fold)


def win(days, start, end):
    return parse_windows([{"days": days, "start": start, "end": end}])


WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


# --------------------------------------------------------------------------- parsing


def test_parse_and_round_trip():
    raw = [
        {"days": ["MON", "Tue", "wed"], "start": "08:00", "end": "18:30"},
        {"days": ["fri"], "start": "22:00", "end": "06:00"},
        {"days": ["sun"], "start": "00:00", "end": "24:00"},
    ]
    windows = parse_windows(raw)
    assert windows[0] == Window(frozenset({0, 1, 2}), 480, 1110)
    assert windows[1].overnight and windows[1].days == frozenset({4})
    assert windows[2] == Window(frozenset({6}), 0, 1440)
    as_json = windows_to_json(windows)
    assert as_json[0] == {"days": ["mon", "tue", "wed"], "start": "08:00", "end": "18:30"}
    assert parse_windows(as_json) == windows
    assert windows_to_json(None) == []


def test_end_midnight_means_end_of_day():
    (w,) = win(["mon"], "22:00", "00:00")
    assert w == Window(frozenset({0}), 1320, 1440)
    assert windows_to_json([w])[0]["end"] == "24:00"


def test_empty_list_is_valid():
    assert parse_windows([]) == ()


def _details(raw) -> dict:
    with pytest.raises(WindowsInvalid) as exc:
        parse_windows(raw)
    assert exc.value.message == str(exc.value)
    assert exc.value.message.startswith("invalid collection windows: ")
    return exc.value.details


def test_rejects_non_list():
    details = _details({"days": ["mon"], "start": "08:00", "end": "09:00"})
    assert list(details) == ["windows"]
    assert "must be a list" in details["windows"][0]


def test_rejects_too_many_windows():
    raw = [{"days": ["mon"], "start": "08:00", "end": "09:00"}] * (MAX_WINDOWS + 1)
    details = _details(raw)
    assert details == {"windows": [f"at most {MAX_WINDOWS} windows are allowed, got 51"]}
    assert len(parse_windows(raw[:MAX_WINDOWS])) == MAX_WINDOWS


def test_rejects_bad_day_name():
    details = _details([{"days": ["mon", "funday"], "start": "08:00", "end": "09:00"}])
    assert list(details) == ["windows[0].days[1]"]
    assert "'funday' is not a day" in details["windows[0].days[1]"][0]


@pytest.mark.parametrize("days", [[], "mon", None, [1]])
def test_rejects_bad_days(days):
    details = _details([{"days": days, "start": "08:00", "end": "09:00"}])
    assert any(key.startswith("windows[0].days") for key in details)


@pytest.mark.parametrize("value", ["25:00", "7:5", "08:60", "8:00", "0800", "", None, 800,
                                   "08:00\n", "０８:００"])
def test_rejects_bad_times(value):
    details = _details([{"days": ["mon"], "start": value, "end": "09:00"},
                        {"days": ["mon"], "start": "08:00", "end": value}])
    assert set(details) == {"windows[0].start", "windows[1].end"}


def test_time_messages_are_specific():
    details = _details([{"days": ["mon"], "start": "25:00", "end": "7:5"}])
    assert details["windows[0].start"] == ["'25:00' is not a valid time; use 00:00 to 23:59"]
    assert "HH:MM" in details["windows[0].end"][0]


def test_start_cannot_be_24():
    details = _details([{"days": ["mon"], "start": "24:00", "end": "06:00"}])
    assert details == {"windows[0].start": ["24:00 is only allowed as an end time"]}


@pytest.mark.parametrize("start,end", [("08:00", "08:00"), ("00:00", "00:00")])
def test_rejects_start_equal_end(start, end):
    details = _details([{"days": ["mon"], "start": start, "end": end}])
    assert list(details) == ["windows[0].end"]
    assert "00:00 and end 24:00" in details["windows[0].end"][0]


def test_rejects_missing_and_unknown_keys():
    details = _details([{"days": ["mon"], "start": "08:00"},
                        "08:00-09:00",
                        {"days": ["mon"], "start": "08:00", "end": "09:00", "tz": "UTC"}])
    assert details == {
        "windows[0].end": ["is required"],
        "windows[1]": ["must be an object with days, start and end"],
        "windows[2].tz": ["unknown field; a window has only days, start and end"],
    }


def test_reports_every_problem_and_custom_field():
    with pytest.raises(WindowsInvalid) as exc:
        parse_windows([{"days": ["xx"], "start": "1:00", "end": "09:00"}], field="hours")
    assert set(exc.value.details) == {"hours[0].days[0]", "hours[0].start"}
    assert "(and 1 more problem)" in exc.value.message


# --------------------------------------------------------------------------- time zones


def test_validate_timezone():
    assert validate_timezone("Europe/Berlin") == "Europe/Berlin"
    assert validate_timezone("UTC") == "UTC"


@pytest.mark.parametrize("name", ["", None, 5, "Mars/Olympus", "europe/berlin", "Europe",
                                  "Europe/", "../etc/passwd", "/etc/localtime",
                                  "Europe/../Europe/Berlin", " Europe/Berlin", "localtime"])
def test_validate_timezone_rejects(name):
    with pytest.raises(ValueError) as exc:
        validate_timezone(name)
    assert "time zone" in str(exc.value)


def test_unknown_zone_in_evaluation():
    with pytest.raises(ValueError):
        in_collection_window(win(["mon"], "08:00", "09:00"), "Nowhere/Land", utc(2026, 1, 5))


def test_naive_instant_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        in_collection_window(win(["mon"], "08:00", "09:00"), BERLIN, datetime(2026, 1, 5, 8))


# --------------------------------------------------------------------------- evaluation


def test_no_windows_means_always():
    for windows in (None, ()):
        assert in_collection_window(windows, BERLIN, utc(2026, 1, 5, 3))
        assert next_change(windows, BERLIN, utc(2026, 1, 5, 3)) is None


def test_simple_weekday_window():
    windows = win(WEEKDAYS, "08:00", "18:00")
    # Monday 2026-01-05, Berlin is UTC+1 in winter.
    assert not in_collection_window(windows, BERLIN, utc(2026, 1, 5, 6, 59, 59))
    assert in_collection_window(windows, BERLIN, utc(2026, 1, 5, 7, 0))
    assert in_collection_window(windows, BERLIN, utc(2026, 1, 5, 16, 59, 59))
    assert not in_collection_window(windows, BERLIN, utc(2026, 1, 5, 17, 0))
    assert not in_collection_window(windows, BERLIN, local(BERLIN, 2026, 1, 10, 12))  # Saturday
    # Any offset works: 12:00 at UTC+5 is 08:00 in Berlin.
    plus5 = timezone(timedelta(hours=5))
    assert in_collection_window(windows, BERLIN, datetime(2026, 1, 5, 12, 0, tzinfo=plus5))
    assert not in_collection_window(windows, BERLIN, datetime(2026, 1, 5, 11, 59, tzinfo=plus5))


def test_next_change_open_and_closed():
    windows = win(WEEKDAYS, "08:00", "18:00")
    assert next_change(windows, BERLIN, utc(2026, 1, 5, 6)) == utc(2026, 1, 5, 7)
    assert next_change(windows, BERLIN, utc(2026, 1, 5, 7)) == utc(2026, 1, 5, 17)  # strictly after
    assert next_change(windows, BERLIN, utc(2026, 1, 5, 12)) == utc(2026, 1, 5, 17)
    # Friday evening: closed until Monday morning.
    assert next_change(windows, BERLIN, utc(2026, 1, 9, 17)) == utc(2026, 1, 12, 7)
    result = next_change(windows, BERLIN, local(BERLIN, 2026, 1, 10, 12))
    assert result == utc(2026, 1, 12, 7) and result.utcoffset() == timedelta(0)


def test_overnight_window():
    windows = win(["fri"], "22:00", "06:00")
    tz = BERLIN
    assert not in_collection_window(windows, tz, local(tz, 2026, 1, 9, 21, 59))
    assert in_collection_window(windows, tz, local(tz, 2026, 1, 9, 22, 0))
    assert in_collection_window(windows, tz, local(tz, 2026, 1, 10, 0, 0))
    assert in_collection_window(windows, tz, local(tz, 2026, 1, 10, 5, 59))
    assert not in_collection_window(windows, tz, local(tz, 2026, 1, 10, 6, 0))
    # Thursday night is not Friday night.
    assert not in_collection_window(windows, tz, local(tz, 2026, 1, 8, 23, 0))
    assert not in_collection_window(windows, tz, local(tz, 2026, 1, 9, 3, 0))
    assert next_change(windows, tz, local(tz, 2026, 1, 9, 23)) == local(tz, 2026, 1, 10, 6)
    assert next_change(windows, tz, local(tz, 2026, 1, 10, 6)) == local(tz, 2026, 1, 16, 22)


def test_overnight_window_wraps_sunday_to_monday():
    windows = win(["sun"], "22:00", "06:00")
    tz = BERLIN
    assert in_collection_window(windows, tz, local(tz, 2026, 1, 11, 23, 0))  # Sunday
    assert in_collection_window(windows, tz, local(tz, 2026, 1, 12, 3, 0))  # Monday
    assert not in_collection_window(windows, tz, local(tz, 2026, 1, 12, 6, 0))
    assert not in_collection_window(windows, tz, local(tz, 2026, 1, 11, 3, 0))  # Sun morning
    assert not in_collection_window(windows, tz, local(tz, 2026, 1, 10, 23, 0))  # Saturday
    assert next_change(windows, tz, local(tz, 2026, 1, 11, 23)) == local(tz, 2026, 1, 12, 6)


def test_adjacent_windows_do_not_report_false_boundary():
    windows = parse_windows([
        {"days": ["mon"], "start": "22:00", "end": "24:00"},
        {"days": ["tue"], "start": "00:00", "end": "06:00"},
        {"days": ["tue"], "start": "05:00", "end": "07:00"},
    ])
    tz = BERLIN
    assert next_change(windows, tz, local(tz, 2026, 1, 5, 23)) == local(tz, 2026, 1, 6, 7)


def test_whole_week_never_changes():
    windows = win(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "24:00")
    for instant in (utc(2026, 1, 5, 3), utc(2026, 3, 28, 12), utc(2026, 10, 24, 23, 30)):
        assert in_collection_window(windows, BERLIN, instant)
        assert next_change(windows, BERLIN, instant) is None
    overnight_every_day = parse_windows([
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "12:00",
         "end": "06:00"},
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "06:00",
         "end": "12:00"},
    ])
    assert next_change(overnight_every_day, NEW_YORK, utc(2026, 3, 8, 6)) is None


# --------------------------------------------------------------------------- DST


def test_spring_forward_berlin_gap_start_moves_to_transition():
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 does not exist.
    windows = win(["sun"], "02:30", "04:00")
    assert not in_collection_window(windows, BERLIN, utc(2026, 3, 29, 0, 59, 59))
    assert in_collection_window(windows, BERLIN, utc(2026, 3, 29, 1, 0))  # 03:00 CEST
    assert in_collection_window(windows, BERLIN, utc(2026, 3, 29, 1, 59))
    assert not in_collection_window(windows, BERLIN, utc(2026, 3, 29, 2, 0))  # 04:00 CEST
    assert next_change(windows, BERLIN, utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 1)
    assert next_change(windows, BERLIN, utc(2026, 3, 29, 1)) == utc(2026, 3, 29, 2)
    # A week earlier the same window is a normal 1.5 hours in CET.
    assert next_change(windows, BERLIN, utc(2026, 3, 22, 0)) == utc(2026, 3, 22, 1, 30)


def test_spring_forward_window_inside_gap_is_skipped():
    windows = win(["sun"], "02:10", "02:50")
    # Skipped on 2026-03-29; next occurrence is 2026-04-05 02:10 CEST = 00:10 UTC.
    assert next_change(windows, BERLIN, utc(2026, 3, 28, 0)) == utc(2026, 4, 5, 0, 10)
    assert not in_collection_window(windows, BERLIN, utc(2026, 3, 29, 1, 0))


def test_spring_forward_daily_window_keeps_wall_clock():
    windows = win(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "08:00", "18:00")
    # Sat 18:00 CET = 17:00 UTC; Sun 08:00 CEST = 06:00 UTC.
    assert next_change(windows, BERLIN, utc(2026, 3, 28, 17)) == utc(2026, 3, 29, 6)
    assert next_change(windows, BERLIN, utc(2026, 3, 29, 6)) == utc(2026, 3, 29, 16)


def test_spring_forward_overnight_window_is_shorter():
    windows = win(["sat"], "22:00", "06:00")  # Sat 21:00 UTC to Sun 04:00 UTC: 7 hours
    assert next_change(windows, BERLIN, utc(2026, 3, 28, 21)) == utc(2026, 3, 29, 4)
    assert in_collection_window(windows, BERLIN, utc(2026, 3, 29, 3, 59))
    assert not in_collection_window(windows, BERLIN, utc(2026, 3, 29, 4, 0))


def test_fall_back_berlin_ambiguous_start_uses_first_occurrence():
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; 02:00-03:00 happens twice.
    windows = win(["sun"], "02:30", "05:00")
    assert not in_collection_window(windows, BERLIN, utc(2026, 10, 25, 0, 29))
    assert in_collection_window(windows, BERLIN, utc(2026, 10, 25, 0, 30))  # first 02:30
    assert in_collection_window(windows, BERLIN, utc(2026, 10, 25, 1, 0))  # second 02:00
    assert in_collection_window(windows, BERLIN, local(BERLIN, 2026, 10, 25, 2, 15, fold=1))
    assert next_change(windows, BERLIN, utc(2026, 10, 24, 22)) == utc(2026, 10, 25, 0, 30)
    assert next_change(windows, BERLIN, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 4)


def test_fall_back_berlin_ambiguous_end_uses_first_occurrence():
    windows = win(["sun"], "01:00", "02:30")  # 23:00 UTC Sat to 00:30 UTC Sun
    assert in_collection_window(windows, BERLIN, utc(2026, 10, 25, 0, 29))
    assert not in_collection_window(windows, BERLIN, utc(2026, 10, 25, 0, 30))
    # The second 02:15 (CET) is after the window closed.
    assert not in_collection_window(windows, BERLIN, local(BERLIN, 2026, 10, 25, 2, 15, fold=1))
    assert next_change(windows, BERLIN, utc(2026, 10, 24, 23)) == utc(2026, 10, 25, 0, 30)


def test_fall_back_berlin_whole_day_is_25_hours():
    windows = win(["sun"], "00:00", "24:00")
    assert next_change(windows, BERLIN, utc(2026, 10, 24, 12)) == utc(2026, 10, 24, 22)
    assert next_change(windows, BERLIN, utc(2026, 10, 24, 22)) == utc(2026, 10, 25, 23)


def test_new_york_window_with_utc_instants():
    windows = win(WEEKDAYS, "09:00", "17:00")
    # Friday 2026-03-06 (EST, UTC-5): 09:00 is 14:00 UTC.
    assert not in_collection_window(windows, NEW_YORK, utc(2026, 3, 6, 13, 30))
    assert in_collection_window(windows, NEW_YORK, utc(2026, 3, 6, 14, 0))
    assert not in_collection_window(windows, NEW_YORK, utc(2026, 3, 6, 22, 0))
    # DST starts Sunday 2026-03-08; Monday 09:00 EDT (UTC-4) is 13:00 UTC.
    assert next_change(windows, NEW_YORK, utc(2026, 3, 6, 22)) == utc(2026, 3, 9, 13)
    assert in_collection_window(windows, NEW_YORK, utc(2026, 3, 9, 13, 30))
    assert next_change(windows, NEW_YORK, utc(2026, 3, 9, 13)) == utc(2026, 3, 9, 21)
    # Late UTC evening is still the same local weekday: Fri 16:30 EST = Fri 21:30 UTC.
    assert in_collection_window(windows, NEW_YORK, utc(2026, 3, 6, 21, 30))
    # Saturday 01:00 UTC is Friday 20:00 in New York: closed, opens Monday.
    assert next_change(windows, NEW_YORK, utc(2026, 3, 7, 1)) == utc(2026, 3, 9, 13)


def test_new_york_dst_gap_and_fold():
    # 2026-03-08 02:00 EST -> 03:00 EDT at 07:00 UTC; 2026-11-01 02:00 EDT -> 01:00 EST at
    # 06:00 UTC.
    gap = win(["sun"], "02:00", "03:30")
    assert next_change(gap, NEW_YORK, utc(2026, 3, 8, 0)) == utc(2026, 3, 8, 7)
    assert next_change(gap, NEW_YORK, utc(2026, 3, 8, 7)) == utc(2026, 3, 8, 7, 30)
    fold = win(["sun"], "01:30", "02:00")  # 01:30 EDT (05:30 UTC) to 02:00 EST (07:00 UTC)
    assert next_change(fold, NEW_YORK, utc(2026, 11, 1, 0)) == utc(2026, 11, 1, 5, 30)
    assert next_change(fold, NEW_YORK, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 7)
    assert in_collection_window(fold, NEW_YORK, local(NEW_YORK, 2026, 11, 1, 1, 10, fold=1))


def test_next_change_agrees_with_in_collection_window():
    windows = parse_windows([
        {"days": WEEKDAYS, "start": "07:30", "end": "12:00"},
        {"days": WEEKDAYS, "start": "13:00", "end": "19:00"},
        {"days": ["sat", "sun"], "start": "23:00", "end": "02:30"},
        {"days": ["sun"], "start": "00:00", "end": "00:30"},
    ])
    # Spans both DST changes in both zones, and Havana, whose clocks change at midnight.
    spans = [(utc(2026, 3, 1), utc(2026, 4, 5)), (utc(2026, 10, 20), utc(2026, 11, 10))]
    for tz in (BERLIN, NEW_YORK, "America/Havana"):
        for instant, end in spans:
            while instant < end:
                change = next_change(windows, tz, instant)
                state = in_collection_window(windows, tz, instant)
                assert change is not None and change > instant
                assert in_collection_window(windows, tz, change) != state
                assert in_collection_window(windows, tz, change - timedelta(seconds=1)) == state
                instant = change
