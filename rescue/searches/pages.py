"""Identity-search actions from the case page (身份查询): announcement published,
DNA requested from the police, police check, interview, filing. Each form is
checked with the API's schema and recorded by the API's service."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, MediaType, Request, post
from litestar.response import Redirect

from rescue.errors import Conflict, InvalidInput
from rescue.i18n import _
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
)
from rescue.web.forms import once, parse, read_form

__all__ = ["SEARCH_FORMS", "DnaResultPages", "SearchPages"]

#: form name → (schema, service, action that may record it).
SEARCH_FORMS: dict[str, tuple[type[Any], Callable[..., Awaitable[Any]], Action]] = {
    "announcement": (AnnouncementCreate, services.record_announcement, Action.search_write),
    "dna_request": (DnaRequestCreate, services.record_dna_request, Action.search_write),
    "police_check": (PoliceCheckCreate, services.record_police_check, Action.police_record),
    "interview": (InterviewCreate, services.record_interview, Action.search_write),
    "filing": (FilingCreate, services.record_filing, Action.search_write),
}


def _names(raw: str) -> list[str]:
    """Names typed in one field, separated by commas (，, 、 or ,)."""
    return [n.strip() for n in re.split(r"[,，、]", raw) if n.strip()]


async def _record(form: str, case_id: int, request: Request[Any, Any, Any]) -> Any:
    from rescue.cases.pages import case_page

    schema, record, _action = SEARCH_FORMS[form]
    values, _files = await read_form(request)
    extra: dict[str, Any] = {}
    if form == "interview":
        extra["clues"] = {
            "dialect": values.get("dialect", "").strip(),
            "place_names": [
                p.strip() for p in values.get("place_names", "").split("，") if p.strip()
            ],
            "relatives_names": [
                p.strip() for p in values.get("relatives_names", "").split("，") if p.strip()
            ],
        }
    fields = {
        k: v for k, v in values.items() if k not in {"dialect", "place_names", "relatives_names"}
    }
    data, errors = parse(schema, fields, **extra)
    if data is None:
        return await case_page(
            case_id, request, form_errors={form: errors}, form_values=values, status=400
        )

    async def action() -> str:
        await record(case_id=case_id, data=data, by=request.user)
        return f"/cases/{case_id}#search-actions"

    try:
        url = await once(request, values, action)
    except (InvalidInput, Conflict) as exc:
        return await case_page(
            case_id,
            request,
            form_errors={form: {"__all__": exc.detail}},
            form_values=values,
            status=exc.status_code,
        )
    return Redirect(path=url, status_code=303)


class SearchPages(Controller):
    path = "/cases/{case_id:int}/search-actions"
    include_in_schema = False

    @post(
        "/announcement",
        guards=[allow(Action.search_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def announcement(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        return await _record("announcement", case_id, request)

    @post(
        "/dna-request",
        guards=[allow(Action.search_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def dna_request(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        return await _record("dna_request", case_id, request)

    @post(
        "/police-check",
        guards=[allow(Action.police_record)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def police_check(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        return await _record("police_check", case_id, request)

    @post(
        "/interview",
        guards=[allow(Action.search_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def interview(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        return await _record("interview", case_id, request)

    @post(
        "/filing",
        guards=[allow(Action.search_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def filing(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        return await _record("filing", case_id, request)


class DnaResultPages(Controller):
    """Police liaison (or staff): the police's DNA result of a request, from the case page."""

    include_in_schema = False

    @post(
        "/dna-requests/{action_id:int}/result",
        guards=[allow(Action.police_record)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def result(self, action_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Checked with the API's DnaResultCreate and recorded by
        rescue.searches.services.record_dna_result (never overwritten; the date
        after the request and not in the future). Errors next to the fields."""
        from rescue.cases.pages import case_page
        from rescue.errors import NotFound
        from rescue.searches.tables import SearchAction

        row = (
            await SearchAction.select(SearchAction.case).where(SearchAction.id == action_id).first()
        )
        if row is None:
            raise NotFound(_("DNA request {action_id} does not exist", action_id=action_id))
        case_id = row["case"]
        form = f"dna-result-{action_id}"
        values, _files = await read_form(request)
        data, errors = parse(DnaResultCreate, values)
        if data is None:
            return await case_page(
                case_id, request, form_errors={form: errors}, form_values=values, status=400
            )
        try:
            await services.record_dna_result(action_id=action_id, data=data, by=request.user)
        except (InvalidInput, Conflict) as exc:
            # The service's only InvalidInput is about the date (future, before the request).
            field = "result_on" if isinstance(exc, InvalidInput) else "__all__"
            return await case_page(
                case_id,
                request,
                form_errors={form: {field: exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/cases/{case_id}#search-actions", status_code=303)
