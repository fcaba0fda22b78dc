"""Loading the official holiday schedule as data (issue 12 item 4).

The State Council publishes each year's schedule in late autumn
(国务院办公厅关于某年部分节假日安排的通知). An administrator loads it with
``PUT /api/calendar/{year}`` or ``rescue calendar load FILE``; deadlines use it
at once, without a release. Years without a loaded schedule use the
``chinese-calendar`` package, and years neither knows use weekends only, marked
``estimated`` (rescue.alerts.rules.WorkCalendar).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import chinese_calendar

from rescue import clock
from rescue.alerts.rules import WorkCalendar, YearSchedule
from rescue.alerts.schemas import CalendarYearOut, HolidayScheduleIn
from rescue.alerts.tables import HolidaySchedule
from rescue.errors import InvalidInput
from rescue.i18n import _

__all__ = ["calendar_years", "load_schedule", "work_calendar"]


def _dates(value: Any) -> list[date]:
    raw = json.loads(value) if isinstance(value, str) else value
    return [date.fromisoformat(d) for d in raw]


async def work_calendar() -> WorkCalendar:
    """The calendar deadlines use now: loaded schedules over the package."""
    rows = await HolidaySchedule.select(
        HolidaySchedule.year, HolidaySchedule.holidays, HolidaySchedule.workdays
    )
    return WorkCalendar(
        {
            r["year"]: YearSchedule(
                frozenset(_dates(r["holidays"])), frozenset(_dates(r["workdays"]))
            )
            for r in rows
        }
    )


async def load_schedule(
    *, year: int, data: HolidayScheduleIn, by_user_id: int | None
) -> CalendarYearOut:
    """Store (or replace) ``year``'s official schedule.

    Raises:
        InvalidInput: a date outside ``year``, a day both holiday and working day,
            a make-up working day that is not a Saturday or Sunday, no source, or
            a year out of range (2000..2100).
    """
    if not 2000 <= year <= 2100:
        raise InvalidInput(_("year {year} is out of range", year=year), accepted="2000..2100")
    holidays, workdays = sorted(set(data.holidays)), sorted(set(data.workdays))
    outside = [d for d in (*holidays, *workdays) if d.year != year]
    if outside:
        raise InvalidInput(
            _("dates outside {year}: {dates}", year=year, dates=", ".join(map(str, outside[:5]))),
            accepted=f"dates in {year}",
        )
    both = set(holidays) & set(workdays)
    if both:
        raise InvalidInput(
            _(
                "days both holiday and working day: {dates}",
                dates=", ".join(map(str, sorted(both)[:5])),
            )
        )
    weekdays = [d for d in workdays if d.weekday() < 5]
    if weekdays:
        raise InvalidInput(
            _(
                "make-up working days are weekend days; these are weekdays: {dates}",
                dates=", ".join(map(str, weekdays[:5])),
            ),
            accepted="Saturdays and Sundays declared working days (调休上班)",
        )
    if not data.source.strip():
        raise InvalidInput(
            _("source is required: the notice's title and number"),
            accepted="e.g. 国务院办公厅关于2027年部分节假日安排的通知",
        )
    values: dict[Any, Any] = {
        HolidaySchedule.holidays: [d.isoformat() for d in holidays],
        HolidaySchedule.workdays: [d.isoformat() for d in workdays],
        HolidaySchedule.source: data.source.strip(),
        HolidaySchedule.loaded_by: by_user_id,
        HolidaySchedule.loaded_at: clock.now(),
    }
    async with HolidaySchedule._meta.db.transaction():
        updated = (
            await HolidaySchedule.update(values)
            .where(HolidaySchedule.year == year)
            .returning(HolidaySchedule.id)
        )
        if not updated:
            await HolidaySchedule.insert(HolidaySchedule({HolidaySchedule.year: year, **values}))
    return next(y for y in await calendar_years() if y.year == year)


async def calendar_years() -> list[CalendarYearOut]:
    """Years with official data: loaded schedules and the package's years, and the
    next year if it has none (its deadlines are estimated)."""
    rows = {r["year"]: r for r in await HolidaySchedule.select()}
    packaged = set(range(2004, 2101))
    packaged = {y for y in packaged if WorkCalendar().known(y)}
    this_year = clock.today().year
    years = sorted(set(rows) | packaged | {this_year, this_year + 1})
    out = []
    for y in years:
        row = rows.get(y)
        out.append(
            CalendarYearOut(
                year=y,
                source="loaded" if row else ("package" if y in packaged else "none"),
                estimated=row is None and y not in packaged,
                notice=row["source"] if row else "",
                holidays=_dates(row["holidays"]) if row else [],
                workdays=_dates(row["workdays"]) if row else [],
                loaded_at=row["loaded_at"] if row else None,
            )
        )
    return out


def package_version() -> str:
    """The pinned ``chinese-calendar`` version (for the readiness of next year)."""
    return str(getattr(chinese_calendar, "__version__", ""))
