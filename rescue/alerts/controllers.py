"""HTTP route for deadlines and alerts across cases."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, put
from litestar.params import FromQuery, JSONBody, PathParameter

from rescue.alerts import calendar, services
from rescue.alerts.rules import AlertKind
from rescue.alerts.schemas import AlertOut, CalendarYearOut, HolidayScheduleIn
from rescue.permissions import Action, allow
from rescue.schemas import Limit, Offset, Page


class AlertController(Controller):
    path = "/api/alerts"
    tags = ("deadlines",)

    @get(
        "/",
        summary="Due and overdue deadline items, soonest first",
        guards=[allow(Action.alert_read)],
    )
    async def index(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = 50,
        offset: Offset = 0,
        station: FromQuery[str | None] = None,
        kind: FromQuery[AlertKind | None] = None,
        overdue: FromQuery[bool] = False,
    ) -> Page[AlertOut]:
        """Filters: ``station``, ``kind``, ``overdue=true`` (only items past their
        deadline). Items clear only when the satisfying record exists; see
        docs/workflow.md for the rules and their sources."""
        return await services.list_alerts(
            station=station,
            stations=request.user.visible_stations(),
            kind=kind,
            overdue_only=overdue,
            limit=limit,
            offset=offset,
        )


class CalendarController(Controller):
    path = "/api/calendar"
    tags = ("deadlines",)

    @get(
        "/",
        summary="Years the working-day calendar knows, and where from",
        guards=[allow(Action.alert_read)],
    )
    async def years(self) -> list[CalendarYearOut]:
        """Each year's source: ``loaded`` (an administrator loaded the State
        Council's notice), ``package`` (chinese-calendar) or ``none`` (weekends
        only; deadlines crossing it are ``estimated``)."""
        return await calendar.calendar_years()

    @put(
        "/{year:int}",
        summary="Load a year's official holiday schedule (State Council notice)",
        guards=[allow(Action.calendar_load)],
    )
    async def load(
        self,
        year: Annotated[int, PathParameter(ge=1949, le=2200, description="calendar year")],
        data: JSONBody[HolidayScheduleIn],
        request: Request[Any, Any, Any],
    ) -> CalendarYearOut:
        """Holidays and make-up working days of ``year`` from 国务院办公厅关于某年部分
        节假日安排的通知; replaces a loaded schedule of that year; deadlines use
        it at once. 200; 400 a date outside the year, a weekday as make-up
        working day, a day in both lists, no source."""
        return await calendar.load_schedule(year=year, data=data, by_user_id=request.user.user_id)
