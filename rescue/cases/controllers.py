"""HTTP routes for cases (受助人员): registration, detail, workflow, timeline."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.params import FromQuery, JSONBody

from rescue.alerts.schemas import AlertOut
from rescue.alerts.services import alerts_for_case
from rescue.cases import services
from rescue.cases.schemas import (
    CaseCreate,
    CaseOut,
    CaseUpdate,
    IdentityOut,
    IdentityUpdate,
    LeavingReport,
    TimelineEvent,
    TransitionOut,
    TransitionRequest,
)
from rescue.cases.tables import CaseStatus
from rescue.duplicates import services as duplicates
from rescue.permissions import Action, Participation, allow
from rescue.schemas import Limit, Offset, Page, PathId


class CaseController(Controller):
    path = "/api/cases"
    tags = ("cases",)

    @post("/", summary="Register a person taken in (入站登记)", guards=[allow(Action.case_write)])
    async def register(
        self, data: JSONBody[CaseCreate], request: Request[Any, Any, Any]
    ) -> CaseOut:
        """Create a case. Answers 201 with the case, its reference and placeholder name.
        The person starts placed in the station (an ``in_station`` placement).

        ``duplicate_warnings`` lists earlier registrations that may be the same person
        (same name with agreeing sex and age; ID number once recorded); the case is
        registered anyway. 400 when ages are inconsistent or a field is malformed.
        """
        out = await services.create_case(data=data, by=request.user)
        out.duplicate_warnings = await duplicates.check_new_case(case_id=out.id)
        return out

    @get(
        "/{case_id:int}",
        summary="One case: photos, current placement, allowed next statuses, alerts",
        guards=[allow(Action.case_read)],
    )
    async def detail(self, case_id: PathId) -> CaseOut:
        """``alerts`` lists the case's due and overdue deadline items, soonest first
        (same items as ``GET /api/cases/{id}/alerts``); ``duplicate_warnings`` the open
        duplicate-intake warnings. 404 if the case does not exist."""
        out = await services.get_case(case_id=case_id)
        out.duplicate_warnings = await duplicates.open_warnings(case_id=case_id)
        return out

    @get(
        "/{case_id:int}/identity",
        summary="The identity found: confirmed name, 身份证号, 户籍地, relatives' contact",
        guards=[allow(Action.case_read, (Participation.destination_station,))],
    )
    async def identity(self, case_id: PathId, request: Request[Any, Any, Any]) -> IdentityOut:
        """The ID number is masked for roles that do not need it (reviewers); every
        read is audited. 404 if the case does not exist."""
        return await services.get_identity(case_id=case_id, by=request.user)

    @patch(
        "/{case_id:int}/identity",
        summary="Record or correct the identity found",
        guards=[allow(Action.identity_write)],
    )
    async def update_identity(
        self,
        case_id: PathId,
        data: JSONBody[IdentityUpdate],
        request: Request[Any, Any, Any],
    ) -> IdentityOut:
        """Each change (ID number masked) goes on the timeline as
        ``identity_updated``. 400 nothing to change or a malformed 身份证号; 404."""
        return await services.update_identity(case_id=case_id, data=data, by=request.user)

    @patch(
        "/{case_id:int}",
        summary="Update date-of-birth estimate, capacity flag, height",
        guards=[allow(Action.case_write)],
    )
    async def update(
        self, case_id: PathId, data: JSONBody[CaseUpdate], request: Request[Any, Any, Any]
    ) -> CaseOut:
        """Changes go on the timeline (``case_updated``). 400 nothing to change; 404."""
        return await services.update_case(case_id=case_id, data=data, by=request.user)

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

    @post(
        "/{case_id:int}/transitions",
        status_code=200,
        summary="Move a case to another status (workflow)",
        guards=[allow(Action.case_transition)],
    )
    async def move(
        self,
        case_id: PathId,
        data: JSONBody[TransitionRequest],
        request: Request[Any, Any, Any],
    ) -> TransitionOut:
        """Body ``{to, reason, data?}``. The allowed moves and their roles are in
        docs/workflow.md. 409 (body ``current``, ``allowed``, and ``requires`` for a
        rule) when the move is not allowed now: e.g. ``identified`` (confirm a
        candidate instead), ``return_planned`` (record a return plan), ``left_self``
        for a minor or a person lacking capacity, closing without a handover record,
        ``settled`` without a welfare-home placement. 403 role; 404 case."""
        return await services.request_transition(case_id=case_id, data=data, by=request.user)

    @get(
        "/{case_id:int}/timeline",
        summary="The case's timeline (who, when, what, why), oldest first",
        guards=[allow(Action.case_read)],
    )
    async def timeline(self, case_id: PathId) -> list[TimelineEvent]:
        """Append-only: events are never edited or deleted. 404 if unknown."""
        return await services.timeline(case_id=case_id)

    @get(
        "/{case_id:int}/alerts",
        summary="The case's due and overdue deadline items, soonest first",
        guards=[allow(Action.alert_read)],
    )
    async def alerts(self, case_id: PathId) -> list[AlertOut]:
        """See docs/workflow.md for the rule table and sources. 404 if unknown."""
        return await alerts_for_case(case_id=case_id)


class ReportController(Controller):
    path = "/api/reports"
    tags = ("cases",)

    @get(
        "/leavings",
        summary="Leavings of a month by MCA 离站方式 category",
        guards=[allow(Action.case_read)],
    )
    async def leavings(
        self, request: Request[Any, Any, Any], month: FromQuery[str]
    ) -> LeavingReport:
        """``month`` ``YYYY-MM`` (station's calendar); only the caller's stations.
        400 malformed month."""
        return await services.leaving_report(month=month, stations=request.user.visible_stations())
