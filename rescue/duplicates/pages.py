"""Duplicate-intake flags on pages (重复登记预警): the block on a case's page, and
the link / dismiss forms. Same services and permission rows as
``/api/cases/{id}/duplicates`` and ``/api/duplicates/{id}/link|dismiss``."""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from rescue.duplicates import services
from rescue.errors import Conflict, PermissionDenied
from rescue.i18n import _
from rescue.imports.compare import EVIDENCE_TEXT
from rescue.permissions import PERMISSIONS, Action, allow
from rescue.schemas import PathId
from rescue.web.forms import read_form

__all__ = ["DuplicatePages"]


async def _block(
    request: Request[Any, Any, Any], case_id: int, problem: str = "", status: int = 200
) -> Template:
    found = await services.warnings_for_case(case_id=case_id)
    return Template(
        template_name="cases/_duplicates.html",
        context={
            "case_id": case_id,
            "found": found,
            "problem": problem,
            "can_decide": request.user.role in PERMISSIONS[Action.duplicate_decide],
            "evidence": {k: _(v) for k, v in EVIDENCE_TEXT.items()},
        },
        status_code=status,
    )


class DuplicatePages(Controller):
    path = "/"
    include_in_schema = False

    @get("/cases/{case_id:int}/duplicates", guards=[allow(Action.case_read)])
    async def block(self, case_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """The case's duplicate flags (loaded into the case page by htmx): the
        evidence, a link to the other case, and the link / dismiss forms while open."""
        return await _block(request, case_id)

    @post(
        "/duplicates/{warning_id:int}/{decision:str}",
        guards=[allow(Action.duplicate_decide)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def decide(
        self, warning_id: PathId, decision: FromPath[str], request: Request[Any, Any, Any]
    ) -> Any:
        """``decision``: ``link`` (the same person, a repeat admission) or ``dismiss``;
        back to the case's page (``case_id`` field)."""
        values, _files = await read_form(request)
        case_id = int(values["case_id"]) if values.get("case_id", "").isdigit() else 0
        if decision not in {"link", "dismiss"}:
            return Redirect(path=f"/cases/{case_id}", status_code=303)
        # Decided meanwhile, or not this station's: the page shows the state.
        with contextlib.suppress(Conflict, PermissionDenied):
            await services.decide(
                warning_id=warning_id,
                link=decision == "link",
                note=values.get("note", "").strip()[:2000],
                by=request.user,
            )
        return Redirect(path=f"/cases/{case_id}#duplicates", status_code=303)
