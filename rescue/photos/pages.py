"""Photos on pages, served by the app (viewer's permission checked, read audited)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.params import FromQuery

from rescue.permissions import Action, Participation, allow
from rescue.photos.thumbnails import photo_bytes
from rescue.runtime import get_store
from rescue.schemas import PathId

__all__ = ["PhotoPages"]


class PhotoPages(Controller):
    path = "/photos"
    include_in_schema = False

    @get(
        "/{photo_id:int}/image",
        guards=[allow(Action.photo_read, (Participation.notice_station,))],
    )
    async def image(self, photo_id: PathId, size: FromQuery[str] = "thumb") -> Response[Any]:
        """The photo (``size=full``) or its thumbnail (default); 403 outside the
        viewer's stations, 404 unknown. Private, not stored by shared caches."""
        data, media_type = await photo_bytes(photo_id=photo_id, size=size, store=get_store())
        return Response(
            content=data,
            media_type=media_type,
            headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
        )
