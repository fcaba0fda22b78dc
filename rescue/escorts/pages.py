"""Escort home pages: the return plan, the handover (交接) with its signed sheet,
and the printable 交接单 (handover sheet) to be signed at the handover."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.response import Redirect, Template

from rescue import clock
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.escorts import services
from rescue.escorts.schemas import HandoverForm, ReturnPlanCreate, ReturnPlanRevision
from rescue.escorts.tables import ReceivingParty, RelationshipBasis
from rescue.permissions import Action, Participation, allow
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.web.files import private_file
from rescue.web.forms import once, parse, read_form
from rescue.web.pdf import render_pdf

__all__ = ["EscortPages", "HandoverPages", "TaskPages", "handover_page"]

#: The destination station of the return plan takes part (rescue.stations).
_DESTINATION = (Participation.destination_station,)

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class _HandoverFields(msgspec.Struct):
    """The handover form's fields (types only; rules are in record_handover)."""

    receiving_party: ReceivingParty
    receiver_name: _Text
    id_document_type: _Text
    id_document_number: _Text
    handed_over_at: datetime
    place: _Text
    id_document_checked: bool = False
    relationship: Annotated[str, msgspec.Meta(max_length=100)] = ""
    relationship_basis: RelationshipBasis | None = None


#: A ``datetime-local`` value typed to the minute (no seconds).
_TYPED_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _plan_fields(values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The return plan form's fields, and its escort staff (one per line)."""
    staff = [s.strip() for s in values.get("escort_staff", "").splitlines() if s.strip()]
    return {k: v for k, v in values.items() if k not in ("escort_staff", "_form_key")}, staff


class EscortPages(Controller):
    path = "/cases/{case_id:int}"
    include_in_schema = False

    @post(
        "/return-plan",
        guards=[allow(Action.escort_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def return_plan(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Record the return plan (escort staff one per line); the case becomes return_planned."""
        from rescue.cases.pages import case_page

        values, _files = await read_form(request)
        fields, staff = _plan_fields(values)
        data, errors = parse(ReturnPlanCreate, fields, escort_staff=staff)
        if data is None:
            return await case_page(
                case_id,
                request,
                form_errors={"return_plan": errors},
                form_values=values,
                status=400,
            )
        try:
            await services.record_return_plan(case_id=case_id, data=data, by=request.user)
        except (Conflict, InvalidInput) as exc:
            return await case_page(
                case_id,
                request,
                form_errors={"return_plan": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/cases/{case_id}#handovers", status_code=303)

    @post(
        "/return-plan/revise",
        guards=[allow(Action.escort_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def revise_return_plan(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """修改返乡计划: the plan's fields as they should be now and the reason
        (same rules as ``PUT /api/cases/{id}/return-plan``)."""
        from rescue.cases.pages import case_page

        values, _files = await read_form(request)
        fields, staff = _plan_fields(values)
        data, errors = parse(ReturnPlanRevision, fields, escort_staff=staff)
        if data is None:
            return await case_page(
                case_id,
                request,
                form_errors={"plan_revision": errors},
                form_values=values,
                status=400,
            )
        try:
            await services.revise_return_plan(case_id=case_id, data=data, by=request.user)
        except (Conflict, InvalidInput, NotFound) as exc:
            return await case_page(
                case_id,
                request,
                form_errors={"plan_revision": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/cases/{case_id}#return-plan", status_code=303)

    @post(
        "/handovers/{handover_id:int}/approve",
        guards=[allow(Action.escort_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def approve_handover(
        self, case_id: PathId, handover_id: PathId, request: Request[Any, Any, Any]
    ) -> Any:
        """A second staff member approves a handover to family of a person who may
        leave only into custody (same rules as ``POST /api/handovers/{id}/approve``:
        not the one who recorded it; station scope by the guard)."""
        from rescue.cases.pages import case_page
        from rescue.escorts.tables import Handover

        values, _files = await read_form(request)
        if not await Handover.exists().where(
            (Handover.id == handover_id) & (Handover.case == case_id)
        ):
            raise NotFound(_handover_missing(handover_id))
        try:
            await services.approve_handover(
                handover_id=handover_id, by=request.user, note=values.get("note", "")[:2000]
            )
        except (Conflict, InvalidInput) as exc:
            return await case_page(
                case_id,
                request,
                form_errors={"approve": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/cases/{case_id}#handovers", status_code=303)

    @post(
        "/handover",
        guards=[allow(Action.escort_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def handover(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Record the handover with the scanned signed sheet (same checks as the API)."""
        from rescue.cases.pages import case_page

        values, files = await read_form(request)
        data, errors = parse(_HandoverFields, values)
        sheet = files.get("sheet")
        if sheet is None:
            errors.setdefault("sheet", _sheet_missing())
        if (
            data is not None
            and data.receiving_party == ReceivingParty.family
            and data.relationship_basis not in (None, RelationshipBasis.confirmed_candidate)
            and files.get("proof") is None
        ):
            errors.setdefault("proof", _proof_missing())
            data = None
        if data is None or sheet is None:
            return await case_page(
                case_id, request, form_errors={"handover": errors}, form_values=values, status=400
            )

        proof = files.get("proof")
        typed_minute = bool(_TYPED_MINUTE.fullmatch(values.get("handed_over_at", "").strip()))

        async def action() -> str:
            form = HandoverForm(sheet=sheet, proof=proof, **msgspec.structs.asdict(data))
            await services.record_handover(
                case_id=case_id,
                form=form,
                sheet=await sheet.read(),
                proof=await proof.read() if proof is not None else None,
                by=request.user,
                store=get_store(),
                limits=get_settings().upload,
                minute_precision=typed_minute,
            )
            return f"/cases/{case_id}#handovers"

        try:
            url = await once(request, values, action)
        except (Conflict, InvalidInput) as exc:
            return await case_page(
                case_id,
                request,
                form_errors={"handover": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=url, status_code=303)

    @get("/handover-sheet.pdf", guards=[allow(Action.handover_read, _DESTINATION)])
    async def sheet(self, case_id: PathId) -> Response[bytes]:
        """The 交接单 to print and sign at the handover (A4 PDF): the person, the
        return plan, and blanks for the receiver's identity and signatures."""
        from rescue.cases.services import get_case
        from rescue.escorts.tables import ReturnPlan

        case = await get_case(case_id=case_id)
        plan = (
            await ReturnPlan.select()
            .where(ReturnPlan.case == case_id)
            .order_by(ReturnPlan.id, ascending=False)
            .first()
        )
        if plan is not None and isinstance(plan["escort_staff"], str):
            plan["escort_staff"] = json.loads(plan["escort_staff"])
        pdf = await render_pdf(
            "escorts/handover_sheet.html", case=case, plan=plan, printed_at=clock.now()
        )
        return Response(
            content=pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="handover-{case.reference}.pdf"'},
        )


def _handover_missing(handover_id: int) -> str:
    from rescue.i18n import _

    return _("handover {handover_id} does not exist", handover_id=handover_id)


def _proof_missing() -> str:
    from rescue.i18n import _

    return _("Attach the proof document (户口簿, 派出所证明 or DNA result) for this basis.")


def _sheet_missing() -> str:
    from rescue.i18n import _

    return _("Upload the signed handover sheet (scan or photo).")


class _ReceptionFields(msgspec.Struct):
    """The reception form's fields (rules in record_reception)."""

    received_at: datetime
    received_by_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    notes: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class HandoverPages(Controller):
    """The handover (交接) page, for the sending station and for the destination
    station, whose staff record the reception (接收) and countersign (会签) there."""

    path = "/handovers/{handover_id:int}"
    include_in_schema = False

    @get("/", guards=[allow(Action.handover_read, _DESTINATION)])
    async def detail(self, handover_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """The handover, the case summary, the plan and the person; the reception
        and countersign forms for staff of the destination station."""
        return await handover_page(handover_id, request)

    @get("/signed-sheet", guards=[allow(Action.handover_read, _DESTINATION)])
    async def signed_sheet(self, handover_id: PathId) -> Response[bytes]:
        """The signed handover sheet's bytes, through the app (permission checked,
        read audited: the route names a handover), so that it opens from any PC
        that reaches the service, never from the object store's address."""
        from rescue.escorts.tables import Handover
        from rescue.i18n import _

        row = (
            await Handover.select(Handover.sheet_object_key, Handover.sheet_media_type)
            .where(Handover.id == handover_id)
            .first()
        )
        if row is None:
            raise NotFound(_("handover {handover_id} does not exist", handover_id=handover_id))
        return private_file(
            await get_store().aget(row["sheet_object_key"]), row["sheet_media_type"]
        )

    @post(
        "/reception",
        guards=[allow(Action.escort_write, _DESTINATION)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def reception(self, handover_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Record the reception (same rules as ``POST /api/handovers/{id}/reception``)."""
        from rescue.errors import PermissionDenied
        from rescue.escorts.schemas import ReceptionCreate

        values, _files = await read_form(request)
        data, errors = parse(_ReceptionFields, values)
        if data is None:
            return await handover_page(
                handover_id, request, form_errors={"reception": errors}, form_values=values
            )
        try:
            await services.record_reception(
                handover_id=handover_id,
                data=ReceptionCreate(**msgspec.structs.asdict(data)),
                by=request.user,
            )
        except (Conflict, InvalidInput, PermissionDenied) as exc:
            return await handover_page(
                handover_id,
                request,
                form_errors={"reception": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/handovers/{handover_id}#countersign", status_code=303)

    @post(
        "/countersign",
        guards=[allow(Action.escort_write, _DESTINATION)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def countersign(self, handover_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Countersign (same rules as ``POST /api/handovers/{id}/countersign``)."""
        from rescue.errors import PermissionDenied

        values, _files = await read_form(request)
        try:
            await services.countersign_handover(
                handover_id=handover_id, by=request.user, note=values.get("note", "")[:2000]
            )
        except (Conflict, InvalidInput, PermissionDenied) as exc:
            return await handover_page(
                handover_id,
                request,
                form_errors={"countersign": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/handovers/{handover_id}", status_code=303)


async def handover_page(
    handover_id: int,
    request: Request[Any, Any, Any],
    *,
    form_errors: dict[str, dict[str, str]] | None = None,
    form_values: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    """The handover page (re-shown with one form's errors and what was typed)."""
    from rescue.permissions import PERMISSIONS
    from rescue.stations.services import case_summary

    user = request.user
    handover = await services.get_handover(handover_id=handover_id, store=get_store())
    summary = await case_summary(case_id=handover.case_id, by=user)
    from rescue.errors import NotFound

    try:
        plan = await services.get_return_plan(
            case_id=handover.case_id,
            with_id_number=user.role in PERMISSIONS[Action.id_number_read],
        )
    except NotFound:
        plan = None
    is_destination = (
        handover.destination_station is not None
        and user.station == handover.destination_station
        and user.role in PERMISSIONS[Action.escort_write]
    )
    return Template(
        template_name="escorts/handover.html",
        context={
            "h": handover,
            "summary": summary,
            "plan": plan,
            "own_station": user.sees_station(summary.station),
            "is_destination": is_destination,
            "form_errors": form_errors or {},
            "form_values": form_values or {},
        },
        status_code=status,
    )


class TaskPages(Controller):
    """Police liaison: mark a task (e.g. 集体户口注销) done from the case page."""

    include_in_schema = False

    @post(
        "/tasks/{task_id:int}/done",
        guards=[allow(Action.task_complete)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def done(self, task_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """As ``POST /api/tasks/{id}/done`` (the note, if typed, goes on the
        timeline); a task already done is shown on the case page, not a 500."""
        from rescue.cases.pages import case_page
        from rescue.escorts.tables import LiaisonTask

        values, _files = await read_form(request)
        row = await LiaisonTask.select(LiaisonTask.case).where(LiaisonTask.id == task_id).first()
        try:
            await services.complete_task(
                task_id=task_id, by=request.user, note=values.get("note", "").strip()[:500]
            )
        except Conflict as exc:
            assert row is not None  # complete_task raised NotFound otherwise
            return await case_page(
                row["case"],
                request,
                form_errors={f"task-{task_id}": {"__all__": exc.detail}},
                status=exc.status_code,
            )
        assert row is not None
        return Redirect(path=f"/cases/{row['case']}#handovers", status_code=303)
