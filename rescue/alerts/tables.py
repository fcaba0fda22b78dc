"""Official holiday schedules loaded by an administrator (no release needed)."""

from __future__ import annotations

from piccolo.columns import JSON, Integer, Serial, Text, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class HolidaySchedule(Table, tablename="holiday_schedules"):
    """One year's public holidays and make-up working days (调休上班), as the State
    Council's annual notice (国务院办公厅关于某年部分节假日安排的通知) gives them.
    Overrides the ``chinese-calendar`` package for that year."""

    id: Serial
    year = Integer(unique=True)
    holidays = JSON(default="[]")  # ISO dates, rest days
    workdays = JSON(default="[]")  # ISO dates, make-up working days
    source = Text(default="")  # the notice's title and number
    loaded_by = Integer(null=True, default=None)  # users.id; None = CLI
    loaded_at = Timestamptz(default=TimestamptzNow())
