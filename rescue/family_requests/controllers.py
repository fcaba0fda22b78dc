"""JSON API of the moderation queue of online search requests (staff)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery, JSONBody

from rescue.family_requests import services
from rescue.family_requests.schemas import DecisionIn, SearchRequestOut, SearchRequestSummary
from rescue.family_requests.tables import RequestStatus
from rescue.permissions import Action, allow
from rescue.runtime import get_store
from rescue.schemas import Limit, Offset, Page, PathId
from rescue.settings import get_settings


async def enqueue(photo_id: int) -> None:
    """Queue face processing and matching of a new notice photo."""
    from rescue.photos.controllers import enqueue_photo

    await enqueue_photo(photo_id)


class FamilyRequestController(Controller):
    path = "/api/family-requests"
    tags = ("family requests",)

    @get("/", summary="Online search requests waiting", guards=[allow(Action.family_request_read)])
    async def index(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[RequestStatus | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[SearchRequestSummary]:
        """The caller's stations' requests plus the shared queue, oldest first;
        without ``status`` those not yet registered or closed. Linked duplicates
        appear in their original's ``duplicates``. No description or contact:
        those are read on one request (an audited read)."""
        return await services.list_queue(
            stations=request.user.visible_stations(), status=status, limit=limit, offset=offset
        )

    @get(
        "/{request_id:int}",
        summary="One online search request (with contact)",
        guards=[allow(Action.family_request_read)],
    )
    async def detail(self, request_id: PathId) -> SearchRequestOut:
        """Everything the family sent, with the exchange (``thread``) and linked
        duplicates. 404 if unknown; 403 if another station's. Audited read
        (rescue.audit.services.SENSITIVE_ITEMS): the text and contact are
        personal data."""
        return await services.get_for_staff(request_id=request_id)

    @post(
        "/{request_id:int}/decision",
        summary="Moderate: review, more_info, reject, accept",
        guards=[allow(Action.family_request_decide)],
        status_code=200,
    )
    async def decide(
        self,
        request_id: PathId,
        data: JSONBody[DecisionIn],
        request: Request[Any, Any, Any],
    ) -> SearchRequestOut:
        """``accept`` creates the notice with the photos and starts matching.
        400 without a message for more_info/reject; 409 (``current``,
        ``allowed``) when the step is not possible now."""
        return await services.decide(
            request_id=request_id,
            data=data,
            by=request.user,
            store=get_store(),
            upload=get_settings().upload,
            enqueue=enqueue,
        )
