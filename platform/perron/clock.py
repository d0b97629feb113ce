"""The wall clock deadlines are compared with, which tests can move.

A deadline that must take effect without anyone acting (a billable module paused when a
payment's grace period ends) is stored as a moment and compared with :func:`now` wherever
it matters (the module guard, navigation, the page cache key). Tests move this clock with
:func:`travel` instead of sleeping; production never moves it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager

_offset = 0.0
"""Seconds added to the system clock (tests only); one value for every thread, because
jobs run on worker threads that do not share the test's context variables."""


def now() -> float:
    """Seconds since the epoch, as :func:`time.time` (plus a test's travel)."""
    return time.time() + _offset


def utcnow() -> dt.datetime:
    return dt.datetime.fromtimestamp(now(), dt.UTC)


@contextmanager
def travel(by: dt.timedelta) -> Iterator[None]:
    """Move the clock forward (or back) by ``by`` for the block (tests)."""
    global _offset
    before = _offset
    _offset = before + by.total_seconds()
    try:
        yield
    finally:
        _offset = before
