"""HTTP routes for statistics (JSON, CSV and Excel)."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery

from rescue.permissions import Action, allow
from rescue.stats import services
from rescue.stats.schemas import Statistics

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _stations(request: Request[Any, Any, Any], asked: list[str] | None) -> list[str] | None:
    """The stations asked for, within those the caller sees (None: all visible)."""
    visible = request.user.visible_stations()
    if not asked:
        return visible
    return [s for s in asked if visible is None or s in visible]


class StatsController(Controller):
    path = "/api/stats"
    tags = ("statistics",)

    @get("/", summary="Figures for a period and stations", guards=[allow(Action.stats_read)])
    async def figures(
        self,
        request: Request[Any, Any, Any],
        date_from: FromQuery[date],
        date_to: FromQuery[date],
        station: FromQuery[list[str] | None] = None,
    ) -> Statistics:
        """``date_from``/``date_to``: station dates, both included; ``station`` may
        repeat (default: every station the caller sees). 400 when the period ends
        before it starts."""
        return await services.compute(
            date_from=date_from, date_to=date_to, stations=_stations(request, station)
        )

    @get("/csv", summary="The same figures as CSV (Chinese)", guards=[allow(Action.stats_read)])
    async def csv(
        self,
        request: Request[Any, Any, Any],
        date_from: FromQuery[date],
        date_to: FromQuery[date],
        station: FromQuery[list[str] | None] = None,
    ) -> Response[bytes]:
        """UTF-8 with BOM, two columns (指标, 数值)."""
        stats = await services.compute(
            date_from=date_from, date_to=date_to, stations=_stations(request, station)
        )
        return Response(
            services.statistics_csv(stats),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="statistics.csv"'},
        )

    @get("/xlsx", summary="The same figures as Excel (Chinese)", guards=[allow(Action.stats_read)])
    async def xlsx(
        self,
        request: Request[Any, Any, Any],
        date_from: FromQuery[date],
        date_to: FromQuery[date],
        station: FromQuery[list[str] | None] = None,
    ) -> Response[bytes]:
        """An .xlsx workbook, sheet 统计 with two columns (指标, 数值)."""
        stats = await services.compute(
            date_from=date_from, date_to=date_to, stations=_stations(request, station)
        )
        return Response(
            services.statistics_xlsx(stats),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="statistics.xlsx"'},
        )
