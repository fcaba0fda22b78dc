"""HTTP routes for cases (受助人员)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from rescue.cases import services
from rescue.cases.schemas import CaseCreate, CaseOut
from rescue.cases.tables import CaseStatus
from rescue.permissions import Action, allow
from rescue.schemas import Limit, Offset, Page


class CaseController(Controller):
    path = "/api/cases"
    tags = ("cases",)

    @post("/", summary="Register a person taken in (入站登记)", guards=[allow(Action.case_write)])
    async def register(
        self, data: JSONBody[CaseCreate], request: Request[Any, Any, Any]
    ) -> CaseOut:
        """Create a case. Answers 201 with the case, its reference and placeholder name.

        400 when ages are inconsistent or a field is malformed.
        """
        return await services.create_case(data=data, by=request.user)

    @get("/{case_id:int}", summary="One case with its photos", guards=[allow(Action.case_read)])
    async def detail(self, case_id: FromPath[int]) -> CaseOut:
        """404 if the case does not exist."""
        return await services.get_case(case_id=case_id)

    @get("/", summary="Cases, newest first (paged)", guards=[allow(Action.case_read)])
    async def index(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[CaseStatus | None] = None,
    ) -> Page[CaseOut]:
        """Only cases of the stations the caller sees (docs/privacy.md)."""
        return await services.list_cases(
            limit=limit,
            offset=offset,
            status=status.value if status else None,
            stations=request.user.visible_stations(),
        )
