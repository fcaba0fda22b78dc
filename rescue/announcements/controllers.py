"""HTTP routes of the family-search announcement: staff publish, anyone reads."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect

from rescue.announcements import services
from rescue.announcements.schemas import AnnouncementIn, AnnouncementOut, PublicFilter
from rescue.cases.tables import Sex
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


#: Public answers may be cached a minute (a slow phone connection re-uses them);
#: short, because an unpublished announcement must disappear soon from caches too.
PUBLIC_CACHE_HEADER = "public, max-age=60"
PUBLIC_CACHE = CacheControlHeader(public=True, max_age=60)


class PublicAnnouncementController(Controller):
    """No token: only published announcements, only their published fields."""

    path = "/public/announcements"
    tags = ("public",)
    security = [{}]  # noqa: RUF012 - Litestar's layer attribute: no token

    @get("/", summary="Published family-search announcements", cache_control=PUBLIC_CACHE)
    async def index(
        self,
        limit: Limit = 50,
        offset: Offset = 0,
        sex: FromQuery[Sex | None] = None,
        age_min: Annotated[int | None, QueryParameter(ge=0, le=150)] = None,
        age_max: Annotated[int | None, QueryParameter(ge=0, le=150)] = None,
        place: FromQuery[str] = "",
        found_from: FromQuery[date | None] = None,
        found_to: FromQuery[date | None] = None,
        dialect: FromQuery[str] = "",
    ) -> Page[dict[str, Any]]:
        """Newest first. Filters (published fields only): ``sex``, ``age_min``/
        ``age_max`` (years, inclusive), ``place`` and ``dialect`` (substring),
        ``found_from``/``found_to`` (YYYY-MM-DD, inclusive)."""
        where = PublicFilter(
            sex=sex,
            age_min=age_min,
            age_max=age_max,
            place=place,
            found_from=found_from,
            found_to=found_to,
            dialect=dialect,
        )
        return await services.public_list(limit=limit, offset=offset, where=where)

    @get("/{announcement_id:int}", summary="One published announcement", cache_control=PUBLIC_CACHE)
    async def detail(self, announcement_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """404 if unknown or no longer published. A browser (asking for HTML first,
        e.g. a phone that scanned the poster's QR code) is sent to the page
        ``/family/announcements/{id}``, which shows the same public view."""
        view = await services.public_get(announcement_id=announcement_id)
        if request.accept.best_match(["application/json", "text/html"]) == "text/html":
            return Redirect(path=f"/family/announcements/{announcement_id}", status_code=303)
        return view

    @get("/{announcement_id:int}/photo", summary="Its photo (served by the service)")
    async def photo(
        self, announcement_id: PathId, size: FromQuery[str] = "full"
    ) -> Response[bytes]:
        """The clean JPEG made at publish time (``size=thumb``: ≤ 240 px); 404 when
        none is published."""
        data, media_type = await services.public_photo(
            announcement_id=announcement_id, store=get_store(), thumb=size == "thumb"
        )
        return Response(
            content=data, media_type=media_type, headers={"Cache-Control": PUBLIC_CACHE_HEADER}
        )
