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
from rescue.permissions import Action, allow
from rescue.schemas import PathId
from rescue.searches import services
from rescue.searches.schemas import (
    AnnouncementCreate,
    DnaRequestCreate,
    FilingCreate,
    InterviewCreate,
    PoliceCheckCreate,
)
from rescue.web.forms import once, parse, read_form

__all__ = ["SEARCH_FORMS", "SearchPages"]

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
