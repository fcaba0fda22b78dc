"""Placement pages: record where the person is placed, attach its documents."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.response import Redirect, Response

from rescue.errors import Conflict, DomainError, InvalidInput
from rescue.i18n import _
from rescue.permissions import Action, allow
from rescue.placements import services
from rescue.placements.schemas import PlacementCreate, PlacementEnd
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.web.files import private_file
from rescue.web.forms import once, parse, read_form

__all__ = ["PlacementPages"]


class PlacementPages(Controller):
    include_in_schema = False

    @post(
        "/cases/{case_id:int}/placements",
        guards=[allow(Action.placement_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def create(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """A new placement (the open one ends), with its document if one was chosen.
        Errors are shown in the case page's placement form."""
        from rescue.cases.pages import case_page

        values, files = await read_form(request)
        data, errors = parse(PlacementCreate, values)
        if data is None:
            return await case_page(
                case_id, request, form_errors={"placement": errors}, form_values=values, status=400
            )

        async def action() -> str:
            placement = await services.create_placement(case_id=case_id, data=data, by=request.user)
            document = files.get("document")
            if document is not None:
                try:
                    await services.add_document(
                        placement_id=placement.id,
                        title=values.get("document_title", "") or document.filename or "",
                        data=await document.read(),
                        by=request.user,
                        store=get_store(),
                        limits=get_settings().upload,
                    )
                except DomainError as exc:
                    request.session["flash_error"] = _(
                        "The placement was recorded, but the document was refused: {detail}",
                        detail=exc.detail,
                    )
            return f"/cases/{case_id}#placements"

        try:
            url = await once(request, values, action)
        except (InvalidInput, Conflict) as exc:
            return await case_page(
                case_id,
                request,
                form_errors={"placement": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=url, status_code=303)

    @post(
        "/placements/{placement_id:int}/end",
        guards=[allow(Action.placement_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def end(self, placement_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """End the placement (same rules as ``POST /api/placements/{id}/end``:
        after its start, not in the future; empty time: now). Errors are shown in
        the case page's end form, with what was typed."""
        from rescue.cases.pages import case_page

        values, _files = await read_form(request)
        placement = await services.get_placement(placement_id=placement_id)
        case_id = placement.case_id
        data, errors = parse(PlacementEnd, values)
        if data is None:
            return await case_page(
                case_id,
                request,
                form_errors={"end_placement": errors},
                form_values=values,
                status=400,
            )
        try:
            await services.end_placement(placement_id=placement_id, data=data, by=request.user)
        except (InvalidInput, Conflict) as exc:
            return await case_page(
                case_id,
                request,
                form_errors={"end_placement": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/cases/{case_id}#placements", status_code=303)

    @post(
        "/placements/{placement_id:int}/documents",
        guards=[allow(Action.placement_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def add_document(self, placement_id: PathId, request: Request[Any, Any, Any]) -> Redirect:
        """Attach a scanned document (same checks as the API)."""
        values, files = await read_form(request)
        placement = await services.get_placement(placement_id=placement_id)
        document = files.get("document")
        if document is None:
            request.session["flash_error"] = _("Choose a document to upload.")
        else:
            try:
                await services.add_document(
                    placement_id=placement_id,
                    title=values.get("document_title", "") or document.filename or "",
                    data=await document.read(),
                    by=request.user,
                    store=get_store(),
                    limits=get_settings().upload,
                )
            except DomainError as exc:
                request.session["flash_error"] = exc.detail
        return Redirect(path=f"/cases/{placement.case_id}#placements", status_code=303)

    @get("/placement-documents/{document_id:int}/file", guards=[allow(Action.document_read)])
    async def document(self, document_id: PathId) -> Response[bytes]:
        """The document's bytes, through the app (permission checked, read audited)."""
        from rescue.placements.tables import PlacementDocument

        await services.get_document(document_id=document_id)
        row = (
            await PlacementDocument.select(
                PlacementDocument.object_key, PlacementDocument.media_type
            )
            .where(PlacementDocument.id == document_id)
            .first()
        )
        assert row is not None  # get_document raised NotFound otherwise
        data = await get_store().aget(row["object_key"])
        return private_file(data, row["media_type"])
