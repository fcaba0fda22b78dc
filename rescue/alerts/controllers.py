"""HTTP route for deadlines and alerts across cases."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromQuery

from rescue.alerts import services
from rescue.alerts.rules import AlertKind
from rescue.alerts.schemas import AlertOut
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
