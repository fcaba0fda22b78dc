"""HTTP routes of the family-search announcement: staff publish, anyone reads."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import JSONBody

from rescue.announcements import services
from rescue.announcements.schemas import AnnouncementIn, AnnouncementOut
from rescue.permissions import Action, allow
from rescue.runtime import get_store
from rescue.schemas import Limit, Offset, Page, PathId


class AnnouncementController(Controller):
    path = "/api/cases/{case_id:int}/announcement"
    tags = ("announcements",)

    @post("/", summary="Publish the case's 寻亲公告", guards=[allow(Action.announcement_publish)])
    async def publish(
        self,
        case_id: PathId,
        data: JSONBody[AnnouncementIn],
        request: Request[Any, Any, Any],
    ) -> AnnouncementOut:
        """201 with every field and ``public_url``. 400 photo not of this case or no
        found place; 404 unknown case; 409 case identified or closed."""
        return await services.publish(case_id=case_id, data=data, by=request.user)

    @get("/", summary="The case's 寻亲公告, every field", guards=[allow(Action.case_read)])
    async def detail(self, case_id: PathId) -> AnnouncementOut:
        """Including internal fields and whether it is published; 404 if none."""
        return await services.get_for_staff(case_id=case_id)

    @delete("/", summary="Unpublish the 寻亲公告", guards=[allow(Action.announcement_publish)])
    async def unpublish(self, case_id: PathId) -> None:
        """204 (idempotent); 404 if the case has no announcement."""
        await services.get_for_staff(case_id=case_id)
        await services.unpublish(case_id=case_id, reason="unpublished by staff")


class PublicAnnouncementController(Controller):
    """No token: only published announcements, only their published fields."""

    path = "/public/announcements"
    tags = ("public",)
    security = [{}]  # noqa: RUF012 - Litestar's layer attribute: no token

    @get("/", summary="Published family-search announcements")
    async def index(self, limit: Limit = 50, offset: Offset = 0) -> Page[dict[str, Any]]:
        """Published announcements, newest first, with only their public fields; paged.
        No token needed."""
        return await services.public_list(limit=limit, offset=offset)

    @get("/{announcement_id:int}", summary="One published announcement")
    async def detail(self, announcement_id: PathId) -> dict[str, Any]:
        """404 if unknown or no longer published."""
        return await services.public_get(announcement_id=announcement_id)

    @get("/{announcement_id:int}/photo", summary="Its photo (served by the service)")
    async def photo(self, announcement_id: PathId) -> Response[bytes]:
        """The image bytes; 404 when none is published."""
        data, media_type = await services.public_photo(
            announcement_id=announcement_id, store=get_store()
        )
        return Response(content=data, media_type=media_type, headers={"Cache-Control": "no-store"})
