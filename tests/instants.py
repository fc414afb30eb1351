"""Run the suite with the wall clock moved to the instants where date arithmetic breaks.

`make test-instants` (CI runs it after `make test`): for each instant below, the whole suite
runs under libfaketime (Debian's `faketime` package) with the clock set to that instant at
the start of the run and ticking from there, for the tests *and* the PostgreSQL cluster they
start (the offset is inherited by every child process, so Python and the database agree on
"now"). The offset moves monotonic clocks too (libfaketime's sleeps fail with EINVAL when
only the wall clock is moved), which leaves every duration, timeout and deadline as long
as it really is. Each run either passes at its instant or the command fails, naming it.

    python -m tests.instants            # every instant
    python -m tests.instants leap-day   # one, by name
    python -m tests.instants -- -x tests/domain   # extra pytest arguments after --
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time

UTC = dt.UTC

# name: (instant in UTC, time zone for the process)
INSTANTS: dict[str, tuple[dt.datetime, str]] = {
    # the first day of a month that starts on a Monday: last week and last month overlap
    "monday-month-start": (dt.datetime(2027, 3, 1, 0, 0, 30, tzinfo=UTC), "UTC"),
    # half an hour before a new year: day, week, month and year all turn during the run
    "new-years-eve": (dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "UTC"),
    "leap-day": (dt.datetime(2028, 2, 29, 12, 0, tzinfo=UTC), "UTC"),
    # half a minute before Europe/Berlin moves its clocks forward (01:00 UTC), and back
    "berlin-spring-forward": (dt.datetime(2027, 3, 28, 0, 59, 30, tzinfo=UTC), "Europe/Berlin"),
    "berlin-fall-back": (dt.datetime(2027, 10, 31, 0, 59, 30, tzinfo=UTC), "Europe/Berlin"),
    # half a minute before New York springs forward (07:00 UTC)
    "new-york-spring-forward": (dt.datetime(2027, 3, 14, 6, 59, 30, tzinfo=UTC),
                                "America/New_York"),
    # half a minute before a UTC midnight: the day turns while tests run
    "utc-midnight": (dt.datetime(2027, 6, 15, 23, 59, 30, tzinfo=UTC), "UTC"),
}


def libfaketime() -> str:
    """The multi-threaded libfaketime of the Debian package, wherever the architecture puts it."""
    files = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True,
                           check=False).stdout.split()
    found = [f for f in files if f.endswith("/libfaketimeMT.so.1")]
    if not found:
        sys.exit("libfaketime is not installed (apt-get install faketime)")
    return found[0]


def run_at(name: str, pytest_args: list[str]) -> int:
    at, tz = INSTANTS[name]
    offset = round(at.timestamp() - time.time())  # seconds to add to the real clock
    env = {**os.environ, "LD_PRELOAD": libfaketime(), "FAKETIME": f"{offset:+d}",
           "FAKETIME_DONT_RESET": "1", "TZ": tz,
           "GOVERN_TEST_INSTANT": name}
    print(f"== {name}: wall clock at {at.isoformat()} (TZ={tz}), pytest {' '.join(pytest_args)}",
          flush=True)
    started = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], env=env,
                        check=False).returncode
    print(f"== {name}: {'passed' if rc == 0 else f'FAILED (exit {rc})'} in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    return rc


def main(argv: list[str]) -> int:
    names, extra = argv, []
    if "--" in argv:
        i = argv.index("--")
        names, extra = argv[:i], argv[i + 1:]
    for n in names:
        if n not in INSTANTS:
            sys.exit(f"unknown instant {n!r}; known: {', '.join(INSTANTS)}")
    failed = [n for n in names or list(INSTANTS) if run_at(n, extra) != 0]
    if failed:
        print(f"failed at: {', '.join(failed)}", flush=True)
        return 1
    print(f"passed at every instant: {', '.join(names or INSTANTS)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
