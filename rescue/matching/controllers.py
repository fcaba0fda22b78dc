"""HTTP routes for match candidates."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath

from rescue.matching import services
from rescue.matching.schemas import CandidateOut
from rescue.permissions import Action, allow
from rescue.schemas import Limit, Offset, Page
from rescue.settings import get_settings


class CandidateController(Controller):
    path = "/api"
    tags = ("candidates",)

    @get(
        "/cases/{case_id:int}/candidates",
        summary="Notices that may be this person, best first",
        guards=[allow(Action.candidate_read)],
    )
    async def of_case(
        self,
        case_id: FromPath[int],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[CandidateOut]:
        """Ordered by best face distance (smallest first). 404 if the case does not exist."""
        return await services.list_candidates(
            settings=get_settings(), case_id=case_id, limit=limit, offset=offset
        )

    @get(
        "/notices/{notice_id:int}/candidates",
        summary="People in care who may be this notice's person",
        guards=[allow(Action.candidate_read)],
    )
    async def of_notice(
        self,
        notice_id: FromPath[int],
        request: Request[Any, Any, Any],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[CandidateOut]:
        """Ordered by best face distance (smallest first); only people of the stations
        the caller sees. 404 if the notice does not exist."""
        return await services.list_candidates(
            settings=get_settings(),
            notice_id=notice_id,
            limit=limit,
            offset=offset,
            stations=request.user.visible_stations(),
        )
