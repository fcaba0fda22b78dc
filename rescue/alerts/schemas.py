"""Response bodies for deadlines and alerts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from rescue.alerts.rules import AlertKind


class AlertOut(msgspec.Struct):
    """One due or overdue item of a case.

    ``due_at`` is the deadline (ISO 8601, UTC like every timestamp in answers);
    ``overdue`` is true from that moment until the satisfying record exists.
    ``subject_id`` names the record the item is about (the DNA request for
    ``dna_result``). ``estimated``: a working-day deadline crossing a year with no
    official holiday schedule, computed with weekends only.
    """

    kind: AlertKind
    case_id: int
    case_reference: str
    station: str
    due_at: datetime
    overdue: bool
    period: str
    counts_from: str
    satisfied_by: str
    source: str
    subject_id: int | None = None
    estimated: bool = False
    #: Fell due before the case was entered into this service (历史补录: a person
    #: admitted years ago): not applicable now, never ``overdue``, kept off the
    #: alert list and shown on the case with ``historic_reason``.
    historic: bool = False
    historic_reason: str = ""


class HolidayScheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    """A year's schedule from the State Council's notice: ``holidays`` (rest days,
    ISO dates), ``workdays`` (make-up working days, weekend dates declared working
    days, 调休上班), ``source`` (the notice's title and number)."""

    holidays: Annotated[list[date], msgspec.Meta(max_length=366)]
    workdays: Annotated[list[date], msgspec.Meta(max_length=120)]
    source: Annotated[str, msgspec.Meta(max_length=500)]


class CalendarYearOut(msgspec.Struct):
    """What the working-day calendar knows of ``year``: ``source`` loaded (an
    administrator loaded the notice), package (chinese-calendar) or none
    (weekends only, deadlines ``estimated``)."""

    year: int
    source: str
    estimated: bool
    notice: str
    holidays: list[date]
    workdays: list[date]
    loaded_at: datetime | None
