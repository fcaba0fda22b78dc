"""Escort home: return plan → handover record → closing the case; liaison tasks.

Sources: 2014 规程 (离站: 亲属接领 with the receiver's identity checked, 护送返乡
with a handover at the destination, 流出地接回); 2015 意见 (a settled person whose
identity is found returns home; the collective household registration set up
for settlement is cancelled — 集体户口注销 — by the police).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from media.storage import ObjectStore
from rescue.cases import flows
from rescue.cases.events import record_event
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.documents import stored_document
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.escorts.schemas import (
    HandoverForm,
    HandoverOut,
    ReturnPlanCreate,
    ReturnPlanOut,
    TaskOut,
)
from rescue.escorts.tables import Handover, LiaisonTask, ReturnPlan
from rescue.settings import UploadSettings
from rescue.users.services import Principal

__all__ = ["complete_task", "get_handover", "list_tasks", "record_handover", "record_return_plan"]


def _plan_out(r: dict[str, Any]) -> ReturnPlanOut:
    staff = r["escort_staff"]
    return ReturnPlanOut(
        id=r["id"],
        case_id=r["case"],
        destination=r["destination"],
        transport=r["transport"],
        escort_staff=json.loads(staff) if isinstance(staff, str) else list(staff),
        planned_on=r["planned_on"],
        created_at=r["created_at"],
    )


async def record_return_plan(
    *, case_id: int, data: ReturnPlanCreate, by: Principal
) -> ReturnPlanOut:
    """Record the return plan of an identified person and move the case to
    ``return_planned`` (same transaction).

    Raises:
        NotFound: no such case.
        Conflict: the case is not ``identified`` (409 with current/allowed).
        PermissionDenied: the role may not plan returns.
    """
    async with Case._meta.db.transaction():
        row = await Case.select(Case.status).where(Case.id == case_id).first()
        if row is None:
            raise NotFound(f"case {case_id} does not exist")
        if row["status"] != CaseStatus.identified:
            raise Conflict(
                f"case {case_id} is {row['status']}; a return plan needs an identified case",
                current=row["status"],
                allowed=[s.value for s in flows.allowed_next(CaseStatus(row["status"]))],
            )
        await ReturnPlan.delete().where(ReturnPlan.case == case_id)
        staff = list(data.escort_staff)
        rows = await ReturnPlan.insert(
            ReturnPlan(
                case=case_id,
                destination=data.destination,
                transport=data.transport,
                escort_staff=staff,
                planned_on=data.planned_on,
                created_by=by.user_id,
            )
        ).returning(ReturnPlan.id)
        await flows.transition(
            case_id=case_id,
            to=CaseStatus.return_planned,
            by=by,
            reason=data.reason or f"return to {data.destination} on {data.planned_on}",
            data={
                "return_plan_id": rows[0]["id"],
                "destination": data.destination,
                "transport": data.transport,
                "escort_staff": staff,
                "planned_on": data.planned_on.isoformat(),
            },
        )
    plan = await ReturnPlan.select().where(ReturnPlan.case == case_id).first()
    assert plan is not None
    return _plan_out(plan)


def _handover_out(r: dict[str, Any]) -> HandoverOut:
    return HandoverOut(
        id=r["id"],
        case_id=r["case"],
        receiving_party=r["receiving_party"],
        receiver_name=r["receiver_name"],
        relationship=r["relationship"],
        id_document_type=r["id_document_type"],
        id_document_number=r["id_document_number"],
        id_document_checked=r["id_document_checked"],
        handed_over_at=r["handed_over_at"],
        place=r["place"],
        sheet_media_type=r["sheet_media_type"],
        sheet_sha256=r["sheet_sha256"],
        created_at=r["created_at"],
    )


async def record_handover(
    *,
    case_id: int,
    form: HandoverForm,
    sheet: bytes,
    by: Principal,
    store: ObjectStore,
    limits: UploadSettings,
) -> HandoverOut:
    """Record a handover with the scanned signed sheet (stored in the object store;
    removed again if the record cannot be written). It does not close the case:
    ``POST /api/cases/{id}/transitions`` with escorted_home / handed_to_family /
    collected_by_origin does, and requires this record.

    Raises:
        NotFound: no such case.
        Conflict: the case is closed.
        InvalidInput: identity document not checked, empty fields, time without
            offset or in the future; bad sheet (also 413/415, see rescue.documents).
    """
    row = await Case.select(Case.status).where(Case.id == case_id).first()
    if row is None:
        raise NotFound(f"case {case_id} does not exist")
    if CaseStatus(row["status"]) in TERMINAL_STATUSES:
        raise Conflict(f"case {case_id} is closed ({row['status']})", current=row["status"])
    if not form.id_document_checked:
        raise InvalidInput(
            "the receiver's identity document must be checked before a handover",
            accepted="id_document_checked=true",
        )
    for name in ("receiver_name", "id_document_type", "id_document_number", "place"):
        value = getattr(form, name).strip()
        if not value or len(value) > 300:
            raise InvalidInput(f"{name} must be 1..300 characters")
    at = form.handed_over_at
    if at.tzinfo is None or at > datetime.now(UTC):
        raise InvalidInput(
            "handed_over_at needs a UTC offset and must not be in the future",
            accepted="ISO 8601 with offset",
        )
    async with (
        stored_document(data=sheet, store=store, limits=limits) as doc,
        Handover._meta.db.transaction(),
    ):
        rows = await Handover.insert(
            Handover(
                case=case_id,
                receiving_party=form.receiving_party.value,
                receiver_name=form.receiver_name.strip(),
                relationship=form.relationship.strip()[:100],
                id_document_type=form.id_document_type.strip()[:50],
                id_document_number=form.id_document_number.strip()[:50],
                id_document_checked=True,
                handed_over_at=at,
                place=form.place.strip(),
                sheet_object_key=doc.object_key,
                sheet_media_type=doc.media_type,
                sheet_sha256=doc.sha256,
                recorded_by=by.user_id,
            )
        ).returning(Handover.id)
        await record_event(
            case_id=case_id,
            kind="handover_recorded",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=f"handed over to {form.receiving_party.value} at {form.place.strip()}",
            data={
                "handover_id": rows[0]["id"],
                "receiving_party": form.receiving_party.value,
                "receiver_name": form.receiver_name.strip(),
                "id_document_type": form.id_document_type.strip(),
                "handed_over_at": at.isoformat(),
            },
        )
    return await get_handover(handover_id=int(rows[0]["id"]))


async def get_handover(*, handover_id: int, store: ObjectStore | None = None) -> HandoverOut:
    """A handover record and (with ``store``) a presigned URL of its sheet."""
    row = await Handover.select().where(Handover.id == handover_id).first()
    if row is None:
        raise NotFound(f"handover {handover_id} does not exist")
    out = _handover_out(row)
    if store is not None:
        out.sheet_url = await store.apresigned_url(row["sheet_object_key"])
        out.sheet_url_expires_in = store.presign_seconds
    return out


async def list_handovers(*, case_id: int) -> list[HandoverOut]:
    """A case's handover records, oldest first.

    Raises:
        NotFound: no such case.
    """
    from rescue.i18n import _

    if not await Case.exists().where(Case.id == case_id):
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    rows = await Handover.select().where(Handover.case == case_id).order_by(Handover.id)
    return [_handover_out(r) for r in rows]


def _task_out(r: dict[str, Any]) -> TaskOut:
    return TaskOut(
        id=r["id"],
        case_id=r["case"],
        kind=r["kind"],
        assigned_role=r["assigned_role"],
        note=r["note"],
        created_at=r["created_at"],
        done_at=r["done_at"],
        done_by=r["done_by"],
    )


async def list_tasks(
    *, open_only: bool = True, case_id: int | None = None, stations: list[str] | None = None
) -> list[TaskOut]:
    """Police-liaison tasks, oldest first; only of cases of ``stations`` (None: all)."""
    query = LiaisonTask.select()
    if stations is not None:
        query = query.where(LiaisonTask.case.station.is_in(stations or [""]))
    if open_only:
        query = query.where(LiaisonTask.done_at.is_null())
    if case_id is not None:
        query = query.where(LiaisonTask.case == case_id)
    return [_task_out(r) for r in await query.order_by(LiaisonTask.id)]


async def complete_task(*, task_id: int, by: Principal, note: str = "") -> TaskOut:
    """Mark a task done (e.g. household registration cancelled).

    Raises:
        NotFound: no such task.
        Conflict: already done.
    """
    async with LiaisonTask._meta.db.transaction():
        row = await LiaisonTask.select().where(LiaisonTask.id == task_id).first()
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        if row["done_at"] is not None:
            raise Conflict(f"task {task_id} was already done at {row['done_at'].isoformat()}")
        await LiaisonTask.update(
            {LiaisonTask.done_at: datetime.now(UTC), LiaisonTask.done_by: by.user_id}
        ).where(LiaisonTask.id == task_id)
        await record_event(
            case_id=row["case"],
            kind="task_done",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=note or row["kind"],
            data={"task_id": task_id, "task": row["kind"]},
        )
    done = await LiaisonTask.select().where(LiaisonTask.id == task_id).first()
    assert done is not None
    return _task_out(done)
