"""HTTP routes for duplicate-intake warnings (重复登记预警)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from rescue.duplicates import services
from rescue.duplicates.schemas import CaseDuplicates, DuplicateDecision, DuplicateWarningOut
from rescue.permissions import Action, allow
from rescue.schemas import PathId


class CaseDuplicatesController(Controller):
    path = "/api/cases/{case_id:int}/duplicates"
    tags = ("duplicates",)

    @get(
        "/",
        summary="Possible earlier registrations of the same person",
        guards=[allow(Action.case_read)],
    )
    async def index(self, case_id: PathId) -> CaseDuplicates:
        """Every warning of the case (open, linked, dismissed) with the evidence and a
        link to the other case, and the case photos whose face comparison is still
        running (``photos_pending_face_check``). 404 if the case does not exist."""
        return await services.warnings_for_case(case_id=case_id)


class DuplicateController(Controller):
    path = "/api/duplicates"
    tags = ("duplicates",)

    @post(
        "/{warning_id:int}/link",
        status_code=200,
        summary="Same person: link the two cases (a repeat admission)",
        guards=[allow(Action.duplicate_decide)],
    )
    async def link(
        self,
        warning_id: PathId,
        data: JSONBody[DuplicateDecision],
        request: Request[Any, Any, Any],
    ) -> DuplicateWarningOut:
        """Both timelines get ``duplicate_linked``. 403 when the caller sees neither
        case's station; 404 no such warning; 409 already decided."""
        return await services.decide(
            warning_id=warning_id, link=True, note=data.note, by=request.user
        )

    @post(
        "/{warning_id:int}/dismiss",
        status_code=200,
        summary="Not the same person: dismiss the warning",
        guards=[allow(Action.duplicate_decide)],
    )
    async def dismiss(
        self,
        warning_id: PathId,
        data: JSONBody[DuplicateDecision],
        request: Request[Any, Any, Any],
    ) -> DuplicateWarningOut:
        """Both timelines get ``duplicate_dismissed``; the same evidence is not raised
        again, a new kind of evidence reopens it. 403/404/409 as for ``link``."""
        return await services.decide(
            warning_id=warning_id, link=False, note=data.note, by=request.user
        )
