"""HTTP routes for missing-person notices."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery, JSONBody

from rescue.notices import services
from rescue.notices.schemas import NoticeCreate, NoticeOut
from rescue.notices.tables import NoticeStatus
from rescue.permissions import Action, allow
from rescue.read_cache import cached_read
from rescue.schemas import Limit, Offset, Page, PathId


class NoticeController(Controller):
    path = "/api/notices"
    tags = ("notices",)

    @post("/", summary="Register a missing-person notice", guards=[allow(Action.notice_write)])
    async def register(
        self, data: JSONBody[NoticeCreate], request: Request[Any, Any, Any]
    ) -> NoticeOut:
        """Create a notice (201). 400 for malformed fields or impossible dates."""
        return await services.create_notice(data=data, by=request.user)

    @get(
        "/{notice_id:int}",
        summary="One notice with its photos",
        guards=[allow(Action.notice_read)],
        **cached_read("notices", "photos"),
    )
    async def detail(self, notice_id: PathId) -> NoticeOut:
        """404 if the notice does not exist."""
        return await services.get_notice(notice_id=notice_id)

    @get(
        "/",
        summary="Notices, newest first (paged)",
        guards=[allow(Action.notice_read)],
        **cached_read("notices", "photos"),
    )
    async def index(
        self,
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[NoticeStatus | None] = None,
    ) -> Page[NoticeOut]:
        """Missing-person notices, newest first, optionally of one ``status``; paged."""
        return await services.list_notices(
            limit=limit, offset=offset, status=status.value if status else None
        )
