"""The station's date is China's, not UTC's; tests control the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rescue import clock


def test_today_is_the_station_date_between_midnight_and_8_am_cst() -> None:
    # 2026-12-02 01:30 CST is still 2026-12-01 in UTC.
    with clock.frozen(datetime(2026, 12, 1, 17, 30, tzinfo=UTC)):
        assert clock.today() == date(2026, 12, 2)
        assert clock.now().date() == date(2026, 12, 1)


def test_frozen_and_advance_move_now_and_monotonic() -> None:
    start = clock.monotonic()
    with clock.frozen(datetime(2026, 12, 22, 0, 0, tzinfo=UTC)):
        clock.advance(3600)
        assert clock.now() == datetime(2026, 12, 22, 1, 0, tzinfo=UTC)
    assert clock.monotonic() - start >= 3600


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        clock.local(datetime(2026, 1, 1))
