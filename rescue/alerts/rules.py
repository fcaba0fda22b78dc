"""The deadline rule table and the arithmetic of due dates (pure functions, no I/O).

Each rule has a period, what it counts from, what satisfies it, and its source.
Sources (see docs/workflow.md for what each text says and how sure we are):

- 2015 意见: 民政部·公安部《关于加强生活无着的流浪乞讨人员身份查询和照料安置工作的
  意见》(民发〔2015〕158号): announcement within 24 hours of admission for persons
  not identified by the quick check; DNA collection requested from the police
  within 7 working days of admission; the police collect and compare DNA within
  one month of the request; persons over 10 days in care and unidentified are
  stranded persons (滞留人员) to be cared for and placed.
- Extension filing (备案) beyond 10 days: to our knowledge from the 2003
  《城市生活无着的流浪乞讨人员救助管理办法实施细则》, carried into the
  《救助管理机构工作规程》(民政部 2014); the 规程's wording is not checked.
- The one-month announcement update and the three-month settlement eligibility
  are the service's defaults (from the project's brief); we have not verified them against the
  texts (press summaries of a later national special-action notice mention
  updating announcements for persons stranded over a month). Both are
  configurable per jurisdiction.

Working days follow the Chinese public-holiday calendar including make-up working
days (调休): first a schedule an administrator loaded from the State Council's
annual notice (国务院办公厅关于某年部分节假日安排的通知; ``holiday_schedules``
table, ``PUT /api/calendar/{year}`` or ``rescue calendar load``), then the
maintained ``chinese-calendar`` package (pinned; its data ends with the last
year published before its release), and for a year neither knows, weekends
only: such a deadline is computed and marked ``estimated`` — a request never
fails because a year is missing (issue 12 item 4).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum

import chinese_calendar

from rescue.errors import InvalidInput
from rescue.i18n import _

__all__ = [
    "CHINA_TZ",
    "DEFAULT_RULES",
    "AlertKind",
    "Period",
    "Rule",
    "Unit",
    "WorkCalendar",
    "add_working_days",
    "rules_for",
]

#: China Standard Time (UTC+8, no daylight saving): day boundaries of deadlines.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


class Unit(StrEnum):
    hours = "hours"
    days = "days"  # calendar days, exact (N × 24 h)
    working_days = "working_days"  # Chinese working days, ends at midnight local time
    months = "months"  # calendar months, same clock time (day clamped to month end)


class AlertKind(StrEnum):
    announcement = "announcement"  # first family-search announcement 寻亲公告
    dna_request = "dna_request"  # request DNA collection from the police
    dna_result = "dna_result"  # police DNA result due (per request)
    stranded = "stranded"  # becomes a stranded person 滞留人员
    care_decision = "care_decision"  # care / placement decision for a stranded person
    extension_filing = "extension_filing"  # 延长救助期限备案
    announcement_update = "announcement_update"  # 更新寻亲公告
    settlement_eligible = "settlement_eligible"  # 落户安置 may be proposed


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule: public holidays (rest days, weekends included
    when the notice lists them) and make-up working days (调休上班)."""

    holidays: frozenset[date]
    workdays: frozenset[date]


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are Chinese working days.

    Order of sources: a loaded official schedule for the year (``schedules``),
    else ``chinese-calendar``, else weekends only (``estimated``).
    """

    schedules: dict[int, YearSchedule] = field(default_factory=dict)

    def is_workday(self, day: date) -> tuple[bool, bool]:
        """(working day?, estimated?) — estimated when no official data covers
        ``day``'s year and only weekends are known to be rest days."""
        schedule = self.schedules.get(day.year)
        if schedule is not None:
            if day in schedule.workdays:
                return True, False
            return (day.weekday() < 5 and day not in schedule.holidays), False
        try:
            return bool(chinese_calendar.is_workday(day)), False
        except NotImplementedError:
            return day.weekday() < 5, True

    def known(self, year: int) -> bool:
        """Whether an official schedule (loaded or packaged) covers ``year``."""
        return not self.is_workday(date(year, 1, 1))[1]


#: No loaded schedules: the package, then weekends only.
PACKAGED = WorkCalendar()


def add_working_days(
    start: date, count: int, calendar: WorkCalendar = PACKAGED
) -> tuple[date, bool]:
    """The ``count``-th Chinese working day after ``start`` (``start`` itself not
    counted), and whether it is estimated (a day on the way had no official data).

    Weekends are rest days unless they are make-up working days (调休上班); public
    holidays are rest days. Example: from Fri 2025-09-26, 7 working days end on
    Mon 2025-10-13 (Sun 09-28 and Sat 10-11 are make-up working days, 10-01..10-08
    are National Day / Mid-autumn holidays).
    """
    day, found, estimated = start, 0, False
    while found < count:
        day += timedelta(days=1)
        working, guessed = calendar.is_workday(day)
        estimated = estimated or guessed
        if working:
            found += 1
    return day, estimated


def _add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Period:
    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"7 working_days"`` → Period(7, working_days). Raises InvalidInput."""
        amount, _sep, unit = text.strip().partition(" ")
        try:
            return cls(int(amount), Unit(unit.strip()))
        except ValueError as exc:
            raise InvalidInput(
                _("bad deadline period {text}", text=text),
                accepted=_("'<amount> <unit>', unit one of {units}", units=[u.value for u in Unit]),
            ) from exc

    def after(self, start: datetime, calendar: WorkCalendar = PACKAGED) -> datetime:
        """The deadline: the moment ``start + period``; overdue from then on
        (see :meth:`due`)."""
        return self.due(start, calendar)[0]

    def due(self, start: datetime, calendar: WorkCalendar = PACKAGED) -> tuple[datetime, bool]:
        """(deadline, estimated): the moment ``start + period``, in UTC.

        Hours and days are exact durations; months keep the local clock time;
        working days end at midnight (China time) after the last working day and
        are ``estimated`` when a year on the way has no official schedule.
        """
        local = start.astimezone(CHINA_TZ)
        if self.unit == Unit.hours:
            return (local + timedelta(hours=self.amount)).astimezone(UTC), False
        if self.unit == Unit.days:
            return (local + timedelta(days=self.amount)).astimezone(UTC), False
        if self.unit == Unit.months:
            return _add_months(local, self.amount).astimezone(UTC), False
        last, estimated = add_working_days(local.date(), self.amount, calendar)
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=CHINA_TZ)
        return end.astimezone(UTC), estimated

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}"


@dataclass(frozen=True)
class Rule:
    kind: AlertKind
    period: Period
    counts_from: str
    satisfied_by: str
    source: str


_2015 = "民政部·公安部《关于加强生活无着的流浪乞讨人员身份查询和照料安置工作的意见》(2015)"
_2014 = "《救助管理机构工作规程》(民政部 2014)"

#: National defaults. Override per station with ``DEADLINE_OVERRIDES`` (settings).
DEFAULT_RULES: dict[AlertKind, Rule] = {
    r.kind: r
    for r in [
        Rule(
            AlertKind.announcement,
            Period(24, Unit.hours),
            "admission",
            "an announcement record",
            f"{_2015}: announcement within 24 hours of admission",
        ),
        Rule(
            AlertKind.dna_request,
            Period(7, Unit.working_days),
            "admission",
            "a DNA request record",
            f"{_2015}: DNA collection requested within 7 working days of admission",
        ),
        Rule(
            AlertKind.dna_result,
            Period(1, Unit.months),
            "the DNA request date",
            "the request's result",
            f"{_2015}: police collect and compare DNA within one month of the request",
        ),
        Rule(
            AlertKind.stranded,
            Period(10, Unit.days),
            "admission",
            "the case leaving admitted/searching (stranded, identified or left)",
            f"{_2015}: over 10 days in care and unidentified = 滞留",
        ),
        Rule(
            AlertKind.care_decision,
            Period(10, Unit.days),
            "admission",
            "a care-decision record",
            f"{_2015}: stranded persons are cared for and placed (照料安置)",
        ),
        Rule(
            AlertKind.extension_filing,
            Period(10, Unit.days),
            "admission",
            "an extension-filing record",
            f"2003 实施细则 / {_2014}: assistance over 10 days is filed (备案)",
        ),
        Rule(
            AlertKind.announcement_update,
            Period(1, Unit.months),
            "the latest announcement",
            "a later announcement record",
            "service default: update the announcement monthly (national text not cited; "
            "set per station in DEADLINE_OVERRIDES)",
        ),
        Rule(
            AlertKind.settlement_eligible,
            Period(3, Unit.months),
            "admission (station, hospital and outsourced care all count)",
            "the case becoming settlement_pending or settled, or identified",
            "service default: settlement considered after 3 months in care (2015 意见 / "
            "民发〔2020〕14号 direction; period not cited; set per station in DEADLINE_OVERRIDES)",
        ),
    ]
}


def rules_for(station: str, overrides: dict[str, dict[str, str]]) -> dict[AlertKind, Rule]:
    """The rule table for one station (jurisdiction): defaults with its overrides.

    Raises:
        InvalidInput: an override names an unknown rule or a malformed period.
    """
    table = dict(DEFAULT_RULES)
    for name, text in overrides.get(station, {}).items():
        try:
            kind = AlertKind(name)
        except ValueError as exc:
            raise InvalidInput(
                _("DEADLINE_OVERRIDES names unknown rule {name}", name=name),
                accepted=[k.value for k in AlertKind],
            ) from exc
        table[kind] = replace(table[kind], period=Period.parse(text))
    return table
