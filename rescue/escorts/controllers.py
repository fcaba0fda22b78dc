"""HTTP routes for escort home: return plan, handover, police-liaison tasks."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.params import FromQuery, JSONBody, MultipartBody

from rescue.escorts import services
from rescue.escorts.schemas import (
    Countersignature,
    HandoverApproval,
    HandoverForm,
    HandoverOut,
    ReceptionCreate,
    ReturnPlanCreate,
    ReturnPlanOut,
    ReturnPlanRevision,
    TaskOut,
)
from rescue.permissions import Action, Participation, allow
from rescue.runtime import get_store
from rescue.schemas import PathId, QueryId
from rescue.settings import get_settings

#: The destination station of the return plan takes part (rescue.stations).
_DESTINATION = (Participation.destination_station,)


class EscortController(Controller):
    path = "/api"
    tags = ("escort home",)

    @post(
        "/cases/{case_id:int}/return-plan",
        summary="Record the return plan; the case becomes return_planned",
        guards=[allow(Action.escort_write)],
    )
    async def return_plan(
        self,
        case_id: PathId,
        data: JSONBody[ReturnPlanCreate],
        request: Request[Any, Any, Any],
    ) -> ReturnPlanOut:
        """Destination, transport, escorting staff, date. 201; 409 case not identified
        (body ``current``/``allowed``); 404 case."""
        return await services.record_return_plan(case_id=case_id, data=data, by=request.user)

    @put(
        "/cases/{case_id:int}/return-plan",
        summary="Change the return plan (reason required); the case stays return_planned",
        guards=[allow(Action.escort_write)],
    )
    async def revise_return_plan(
        self,
        case_id: PathId,
        data: JSONBody[ReturnPlanRevision],
        request: Request[Any, Any, Any],
    ) -> ReturnPlanOut:
        """All fields of the plan as they are now, and ``reason``. 200; 409 case not
        return_planned (body ``current``); 400 bad field or date before the
        identification; 404 case or plan. A ``return_plan_revised`` timeline event
        keeps the earlier values."""
        return await services.revise_return_plan(case_id=case_id, data=data, by=request.user)

    @post(
        "/cases/{case_id:int}/handover",
        summary="Record the handover (交接) with the signed sheet",
        guards=[allow(Action.escort_write)],
    )
    async def handover(
        self,
        case_id: PathId,
        data: MultipartBody[HandoverForm],
        request: Request[Any, Any, Any],
    ) -> HandoverOut:
        """Multipart: ``sheet`` file plus the receiver's details (see HandoverForm),
        and ``proof`` (relationship proof) where needed. Closing as escorted_home /
        handed_to_family / collected_by_origin requires it. 201; 400 identity
        document not checked, bad field or missing proof; 413/415 sheet; 409 case
        closed or custody without established relationship; 404 case."""
        return await services.record_handover(
            case_id=case_id,
            form=data,
            sheet=await data.sheet.read(),
            proof=await data.proof.read() if data.proof is not None else None,
            by=request.user,
            store=get_store(),
            limits=get_settings().upload,
        )

    @post(
        "/handovers/{handover_id:int}/approve",
        status_code=200,
        summary="A second staff member approves a handover (custody)",
        guards=[allow(Action.escort_write)],
    )
    async def approve(
        self,
        handover_id: PathId,
        data: JSONBody[HandoverApproval],
        request: Request[Any, Any, Any],
    ) -> HandoverOut:
        """Required before a person who may leave only into custody is handed to
        family. 409 same person who recorded it, already approved, no established
        relationship, case closed; 404 unknown."""
        return await services.approve_handover(
            handover_id=handover_id, by=request.user, note=data.note
        )

    @get(
        "/handovers/{handover_id:int}",
        summary="A handover record with a short-lived URL of its sheet",
        guards=[allow(Action.handover_read, _DESTINATION)],
    )
    async def handover_detail(self, handover_id: PathId) -> HandoverOut:
        """404 if unknown."""
        return await services.get_handover(handover_id=handover_id, store=get_store())

    @get(
        "/cases/{case_id:int}/handovers",
        summary="A case's handover records",
        guards=[allow(Action.handover_read, _DESTINATION)],
    )
    async def handovers(self, case_id: PathId) -> list[HandoverOut]:
        """The case's handover records (交接单), oldest first. 404 unknown case."""
        return await services.list_handovers(case_id=case_id)

    @get(
        "/cases/{case_id:int}/return-plan",
        summary="The case's return plan, with the person",
        guards=[allow(Action.handover_read, _DESTINATION)],
    )
    async def return_plan_detail(
        self, case_id: PathId, request: Request[Any, Any, Any]
    ) -> ReturnPlanOut:
        """For the case's station and the plan's destination station; the 身份证号
        only for roles that read it (``id_number_read``). Audited. 404 no plan."""
        from rescue.permissions import PERMISSIONS

        return await services.get_return_plan(
            case_id=case_id,
            with_id_number=request.user.role in PERMISSIONS[Action.id_number_read],
        )

    @post(
        "/handovers/{handover_id:int}/reception",
        status_code=200,
        summary="The destination station records the reception (接收)",
        guards=[allow(Action.escort_write, _DESTINATION)],
    )
    async def reception(
        self,
        handover_id: PathId,
        data: JSONBody[ReceptionCreate],
        request: Request[Any, Any, Any],
    ) -> HandoverOut:
        """Only staff of the plan's destination station. 400 time in the future or
        before the handover; 403 another station; 409 already received, case
        closed, no destination station; 404 unknown."""
        return await services.record_reception(handover_id=handover_id, data=data, by=request.user)

    @post(
        "/handovers/{handover_id:int}/countersign",
        status_code=200,
        summary="The destination station countersigns the handover (会签)",
        guards=[allow(Action.escort_write, _DESTINATION)],
    )
    async def countersign(
        self,
        handover_id: PathId,
        data: JSONBody[Countersignature],
        request: Request[Any, Any, Any],
    ) -> HandoverOut:
        """Only staff of the plan's destination station, after the reception; the
        case closes as escorted_home / collected_by_origin only after it. 403
        another station (the sending station cannot countersign for it); 409
        already countersigned, no reception, case closed; 404 unknown."""
        return await services.countersign_handover(
            handover_id=handover_id, by=request.user, note=data.note
        )

    @get("/tasks", summary="Police-liaison tasks", guards=[allow(Action.task_read)])
    async def tasks(
        self,
        request: Request[Any, Any, Any],
        open_only: FromQuery[bool] = True,
        case_id: QueryId = None,
    ) -> list[TaskOut]:
        """E.g. cancel the collective household registration (集体户口注销); only
        tasks of cases of the stations the caller sees."""
        return await services.list_tasks(
            open_only=open_only, case_id=case_id, stations=request.user.visible_stations()
        )

    @post(
        "/tasks/{task_id:int}/done",
        status_code=200,
        summary="Mark a liaison task done",
        guards=[allow(Action.task_complete)],
    )
    async def task_done(self, task_id: PathId, request: Request[Any, Any, Any]) -> TaskOut:
        """409 already done; 404 unknown."""
        return await services.complete_task(task_id=task_id, by=request.user)
