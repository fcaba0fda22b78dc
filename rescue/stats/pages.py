"""The statistics page: figures of a period and stations as tables and simple bar
charts (how many were identified, by which channel, how fast), with CSV and Excel
downloads. Same service and permission row as ``/api/stats`` (stats_read)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery
from litestar.response import Template

from rescue import clock
from rescue.cases.tables import LeavingCategory
from rescue.i18n import _, label
from rescue.permissions import Action, allow
from rescue.stats import services
from rescue.stats.controllers import XLSX
from rescue.stats.schemas import Statistics

__all__ = ["StatsPages"]

#: Default period: the last 30 station days, today included.
DEFAULT_DAYS = 30


def _period(
    request: Request[Any, Any, Any], date_from: str, date_to: str, station: str
) -> tuple[dict[str, str], dict[str, str], date, date, list[str] | None]:
    """(typed filters, their errors, first day, last day, stations within those seen)."""
    errors: dict[str, str] = {}
    today = clock.today()
    days: dict[str, date] = {}
    for name, raw, default in (
        ("date_from", date_from, today - timedelta(days=DEFAULT_DAYS - 1)),
        ("date_to", date_to, today),
    ):
        try:
            days[name] = date.fromisoformat(raw.strip()) if raw.strip() else default
        except ValueError:
            errors[name] = _("A date like 2026-11-30.")
            days[name] = default
    if not errors and days["date_to"] < days["date_from"]:
        errors["date_to"] = _("The period ends before it starts.")
        days["date_to"] = days["date_from"]
    visible = request.user.visible_stations()
    asked = [s.strip() for s in station.split(",") if s.strip()]
    stations = visible if not asked else [s for s in asked if visible is None or s in visible]
    typed = {
        "date_from": date_from or days["date_from"].isoformat(),
        "date_to": date_to or days["date_to"].isoformat(),
        "station": station,
    }
    return typed, errors, days["date_from"], days["date_to"], stations


def _bars(counts: dict[str, int]) -> list[tuple[str, int, int]]:
    """(key, count, width in percent of the largest) for a CSS bar chart."""
    top = max(counts.values(), default=0) or 1
    return [(k, v, round(100 * v / top)) for k, v in counts.items()]


class StatsPages(Controller):
    path = "/stats"
    include_in_schema = False

    async def _figures(
        self, request: Request[Any, Any, Any], date_from: str, date_to: str, station: str
    ) -> tuple[dict[str, str], dict[str, str], Statistics]:
        typed, errors, first, last, stations = _period(request, date_from, date_to, station)
        stats = await services.compute(date_from=first, date_to=last, stations=stations)
        return typed, errors, stats

    @get("/", guards=[allow(Action.stats_read)])
    async def index(
        self,
        request: Request[Any, Any, Any],
        date_from: FromQuery[str] = "",
        date_to: FromQuery[str] = "",
        station: FromQuery[str] = "",
    ) -> Template:
        """Figures of the period (default: the last 30 days) for the stations asked
        (comma-separated; default every station the user sees)."""
        typed, errors, stats = await self._figures(request, date_from, date_to, station)
        query = "&".join(f"{k}={v}" for k, v in typed.items() if v)
        return Template(
            template_name="stats/index.html",
            context={
                "stats": stats,
                "filters": typed,
                "errors": errors,
                "rows": services.statistics_rows(stats),
                "channels": _bars(stats.identified_by_channel),
                "channel_labels": services.CHANNEL_LABELS,
                "days": _bars(stats.days_to_identification),
                "leaving": [
                    (label(LeavingCategory(k)), v, w) for k, v, w in _bars(stats.left_by_outcome)
                ],
                "query": query,
            },
            status_code=400 if errors else 200,
        )

    @get("/csv", guards=[allow(Action.stats_read)])
    async def csv(
        self,
        request: Request[Any, Any, Any],
        date_from: FromQuery[str] = "",
        date_to: FromQuery[str] = "",
        station: FromQuery[str] = "",
    ) -> Response[bytes]:
        """The figures as CSV (UTF-8 with BOM, 指标/数值)."""
        _typed, _errors, stats = await self._figures(request, date_from, date_to, station)
        return Response(
            services.statistics_csv(stats),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="statistics.csv"'},
        )

    @get("/xlsx", guards=[allow(Action.stats_read)])
    async def xlsx(
        self,
        request: Request[Any, Any, Any],
        date_from: FromQuery[str] = "",
        date_to: FromQuery[str] = "",
        station: FromQuery[str] = "",
    ) -> Response[bytes]:
        """The figures as an Excel workbook (sheet 统计, 指标/数值)."""
        _typed, _errors, stats = await self._figures(request, date_from, date_to, station)
        return Response(
            services.statistics_xlsx(stats),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="statistics.xlsx"'},
        )
