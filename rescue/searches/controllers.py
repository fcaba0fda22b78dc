"""HTTP routes for identity-search actions (身份查询)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery, JSONBody

from rescue.permissions import Action, allow
from rescue.schemas import PathId
from rescue.searches import services
from rescue.searches.schemas import (
    AnnouncementCreate,
    DnaRequestCreate,
    DnaResultCreate,
    FilingCreate,
    InterviewCreate,
    PoliceCheckCreate,
    SearchActionOut,
    VoidRequest,
)
from rescue.searches.tables import SearchKind


class SearchController(Controller):
    path = "/api"
    tags = ("identity search",)

    @post(
        "/cases/{case_id:int}/announcements",
        summary="Record a family-search announcement (寻亲公告)",
        guards=[allow(Action.search_write)],
    )
    async def announcement(
        self,
        case_id: PathId,
        data: JSONBody[AnnouncementCreate],
        request: Request[Any, Any, Any],
    ) -> SearchActionOut:
        """Channel: 全国救助寻亲网, 头条, newspaper, tv, other. 201; 400; 404 case."""
        return await services.record_announcement(case_id=case_id, data=data, by=request.user)

    @post(
        "/cases/{case_id:int}/dna-requests",
        summary="Record a DNA request to the police",
        guards=[allow(Action.search_write)],
    )
    async def dna_request(
        self,
        case_id: PathId,
        data: JSONBody[DnaRequestCreate],
        request: Request[Any, Any, Any],
    ) -> SearchActionOut:
        """201; 400 future date; 404 case."""
        return await services.record_dna_request(case_id=case_id, data=data, by=request.user)

    @post(
        "/search-actions/{action_id:int}/void",
        status_code=200,
        summary="Void a wrong search action (作废) with a reason",
        guards=[allow(Action.search_write)],
    )
    async def void(
        self,
        action_id: PathId,
        data: JSONBody[VoidRequest],
        request: Request[Any, Any, Any],
    ) -> SearchActionOut:
        """The entry stays, marked voided, and satisfies no deadline; record the
        right one anew. 409 already voided; 400 bad ``replaced_by``; 404."""
        return await services.void_action(action_id=action_id, data=data, by=request.user)

    @post(
        "/dna-requests/{action_id:int}/result",
        status_code=200,
        summary="Record the police's DNA result",
        guards=[allow(Action.police_record)],
    )
    async def dna_result(
        self,
        action_id: PathId,
        data: JSONBody[DnaResultCreate],
        request: Request[Any, Any, Any],
    ) -> SearchActionOut:
        """Police liaison or staff. 409 result already recorded; 400; 404 request."""
        return await services.record_dna_result(action_id=action_id, data=data, by=request.user)

    @post(
        "/cases/{case_id:int}/police-checks",
        summary="Record a police fingerprint or face-comparison check",
        guards=[allow(Action.police_record)],
    )
    async def police_check(
        self,
        case_id: PathId,
        data: JSONBody[PoliceCheckCreate],
        request: Request[Any, Any, Any],
    ) -> SearchActionOut:
        """Police liaison or staff. 201; 400; 404 case."""
        return await services.record_police_check(case_id=case_id, data=data, by=request.user)

    @post(
        "/cases/{case_id:int}/interviews",
        summary="Record an interview and its clues",
        guards=[allow(Action.search_write)],
    )
    async def interview(
        self,
        case_id: PathId,
        data: JSONBody[InterviewCreate],
        request: Request[Any, Any, Any],
    ) -> SearchActionOut:
        """Clues: dialect, place names, relatives' names. 201; 400; 404 case."""
        return await services.record_interview(case_id=case_id, data=data, by=request.user)

    @post(
        "/cases/{case_id:int}/filings",
        summary="Record a stranded person's care decision or extension filing (备案)",
        guards=[allow(Action.search_write)],
    )
    async def filing(
        self,
        case_id: PathId,
        data: JSONBody[FilingCreate],
        request: Request[Any, Any, Any],
    ) -> SearchActionOut:
        """``kind``: care_decision or extension_filing. 201; 400; 404 case."""
        return await services.record_filing(case_id=case_id, data=data, by=request.user)

    @get(
        "/cases/{case_id:int}/search-actions",
        summary="A case's identity-search actions, oldest first",
        guards=[allow(Action.case_read)],
    )
    async def index(
        self, case_id: PathId, kind: FromQuery[SearchKind | None] = None
    ) -> list[SearchActionOut]:
        """404 case."""
        return await services.list_actions(case_id=case_id, kind=kind)
