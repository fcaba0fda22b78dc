"""Pages of the public door (no login) and of the moderation queue (staff).

Public (``/family``, phone-first, no session): the published 寻亲公告 list with
filters and each announcement (rescue.announcements.services.public_list /
public_get: the same data as ``/public/announcements``), the online search
request form (网上寻亲登记) and the status page of a tracking code.

Staff (``/search-requests``): the queue of the stations they see plus the shared
queue, each request with its photos, and the moderation steps (the same
service as ``POST /api/family-requests/{id}/decision``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, UploadFile
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from rescue.announcements import services as announcements
from rescue.announcements.schemas import AnnouncedField, PublicFilter
from rescue.cases.tables import Sex
from rescue.errors import Conflict, DomainError, InvalidInput, NotFound, TooManyRequests
from rescue.family_requests import limits, services
from rescue.family_requests.controllers import enqueue
from rescue.family_requests.schemas import Decision, DecisionIn, ReplyIn, SearchRequestIn
from rescue.family_requests.tables import RequestStatus
from rescue.i18n import _, label
from rescue.permissions import Action, allow
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.web.files import private_file
from rescue.web.forms import parse, read_form

__all__ = ["PublicPages", "SearchRequestPages"]

#: Announcements per list page (keeps the page small on a slow connection).
PAGE_SIZE = 20
PUBLIC_CACHE = CacheControlHeader(public=True, max_age=60)
NO_STORE = CacheControlHeader(no_store=True)


def _address(request: Request[Any, Any, Any]) -> str:
    """The client address the per-address limits count (TRUSTED_PROXIES aware)."""
    return limits.client_address(
        request.client.host if request.client else None,
        request.headers.getall("x-forwarded-for", []),
        get_settings().public.trusted_proxies,
    )


def _int(raw: str) -> int | None:
    return int(raw) if raw.strip().isdigit() else None


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def _request_form(
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    *,
    photos_dropped: bool = False,
) -> Template:
    """The request form; with ``errors`` every problem is also listed at the top
    (a phone reloads at the top, the fields are far below), and ``photos_dropped``
    says that chosen photos must be chosen again (a browser cannot refill them)."""
    return Template(
        template_name="family/request.html",
        context={
            "values": values,
            "errors": errors,
            "photos_dropped": photos_dropped,
            "sexes": [(s.value, label(s)) for s in Sex],
            "regions": [(r, r) for r, _s in get_settings().public.regions],
            "max_photos": services.MAX_PHOTOS,
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


class PublicPages(Controller):
    """No login: anything here shows only what is published."""

    path = "/family"
    include_in_schema = False

    @get("/", cache_control=PUBLIC_CACHE)
    async def index(
        self,
        sex: FromQuery[str] = "",
        age_min: FromQuery[str] = "",
        age_max: FromQuery[str] = "",
        place: FromQuery[str] = "",
        found_from: FromQuery[str] = "",
        found_to: FromQuery[str] = "",
        dialect: FromQuery[str] = "",
        page: FromQuery[int] = 1,
    ) -> Template:
        """Published 寻亲公告, newest first, filtered; 20 a page. Unreadable filter
        values are ignored (a family's typo must not end in an error page)."""
        page = max(page, 1)
        where = PublicFilter(
            sex=Sex(sex) if sex in {s.value for s in Sex} else None,
            age_min=_int(age_min),
            age_max=_int(age_max),
            place=place[:100],
            found_from=_day(found_from),
            found_to=_day(found_to),
            dialect=dialect[:100],
        )
        result = await announcements.public_list(
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, where=where
        )
        filters = {
            "sex": sex,
            "age_min": age_min,
            "age_max": age_max,
            "place": place,
            "found_from": found_from,
            "found_to": found_to,
            "dialect": dialect,
        }
        return Template(
            template_name="family/list.html",
            context={
                "result": result,
                "page": page,
                "pages": max(1, -(-result.total // PAGE_SIZE)),
                "filters": filters,
                "query": "&".join(f"{k}={v}" for k, v in filters.items() if v),
                "sexes": [(s.value, label(s)) for s in Sex if s != Sex.unknown],
            },
        )

    @get("/announcements/{announcement_id:int}", cache_control=PUBLIC_CACHE)
    async def detail(self, announcement_id: PathId) -> Template:
        """One published announcement; 404 page when unknown or not published."""
        view = await announcements.public_get(announcement_id=announcement_id)
        from rescue.announcements.tables import Announcement
        from rescue.settings import get_settings

        row = (
            await Announcement.select(Announcement.case.station.as_alias("station"))
            .where(Announcement.id == announcement_id)
            .first()
        )
        return Template(
            template_name="family/detail.html",
            context={
                "view": view,
                "home": get_settings().site.station(row["station"] if row else ""),
                "fields": [
                    f for f in AnnouncedField if f.value in view and f != AnnouncedField.photo
                ],
            },
        )

    @get("/request", cache_control=NO_STORE)
    async def request_form(self) -> Template:
        """The online search request form with the consent notice."""
        return _request_form({}, {})

    @post("/request", status_code=201, media_type=MediaType.HTML)
    async def submit(self, request: Request[Any, Any, Any]) -> Template:
        """Receive a request (rescue.family_requests.services.submit); the
        tracking code is shown once, on this answer only."""
        values, _files = await read_form(request)
        form = await request.form()
        uploads = [
            v
            for k, v in form.multi_items()
            if k == "photos" and isinstance(v, UploadFile) and v.filename
        ]
        data, errors = parse(SearchRequestIn, values)
        if data is None:
            # Tell every problem at once: the consents too (checked by the service
            # only once the fields parse).
            for name, problem in services.consent_problems(
                personal=bool(values.get("consent_personal")),
                face=bool(values.get("consent_face")),
                photo_count=len(uploads),
            ).items():
                errors.setdefault(name, problem)
            return _request_form(values, errors, 400, photos_dropped=bool(uploads))
        photos: list[tuple[bytes, date | None]] = [(await u.read(), None) for u in uploads]
        settings = get_settings()
        try:
            done = await services.submit(
                data=data,
                photos=photos,
                address=_address(request),
                store=get_store(),
                upload=settings.upload,
                public=settings.public,
            )
        except DomainError as exc:
            field = str(exc.extra.get("field", "__all__"))
            return _request_form(
                values, {field: exc.detail}, exc.status_code, photos_dropped=bool(uploads)
            )
        return Template(
            template_name="family/submitted.html",
            context={"code": done.code, "status": done.status},
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    @post("/reply", status_code=200, media_type=MediaType.HTML)
    async def reply(self, request: Request[Any, Any, Any]) -> Template:
        """The family answers "more information needed" (text, photos with
        consent) with its tracking code (rescue.family_requests.services.reply);
        the page shows the new status only. Refused input: the status page again
        with the error next to the field and what was typed."""
        values, _files = await read_form(request)
        form = await request.form()
        uploads = [
            v
            for k, v in form.multi_items()
            if k == "photos" and isinstance(v, UploadFile) and v.filename
        ]
        values["code"] = values.get("code", "")[:100]
        data, errors = parse(ReplyIn, values)
        if data is None:
            return _status_page(None, errors.get("code", ""), status=400)
        photos: list[tuple[bytes, date | None]] = [(await u.read(), None) for u in uploads]
        settings = get_settings()
        try:
            result = await services.reply(
                data=data,
                photos=photos,
                address=_address(request),
                store=get_store(),
                upload=settings.upload,
                public=settings.public,
            )
        except (NotFound, TooManyRequests) as exc:
            return _status_page(None, exc.detail, status=exc.status_code)
        except DomainError as exc:
            field = str(exc.extra.get("field", "__all__"))
            return _status_page(
                await services.status_of_known_code(data.code),
                "",
                status=exc.status_code,
                code=data.code,
                values=values,
                errors={field: exc.detail},
            )
        return _status_page(result, "", replied=True)

    @get("/status", cache_control=NO_STORE)
    async def status_form(self) -> Template:
        """Where a family types its tracking code."""
        return _status_page(None, "")

    @post("/status", status_code=200, media_type=MediaType.HTML)
    async def status(self, request: Request[Any, Any, Any]) -> Template:
        """The request's status and the station's message to the family, nothing
        else; the same answer for every wrong code; rate-limited per address."""
        values, _files = await read_form(request)
        if not values.get("code", "").strip():  # not a try: nothing to look up
            return _status_page(None, _("Enter the tracking code of your request."), status=400)
        try:
            result = await services.status_for_code(
                code=values.get("code", "")[:100],
                address=_address(request),
                public=get_settings().public,
            )
        except (NotFound, TooManyRequests) as exc:
            return _status_page(None, exc.detail, status=exc.status_code)
        return _status_page(result, "", code=values.get("code", "").strip())


def _status_page(
    result: Any,
    error: str,
    *,
    status: int = 200,
    code: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    replied: bool = False,
) -> Template:
    """The status page; with "more information needed", the answer form (the
    code typed by the family in a hidden field: the page is never stored)."""
    return Template(
        template_name="family/status.html",
        context={
            "result": result,
            "error": error,
            "code": code,
            "values": values or {},
            "errors": errors or {},
            "replied": replied,
            "max_photos": services.MAX_PHOTOS,
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _queue_page(result: Any, status: str) -> Template:
    return Template(
        template_name="family/queue.html",
        context={
            "result": result,
            "status": status,
            "statuses": [(s.value, label(s)) for s in RequestStatus],
        },
    )


class SearchRequestPages(Controller):
    """Staff of the responsible station moderate online search requests."""

    path = "/search-requests"
    include_in_schema = False

    @get("/", guards=[allow(Action.family_request_read)])
    async def queue(self, request: Request[Any, Any, Any], status: FromQuery[str] = "") -> Template:
        """Waiting requests (or those of ``status``) of the user's stations and the shared queue."""
        chosen = RequestStatus(status) if status in {s.value for s in RequestStatus} else None
        result = await services.list_queue(
            stations=request.user.visible_stations(), status=chosen, limit=100, offset=0
        )
        return _queue_page(result, status)

    @get("/{request_id:int}", guards=[allow(Action.family_request_read)])
    async def detail(self, request_id: PathId) -> Template:
        """Everything the family sent (text shown as text), photos, linked duplicates."""
        return await _detail(request_id)

    @get(
        "/{request_id:int}/photos/{request_photo_id:int}",
        guards=[allow(Action.family_request_read)],
    )
    async def photo(self, request_id: PathId, request_photo_id: PathId) -> Response[bytes]:
        """A photo the family sent, through the app (never a bucket URL).

        The id is ``request_photo_id``, not ``photo_id``: the station guard and
        the audit trail read a ``photo_id`` as a case's photo (rescue.permissions),
        which would check the wrong station."""
        data, media_type = await services.photo_bytes(
            request_id=request_id, photo_id=request_photo_id, store=get_store()
        )
        return private_file(data, media_type)

    @post(
        "/{request_id:int}/decision",
        guards=[allow(Action.family_request_decide)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def decide(self, request_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """One moderation step; on refusal the page again with the reason."""
        values, _files = await read_form(request)
        data, errors = parse(DecisionIn, values)
        if data is None:
            return await _detail(request_id, errors=errors, status=400)
        try:
            await services.decide(
                request_id=request_id,
                data=data,
                by=request.user,
                store=get_store(),
                upload=get_settings().upload,
                enqueue=enqueue,
            )
        except (InvalidInput, Conflict) as exc:
            return await _detail(request_id, errors={"__all__": exc.detail}, status=exc.status_code)
        return Redirect(path=f"/search-requests/{request_id}", status_code=303)


async def _detail(
    request_id: int, *, errors: dict[str, str] | None = None, status: int = 200
) -> Template:
    item = await services.get_for_staff(request_id=request_id)
    allowed = services.MOVES[item.status] if item.duplicate_of is None else {}
    return Template(
        template_name="family/moderate.html",
        context={
            "item": item,
            "decisions": [(d.value, label(d)) for d in Decision if d in allowed],
            "errors": errors or {},
        },
        status_code=status,
    )
