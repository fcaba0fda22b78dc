"""The service's clock and the station's calendar.

Every rule about "now" and "today" asks this module, never ``datetime.now`` or
``date.today`` directly, for two reasons:

- **Local dates.** A station's day is the day in its timezone
  (``STATION_TIMEZONE``, default ``Asia/Shanghai``, China Standard Time, UTC+8,
  no daylight saving). Between 00:00 and 08:00 CST, UTC's date is still
  yesterday: "today" computed in UTC refuses actions dated today as "in the
  future" (issue 12 item 5). :func:`today` is the station's date.
- **Tests of timing rules** (login back-off, deadlines, session expiry) must not
  depend on the wall clock or the machine's speed: :func:`frozen` and
  :func:`advance` set the clock of this process.

Stored and answered timestamps are timezone-aware; :func:`now` is in UTC.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "advance",
    "frozen",
    "iso_utc",
    "local",
    "local_date",
    "monotonic",
    "now",
    "start_of_local_day",
    "station_tz",
    "today",
]

_lock = threading.Lock()
#: When set, the frozen "now" of this process (tests only).
_frozen: datetime | None = None
#: Seconds added to the monotonic clock by :func:`advance` (tests only).
_monotonic_offset = 0.0


@lru_cache(maxsize=1)
def station_tz() -> tzinfo:
    """The station's timezone (``STATION_TIMEZONE``; default Asia/Shanghai)."""
    from rescue.settings import get_settings

    return ZoneInfo(get_settings().station_timezone)


def now() -> datetime:
    """The current moment, timezone-aware, in UTC."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def monotonic() -> float:
    """Seconds on a clock that never goes back (for back-off and expiry windows)."""
    import time

    return time.monotonic() + _monotonic_offset


def local(moment: datetime) -> datetime:
    """``moment`` in the station's timezone. A naive value is refused (ValueError):
    a timestamp without its offset is ambiguous by up to 8 hours here."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs its timezone offset")
    return moment.astimezone(station_tz())


def local_date(moment: datetime) -> date:
    """The station's calendar date at ``moment``."""
    return local(moment).date()


def today() -> date:
    """The station's date now (not UTC's)."""
    return local_date(now())


def iso_utc(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with ``Z``: the one convention of timestamps in
    answers (the same text msgspec writes for a UTC datetime), also inside
    timeline event data."""
    return local(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


def start_of_local_day(day: date) -> datetime:
    """00:00 of ``day`` in the station's timezone, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=station_tz())


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Tests: freeze :func:`now` (and so :func:`today`) at ``at`` in this process."""
    global _frozen
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    with _lock:
        previous, _frozen = _frozen, at.astimezone(UTC)
    try:
        yield
    finally:
        with _lock:
            _frozen = previous


def advance(seconds: float) -> None:
    """Tests: move this process's clock forward (the frozen moment, if any, and the
    monotonic clock)."""
    global _frozen, _monotonic_offset
    with _lock:
        _monotonic_offset += seconds
        if _frozen is not None:
            _frozen = _frozen + timedelta(seconds=seconds)
