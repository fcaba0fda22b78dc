"""HTTP routes for placements (安置去向 / 托养) and their documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import JSONBody, MultipartBody

from rescue.permissions import Action, allow
from rescue.placements import services
from rescue.placements.schemas import (
    DocumentOut,
    PlacementCreate,
    PlacementEnd,
    PlacementList,
    PlacementOut,
    SettlementApprovalOut,
)
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings


@dataclass
class DocumentUpload:
    """Multipart form: ``file`` (PDF, JPEG, PNG or WebP; type sniffed from the bytes)
    and ``title`` (e.g. 出院证明 discharge certificate)."""

    file: UploadFile
    title: str = ""


@dataclass
class SettlementApprovalUpload:
    """Multipart form: ``document`` (the scanned approval: PDF, JPEG, PNG or WebP),
    ``authority`` (e.g. 市民政局), ``reference`` (文号), ``approved_on`` (date)."""

    document: UploadFile
    authority: str
    reference: str
    approved_on: date


class PlacementController(Controller):
    path = "/api"
    tags = ("placements",)

    @post(
        "/cases/{case_id:int}/placements",
        summary="Record a placement period (hospital, welfare home …)",
        guards=[allow(Action.placement_write)],
    )
    async def create(
        self,
        case_id: PathId,
        data: JSONBody[PlacementCreate],
        request: Request[Any, Any, Any],
    ) -> PlacementOut:
        """201 with the placement. An open-ended placement starting after the current
        one's start ends the current one then (a move). 409 when the period overlaps
        another placement (body names it) or the case is closed; 400 bad period or
        outsourced care without contract reference; 404 case."""
        return await services.create_placement(case_id=case_id, data=data, by=request.user)

    @get(
        "/cases/{case_id:int}/placements",
        summary="A case's placements and the current one",
        guards=[allow(Action.case_read)],
    )
    async def index(self, case_id: PathId) -> PlacementList:
        """Oldest first; ``current`` is None after the case closed. 404 case."""
        return await services.list_placements(case_id=case_id)

    @post(
        "/placements/{placement_id:int}/end",
        status_code=200,
        summary="End a placement",
        guards=[allow(Action.placement_write)],
    )
    async def end(
        self,
        placement_id: PathId,
        data: JSONBody[PlacementEnd],
        request: Request[Any, Any, Any],
    ) -> PlacementOut:
        """409 if already ended; 400 bad time; 404 placement."""
        return await services.end_placement(placement_id=placement_id, data=data, by=request.user)

    @post(
        "/placements/{placement_id:int}/documents",
        summary="Attach a scanned document to a placement",
        guards=[allow(Action.placement_write)],
    )
    async def add_document(
        self,
        placement_id: PathId,
        data: MultipartBody[DocumentUpload],
        request: Request[Any, Any, Any],
    ) -> DocumentOut:
        """201 with the document record. 400 empty/damaged; 413 too large; 415 not a
        PDF/JPEG/PNG/WebP; 404 placement."""
        return await services.add_document(
            placement_id=placement_id,
            title=data.title,
            data=await data.file.read(),
            by=request.user,
            store=get_store(),
            limits=get_settings().upload,
        )

    @get(
        "/placement-documents/{document_id:int}",
        summary="A placement document with a short-lived URL",
        guards=[allow(Action.document_read)],
    )
    async def document(self, document_id: PathId) -> DocumentOut:
        """``url`` is presigned for ``url_expires_in`` seconds (≤ 300). 404 if unknown."""
        return await services.get_document(document_id=document_id, store=get_store())

    @post(
        "/cases/{case_id:int}/settlement-approvals",
        summary="Record an approval of settlement (落户安置审批) with its document",
        guards=[allow(Action.placement_write)],
    )
    async def settlement_approval(
        self,
        case_id: PathId,
        data: MultipartBody[SettlementApprovalUpload],
        request: Request[Any, Any, Any],
    ) -> SettlementApprovalOut:
        """Lets the case be settled before the eligibility period is over. 201; 400
        bad field or date outside the stay; 413/415 document; 409 case closed;
        404 case."""
        return await services.record_settlement_approval(
            case_id=case_id,
            authority=data.authority,
            reference=data.reference,
            approved_on=data.approved_on,
            document=await data.document.read(),
            by=request.user,
            store=get_store(),
            limits=get_settings().upload,
        )
