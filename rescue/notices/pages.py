"""Pages for 寻人启事 (missing-person notices): list and search, registration with
photos at several ages, detail with photos and candidates."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from rescue.cases.tables import Sex
from rescue.errors import DomainError, InvalidInput
from rescue.i18n import _, label
from rescue.notices import services
from rescue.notices.schemas import NoticeCreate
from rescue.notices.tables import NoticeSource, NoticeStatus
from rescue.permissions import Action, allow
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.web.forms import form_key_input, once, parse, read_form

__all__ = ["NoticePages"]

PAGE_SIZE = 25
#: Photo inputs on the registration form (photos at several ages).
PHOTO_SLOTS = 3


def _form(values: dict[str, str], errors: dict[str, str], status: int = 200) -> Template:
    return Template(
        template_name="notices/new.html",
        context={
            "values": values,
            "errors": errors,
            "sexes": [(s.value, label(s)) for s in Sex],
            "sources": [(s.value, label(s)) for s in NoticeSource],
            "slots": range(PHOTO_SLOTS),
            "form_key": form_key_input(values.get("_form_key")),
        },
        status_code=status,
    )


class NoticePages(Controller):
    path = "/notices"
    include_in_schema = False

    @get("/", guards=[allow(Action.notice_read)])
    async def index(
        self, q: FromQuery[str] = "", status: FromQuery[str] = "", page: FromQuery[int] = 1
    ) -> Template:
        page = max(page, 1)
        result = await services.list_notices(
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            status=status if status in {s.value for s in NoticeStatus} else None,
            text=q,
        )
        return Template(
            template_name="notices/list.html",
            context={
                "result": result,
                "page": page,
                "pages": max(1, -(-result.total // PAGE_SIZE)),
                "filters": {"q": q, "status": status},
                "statuses": [(s.value, label(s)) for s in NoticeStatus],
            },
        )

    @get("/new", guards=[allow(Action.notice_write)])
    async def new(self) -> Template:
        return _form({"source": NoticeSource.family.value, "sex": Sex.unknown.value}, {})

    @post("/", guards=[allow(Action.notice_write)], status_code=303, media_type=MediaType.HTML)
    async def register(self, request: Request[Any, Any, Any]) -> Any:
        """Register the notice (API rules), then each photo with the date it was taken
        (same checks as the photo API); a refused photo is named on the notice page."""
        from rescue.photos.controllers import enqueue_photo
        from rescue.photos.services import upload_photo

        values, files = await read_form(request)
        data, errors = parse(NoticeCreate, values)
        taken: dict[int, date | None] = {}
        for slot in range(PHOTO_SLOTS):
            raw = values.get(f"taken_on_{slot}", "").strip()
            try:
                taken[slot] = date.fromisoformat(raw) if raw else None
            except ValueError:
                errors[f"taken_on_{slot}"] = _("Enter a date as YYYY-MM-DD.")
        if data is None or errors:
            return _form(values, errors, 400)

        async def action() -> str:
            notice = await services.create_notice(data=data, by=request.user)
            refused: list[str] = []
            for slot in range(PHOTO_SLOTS):
                upload = files.get(f"photo_{slot}")
                if upload is None:
                    continue
                try:
                    await upload_photo(
                        owner="notice",
                        owner_id=notice.id,
                        data=await upload.read(),
                        taken_on=taken[slot],
                        by=request.user,
                        store=get_store(),
                        limits=get_settings().upload,
                        enqueue=enqueue_photo,
                    )
                except DomainError as exc:
                    refused.append(f"{upload.filename}: {exc.detail}")
            if refused:
                request.session["flash_error"] = _(
                    "The notice was registered, but photos were refused: {detail}",
                    detail="; ".join(refused),
                )
            return f"/notices/{notice.id}"

        try:
            url = await once(request, values, action)
        except InvalidInput as exc:
            return _form(values, {"__all__": exc.detail}, 400)
        return Redirect(path=url, status_code=303)

    @get("/{notice_id:int}", guards=[allow(Action.notice_read)])
    async def detail(self, notice_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """The notice, its photos (with the age they show) and its candidates."""
        from rescue.matching.services import list_candidates
        from rescue.photos.services import get_photo
        from rescue.web.refs import load_refs

        notice = await services.get_notice(notice_id=notice_id)
        photos = [await get_photo(photo_id=p.id) for p in notice.photos]
        candidates = await list_candidates(
            settings=get_settings(),
            notice_id=notice_id,
            limit=50,
            stations=request.user.visible_stations(),
        )
        flash = request.session.pop("flash_error", None) if request.session else None
        return Template(
            template_name="notices/detail.html",
            context={
                "notice": notice,
                "photos": photos,
                "candidates": candidates.items,
                "flash_error": flash,
                "refs": await load_refs([c.case_id for c in candidates.items]),
            },
        )
