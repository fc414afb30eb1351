"""Moves this Python process's wall clock when `make test-instants` asks (see
tests/instants.py): every Python process of the run — pytest, the gunicorn it starts, the
CLI it calls — imports this at start-up through PYTHONPATH and travels by the same offset.

time-machine moves the wall clock only (datetime.now, time.time, ...); monotonic clocks,
sleeps and timed waits stay real, which libfaketime cannot offer Python 3.11 (its timed
lock waits hang, or its sleeps fail with EINVAL)."""

import os
import time

_offset = os.environ.get("GOVERN_TEST_CLOCK_OFFSET")
if _offset:
    import time_machine

    _TRAVELLER = time_machine.travel(time.time() + float(_offset), tick=True)
    _TRAVELLER.start()
    time.time()  # time-machine starts ticking at the first reading: make it now, not later
