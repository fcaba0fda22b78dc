"""Escort home: return plan → handover record → closing the case; liaison tasks.

Sources: 2014 规程 (离站: 亲属接领 with the receiver's identity checked, 护送返乡
with a handover at the destination, 流出地接回); 2015 意见 (a settled person whose
identity is found returns home; the collective household registration set up
for settlement is cancelled — 集体户口注销 — by the police).
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from media.storage import ObjectStore
from rescue import clock
from rescue.cases import flows
from rescue.cases.events import record_event
from rescue.cases.stay import stay_of
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.documents import stored_document
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.escorts.schemas import (
    HandoverForm,
    HandoverOut,
    PersonOut,
    ReceptionCreate,
    ReturnPlanCreate,
    ReturnPlanOut,
    ReturnPlanRevision,
    TaskOut,
)
from rescue.escorts.tables import (
    Handover,
    LiaisonTask,
    ReceivingParty,
    RelationshipBasis,
    ReturnPlan,
)
from rescue.i18n import _, label
from rescue.settings import UploadSettings
from rescue.users.services import Principal

#: The precision of a time typed on a page (``datetime-local``).
MINUTE = timedelta(minutes=1)

__all__ = [
    "approve_handover",
    "complete_task",
    "countersign_handover",
    "get_handover",
    "get_return_plan",
    "list_tasks",
    "record_handover",
    "record_reception",
    "record_return_plan",
    "revise_return_plan",
]


async def _person(case_id: int, *, with_id_number: bool) -> PersonOut | None:
    """The identity found of ``case_id`` (ID number only ``with_id_number``)."""
    row = await Case.select().where(Case.id == case_id).first()
    if row is None:
        return None
    return PersonOut(
        display_name=row["confirmed_name"] or row["reported_name"] or row["placeholder_name"],
        confirmed_name=row["confirmed_name"],
        id_number=row["id_number"] if with_id_number else None,
        household_registration=row["household_registration"],
        relatives_contact=row["relatives_contact"],
    )


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
        receiving_party=ReceivingParty(r["receiving_party"]) if r.get("receiving_party") else None,
        receiver=r.get("receiver") or "",
        revised_at=r.get("revised_at"),
        destination_station=r["destination_station"],
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
        row = await Case.select(Case.status, Case.station).where(Case.id == case_id).first()
        if row is None:
            raise NotFound(_("case {case_id} does not exist", case_id=case_id))
        if data.destination_station is not None:
            await _check_destination_station(data.destination_station, row["station"])
        if row["status"] != CaseStatus.identified:
            raise Conflict(
                _(
                    "case {case_id} is {status}; a return plan needs an identified case",
                    case_id=case_id,
                    status=label(CaseStatus(row["status"])),
                ),
                current=row["status"],
                allowed=[s.value for s in flows.allowed_next(CaseStatus(row["status"]))],
            )
        stay = await stay_of(case_id=case_id)
        if stay.identified_at is not None:
            stay.check_after(
                data.planned_on, "planned_on", stay.identified_at, _("the identification")
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
                created_at=clock.now(),  # the handover must not precede it
                receiving_party=data.receiving_party.value if data.receiving_party else None,
                receiver=data.receiver.strip(),
                destination_station=data.destination_station,
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
                "receiving_party": data.receiving_party.value if data.receiving_party else None,
                "receiver": data.receiver.strip(),
                "destination_station": data.destination_station,
            },
        )
    plan = await ReturnPlan.select().where(ReturnPlan.case == case_id).first()
    assert plan is not None
    out = _plan_out(plan)
    out.person = await _person(case_id, with_id_number=True)  # staff: escort_write
    return out


_PLAN_FIELDS = (
    "destination",
    "transport",
    "escort_staff",
    "planned_on",
    "receiving_party",
    "receiver",
)


def _plan_values(r: dict[str, Any]) -> dict[str, Any]:
    staff = r["escort_staff"]
    return {
        "destination": r["destination"],
        "transport": r["transport"],
        "escort_staff": json.loads(staff) if isinstance(staff, str) else list(staff),
        "planned_on": r["planned_on"].isoformat(),
        "receiving_party": r.get("receiving_party"),
        "receiver": r.get("receiver") or "",
    }


async def revise_return_plan(
    *, case_id: int, data: ReturnPlanRevision, by: Principal
) -> ReturnPlanOut:
    """Change the return plan of a ``return_planned`` case (a new date, transport,
    escorts, destination or receiving party), with the reason. The row is
    updated (``created_at`` stays the time the plan was first made, which the
    handover must not precede); the timeline gets ``return_plan_revised`` with
    the earlier and the new values (``before``/``after``, changed fields only).

    Raises:
        NotFound: no such case, or the case has no return plan.
        Conflict: the case is not ``return_planned`` (409 with ``current``).
        InvalidInput: ``planned_on`` before the identification's date.
    """
    async with Case._meta.db.transaction():
        row = await Case.select(Case.status).where(Case.id == case_id).first()
        if row is None:
            raise NotFound(_("case {case_id} does not exist", case_id=case_id))
        if row["status"] != CaseStatus.return_planned:
            raise Conflict(
                _(
                    "case {case_id} is {status}; only a return plan of a case in "
                    "return_planned can be changed",
                    case_id=case_id,
                    status=label(CaseStatus(row["status"])),
                ),
                current=row["status"],
            )
        plan = await ReturnPlan.select().where(ReturnPlan.case == case_id).first()
        if plan is None:
            raise NotFound(_("case {case_id} has no return plan", case_id=case_id))
        stay = await stay_of(case_id=case_id)
        if stay.identified_at is not None:
            stay.check_after(
                data.planned_on, "planned_on", stay.identified_at, _("the identification")
            )
        before = _plan_values(plan)
        after = {
            "destination": data.destination.strip(),
            "transport": data.transport.strip(),
            "escort_staff": list(data.escort_staff),
            "planned_on": data.planned_on.isoformat(),
            "receiving_party": data.receiving_party.value if data.receiving_party else None,
            "receiver": data.receiver.strip(),
        }
        changed = [k for k in _PLAN_FIELDS if before[k] != after[k]]
        await ReturnPlan.update(
            {
                ReturnPlan.destination: after["destination"],
                ReturnPlan.transport: after["transport"],
                ReturnPlan.escort_staff: after["escort_staff"],
                ReturnPlan.planned_on: data.planned_on,
                ReturnPlan.receiving_party: after["receiving_party"],
                ReturnPlan.receiver: after["receiver"],
                ReturnPlan.revised_at: clock.now(),
            }
        ).where(ReturnPlan.id == plan["id"])
        await record_event(
            case_id=case_id,
            kind="return_plan_revised",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.reason.strip(),
            data={
                "return_plan_id": plan["id"],
                "before": {k: before[k] for k in changed},
                "after": {k: after[k] for k in changed},
            },
        )
    return await get_return_plan(case_id=case_id, with_id_number=True)  # escort_write


async def _check_destination_station(station: str, own: str) -> None:
    """Raise InvalidInput unless ``station`` is another station using this service."""
    from rescue.stations.services import known_stations

    stations = [s for s in await known_stations() if s != own]
    if station not in stations:
        raise InvalidInput(
            _(
                "destination_station {station!r} is not another station using this service",
                station=station,
            ),
            accepted=stations,
        )


async def get_return_plan(*, case_id: int, with_id_number: bool) -> ReturnPlanOut:
    """A case's return plan with the person (ID number only ``with_id_number``).

    Raises:
        NotFound: no such case, or no plan.
    """
    plan = await ReturnPlan.select().where(ReturnPlan.case == case_id).first()
    if plan is None:
        raise NotFound(_("case {case_id} has no return plan", case_id=case_id))
    out = _plan_out(plan)
    out.person = await _person(case_id, with_id_number=with_id_number)
    return out


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
        relationship_basis=r["relationship_basis"],
        proof_media_type=r["proof_media_type"],
        proof_sha256=r["proof_sha256"],
        recorded_by=r["recorded_by"],
        approved_by=r["approved_by"],
        approved_at=r["approved_at"],
        received_at=r["received_at"],
        received_by_name=r["received_by_name"],
        reception_notes=r["reception_notes"],
        reception_recorded_by=r["reception_recorded_by"],
        countersigned_by=r["countersigned_by"],
        countersigned_at=r["countersigned_at"],
    )


async def _relationship_established(
    *, case_id: int, basis: RelationshipBasis | None, has_proof: bool
) -> None:
    """Raise unless the receiver's relationship is established: a confirmed match
    candidate on the case, or a proof document (户口簿, 派出所证明, DNA result)."""
    from rescue.matching.tables import Candidate, CandidateStatus

    if basis is None:
        raise Conflict(
            _(
                "case {case_id} may leave only into custody: a handover to family needs "
                "the relationship established",
                case_id=case_id,
            ),
            requires="relationship_basis: confirmed_candidate, or household_register, "
            "police_certificate or dna_result with the proof document",
            accepted=[b.value for b in RelationshipBasis],
        )
    if basis == RelationshipBasis.confirmed_candidate:
        confirmed = await Candidate.exists().where(
            (Candidate.case == case_id) & (Candidate.status == CandidateStatus.confirmed.value)
        )
        if not confirmed:
            raise Conflict(
                _("case {case_id} has no confirmed match candidate", case_id=case_id),
                requires="a reviewer's confirmation of a candidate, or a proof document",
            )
    elif not has_proof:
        raise InvalidInput(
            _(
                "relationship_basis {basis} needs the proof document (file part 'proof')",
                basis=label(basis),
            ),
            accepted="multipart file part 'proof': PDF, JPEG, PNG or WebP",
        )


async def record_handover(
    *,
    case_id: int,
    form: HandoverForm,
    sheet: bytes,
    by: Principal,
    store: ObjectStore,
    limits: UploadSettings,
    proof: bytes | None = None,
    minute_precision: bool = False,
) -> HandoverOut:
    """Record a handover with the scanned signed sheet (and the relationship proof,
    if any), stored in the object store and removed again if the record cannot be
    written. It does not close the case: ``POST /api/cases/{id}/transitions`` with
    escorted_home / handed_to_family / collected_by_origin does, and requires this
    record.

    A person who may leave only into custody (rescue.cases.flows.custody_only) is
    handed to family only with the relationship established (``relationship_basis``
    confirmed_candidate, or a proof document); the handover then needs a second
    staff member's approval (:func:`approve_handover`) before the case can close.
    Sources: 未成年人保护法 (2020) art. 2 and 92–96; 2014 规程 (离站, 亲属接领).

    ``handed_over_at`` lies in the stay, not before the identification and not
    before the return plan was recorded (its ``created_at``; the planned date may
    lie after an early handover). ``minute_precision``: the time was typed on a
    page to the minute and stands for that whole minute (a handover typed in the
    minute of the identification is accepted); API times are compared exactly.

    Raises:
        NotFound: no such case.
        Conflict: the case is closed; custody without established relationship.
        InvalidInput: identity document not checked, empty fields, time without
            offset or in the future, or outside the stay; a basis needing proof
            without it; bad sheet or proof (also 413/415, see rescue.documents).
    """
    row = await Case.select().where(Case.id == case_id).first()
    if row is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    if CaseStatus(row["status"]) in TERMINAL_STATUSES:
        raise Conflict(
            _(
                "case {case_id} is closed ({status})",
                case_id=case_id,
                status=label(CaseStatus(row["status"])),
            ),
            current=row["status"],
        )
    if not form.id_document_checked:
        raise InvalidInput(
            _("the receiver's identity document must be checked before a handover"),
            accepted="id_document_checked=true",
        )
    for name in ("receiver_name", "id_document_type", "id_document_number", "place"):
        value = getattr(form, name).strip()
        if not value or len(value) > 300:
            raise InvalidInput(_("{name} must be 1..300 characters", name=name))
    at = form.handed_over_at
    if at.tzinfo is None or at > clock.now():
        raise InvalidInput(
            _("handed_over_at needs a UTC offset and must not be in the future"),
            accepted="ISO 8601 with offset",
        )
    # A minute typed on a page stands for the whole minute (issue 12, trial finding 3).
    last = at + (MINUTE - timedelta(microseconds=1)) if minute_precision else at
    stay = await stay_of(case_id=case_id)
    stay.check_moment(at, "handed_over_at", until=last)
    if stay.identified_at is not None:
        stay.check_after(last, "handed_over_at", stay.identified_at, _("the identification"))
    plan = await ReturnPlan.select(ReturnPlan.created_at).where(ReturnPlan.case == case_id).first()
    if plan is not None:
        # Not before the plan was made (its recorded time), whatever its planned
        # departure date: a family may come before it (issue 12).
        stay.check_after(last, "handed_over_at", plan["created_at"], _("the return plan"))
    basis = form.relationship_basis
    if form.receiving_party != ReceivingParty.family:
        basis = None
    if form.receiving_party == ReceivingParty.family and (
        flows.custody_only(row) or basis is not None
    ):
        await _relationship_established(case_id=case_id, basis=basis, has_proof=bool(proof))
    if basis == RelationshipBasis.confirmed_candidate:
        proof = None
    async with AsyncExitStack() as stack:
        doc = await stack.enter_async_context(
            stored_document(data=sheet, store=store, limits=limits)
        )
        proof_doc = (
            await stack.enter_async_context(stored_document(data=proof, store=store, limits=limits))
            if proof
            else None
        )
        await stack.enter_async_context(Handover._meta.db.transaction())
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
                relationship_basis=basis.value if basis else None,
                proof_object_key=proof_doc.object_key if proof_doc else None,
                proof_media_type=proof_doc.media_type if proof_doc else None,
                proof_sha256=proof_doc.sha256 if proof_doc else None,
            )
        ).returning(Handover.id)
        await record_event(
            case_id=case_id,
            kind="handover_recorded",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=_(
                "handed over to {party} at {place}",
                party=label(form.receiving_party),
                place=form.place.strip(),
            ),
            data={
                "handover_id": rows[0]["id"],
                "receiving_party": form.receiving_party.value,
                "receiver_name": form.receiver_name.strip(),
                "id_document_type": form.id_document_type.strip(),
                "handed_over_at": clock.iso_utc(at),
                "relationship_basis": basis.value if basis else None,
                "proof_sha256": proof_doc.sha256 if proof_doc else None,
            },
        )
    return await get_handover(handover_id=int(rows[0]["id"]))


async def approve_handover(*, handover_id: int, by: Principal, note: str = "") -> HandoverOut:
    """A second staff member approves a handover (four-eyes rule for a person who
    may leave only into custody; 未成年人保护法 art. 92–96, our reading).

    Raises:
        NotFound: no such handover.
        Conflict: already approved; the approver recorded the handover; a handover
            to family without an established relationship; the case is closed.
    """
    async with Handover._meta.db.transaction():
        row = await Handover.select().where(Handover.id == handover_id).first()
        if row is None:
            raise NotFound(_("handover {handover_id} does not exist", handover_id=handover_id))
        case = await Case.select(Case.status).where(Case.id == row["case"]).first()
        assert case is not None
        if CaseStatus(case["status"]) in TERMINAL_STATUSES:
            raise Conflict(
                _(
                    "case {case_id} is closed ({status})",
                    case_id=row["case"],
                    status=label(CaseStatus(case["status"])),
                ),
                current=case["status"],
            )
        if row["approved_by"] is not None:
            raise Conflict(_("handover {handover_id} is already approved", handover_id=handover_id))
        if row["recorded_by"] == by.user_id:
            raise Conflict(
                _(
                    "handover {handover_id} must be approved by a second staff member, "
                    "not the one who recorded it",
                    handover_id=handover_id,
                ),
                requires="another station_staff or admin account",
            )
        if row["receiving_party"] == ReceivingParty.family and row["relationship_basis"] is None:
            raise Conflict(
                _(
                    "handover {handover_id} to family has no established relationship; "
                    "record a new handover with its basis",
                    handover_id=handover_id,
                )
            )
        await Handover.update(
            {Handover.approved_by: by.user_id, Handover.approved_at: clock.now()}
        ).where(Handover.id == handover_id)
        await record_event(
            case_id=row["case"],
            kind="handover_approved",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=note,
            data={"handover_id": handover_id, "recorded_by": row["recorded_by"]},
        )
    return await get_handover(handover_id=handover_id)


async def handovers_to_approve(
    *, stations: list[str] | None, user_id: int | None
) -> list[dict[str, Any]]:
    """Handovers to family of people who may leave only into custody, with the
    relationship basis recorded, not yet approved, of open cases of ``stations``
    (None: all), recorded by someone else than ``user_id`` (the four-eyes rule of
    :func:`approve_handover`), oldest first: ``{"id", "case_id",
    "case_reference", "receiver_name", "relationship_basis", "handed_over_at"}``.
    """
    query = (
        Handover.select(
            Handover.id,
            Handover.case,
            Handover.receiver_name,
            Handover.relationship_basis,
            Handover.handed_over_at,
            Handover.recorded_by,
        )
        .where(
            (Handover.receiving_party == ReceivingParty.family.value)
            & Handover.relationship_basis.is_not_null()
            & Handover.approved_by.is_null()
            & Handover.case.status.not_in([s.value for s in TERMINAL_STATUSES])
        )
        .order_by(Handover.id)
    )
    if stations is not None:
        query = query.where(Handover.case.station.is_in(stations or [""]))
    out = []
    for r in await query:
        if user_id is not None and r["recorded_by"] == user_id:
            continue
        case = await Case.select().where(Case.id == r["case"]).first()
        if case is None or not flows.custody_only(case):
            continue
        out.append(
            {
                "id": r["id"],
                "case_id": r["case"],
                "case_reference": case["reference"],
                "receiver_name": r["receiver_name"],
                "relationship_basis": r["relationship_basis"],
                "handed_over_at": r["handed_over_at"],
            }
        )
    return out


async def get_handover(*, handover_id: int, store: ObjectStore | None = None) -> HandoverOut:
    """A handover record and (with ``store``) a presigned URL of its sheet."""
    row = await Handover.select().where(Handover.id == handover_id).first()
    if row is None:
        raise NotFound(_("handover {handover_id} does not exist", handover_id=handover_id))
    out = _handover_out(row)
    out.person = await _person(row["case"], with_id_number=True)  # handover_read roles
    out.destination_station = await _destination_station(row["case"])
    if store is not None:
        out.sheet_url = await store.apresigned_url(row["sheet_object_key"])
        out.sheet_url_expires_in = store.presign_seconds
        if row["proof_object_key"]:
            out.proof_url = await store.apresigned_url(row["proof_object_key"])
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
    person = await _person(case_id, with_id_number=True)
    outs = [_handover_out(r) for r in rows]
    destination = await _destination_station(case_id)
    for out in outs:
        out.person = person
        out.destination_station = destination
    return outs


async def _destination_station(case_id: int) -> str | None:
    plan = (
        await ReturnPlan.select(ReturnPlan.destination_station)
        .where(ReturnPlan.case == case_id)
        .first()
    )
    return plan["destination_station"] if plan else None


async def _for_destination(handover_id: int, by: Principal) -> tuple[dict[str, Any], str]:
    """The handover row and its destination station; refuses any caller who is
    not staff of that station (A cannot receive or countersign for B).

    Raises:
        NotFound: no such handover.
        Conflict: no destination station on the plan; the case is closed.
        PermissionDenied: the caller is not of the destination station.
    """
    from rescue.errors import PermissionDenied

    row = await Handover.select().where(Handover.id == handover_id).first()
    if row is None:
        raise NotFound(_("handover {handover_id} does not exist", handover_id=handover_id))
    destination = await _destination_station(row["case"])
    if destination is None:
        raise Conflict(
            _(
                "case {case_id} has no destination station on its return plan",
                case_id=row["case"],
            ),
            requires="a return plan with destination_station",
        )
    if by.station != destination:
        raise PermissionDenied(
            _(
                "only staff of the destination station {station} may do this",
                station=destination,
            ),
            accepted=[destination],
        )
    case = await Case.select(Case.status).where(Case.id == row["case"]).first()
    assert case is not None
    if CaseStatus(case["status"]) in TERMINAL_STATUSES:
        raise Conflict(
            _(
                "case {case_id} is closed ({status})",
                case_id=row["case"],
                status=label(CaseStatus(case["status"])),
            ),
            current=case["status"],
        )
    return row, destination


async def record_reception(
    *, handover_id: int, data: ReceptionCreate, by: Principal
) -> HandoverOut:
    """The destination station records the reception (接收): when, by whom, notes.
    A ``handover_received`` event goes on the timeline. Sources (our reading):
    2003 细则 and 2014 规程 护送返乡 (交接 at the destination, received there).

    Raises:
        NotFound: no such handover.
        PermissionDenied: the caller is not staff of the destination station.
        Conflict: already received; the case is closed; no destination station.
        InvalidInput: received_at in the future or before the handover.
    """
    async with Handover._meta.db.transaction():
        row, destination = await _for_destination(handover_id, by)
        if row["received_at"] is not None:
            raise Conflict(
                _("handover {handover_id} was already received", handover_id=handover_id)
            )
        at = data.received_at
        if at > clock.now():
            raise InvalidInput(
                _("received_at must not be in the future"), accepted="ISO 8601 with offset"
            )
        stay = await stay_of(case_id=row["case"])
        stay.check_after(at, "received_at", row["handed_over_at"], _("the handover"))
        await Handover.update(
            {
                Handover.received_at: at,
                Handover.received_by_name: data.received_by_name.strip(),
                Handover.reception_notes: data.notes.strip(),
                Handover.reception_recorded_by: by.user_id,
            }
        ).where(Handover.id == handover_id)
        await record_event(
            case_id=row["case"],
            kind="handover_received",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.notes.strip(),
            data={
                "handover_id": handover_id,
                "station": destination,
                "received_at": clock.iso_utc(at),
                "received_by_name": data.received_by_name.strip(),
            },
        )
    return await get_handover(handover_id=handover_id)


async def countersign_handover(*, handover_id: int, by: Principal, note: str = "") -> HandoverOut:
    """The destination station's staff member countersigns the handover (会签):
    a second signature record, with the time. Needs the reception recorded first.
    When the destination is a station using this service, the case closes only
    after this (rescue.cases.flows). A ``handover_countersigned`` event.

    Raises:
        NotFound: no such handover.
        PermissionDenied: the caller is not staff of the destination station.
        Conflict: already countersigned; reception not recorded; case closed.
    """
    async with Handover._meta.db.transaction():
        row, destination = await _for_destination(handover_id, by)
        if row["countersigned_at"] is not None:
            raise Conflict(
                _("handover {handover_id} is already countersigned", handover_id=handover_id)
            )
        if row["received_at"] is None:
            raise Conflict(
                _(
                    "handover {handover_id}: record the reception before countersigning",
                    handover_id=handover_id,
                ),
                requires=f"POST /api/handovers/{handover_id}/reception",
            )
        now = clock.now()
        await Handover.update(
            {
                Handover.countersigned_by: by.user_id,
                Handover.countersigned_at: now,
                Handover.countersign_station: destination,
            }
        ).where(Handover.id == handover_id)
        await record_event(
            case_id=row["case"],
            kind="handover_countersigned",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=note,
            data={"handover_id": handover_id, "station": destination},
        )
    return await get_handover(handover_id=handover_id)


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
    outs = [_task_out(r) for r in await query.order_by(LiaisonTask.id)]
    for out in outs:
        out.person = await _person(out.case_id, with_id_number=False)
    return outs


async def complete_task(*, task_id: int, by: Principal, note: str = "") -> TaskOut:
    """Mark a task done (e.g. household registration cancelled).

    Raises:
        NotFound: no such task.
        Conflict: already done.
    """
    async with LiaisonTask._meta.db.transaction():
        row = await LiaisonTask.select().where(LiaisonTask.id == task_id).first()
        if row is None:
            raise NotFound(_("task {task_id} does not exist", task_id=task_id))
        if row["done_at"] is not None:
            raise Conflict(
                _(
                    "task {task_id} was already done at {done_at}",
                    task_id=task_id,
                    done_at=row["done_at"].isoformat(),
                )
            )
        await LiaisonTask.update(
            {LiaisonTask.done_at: clock.now(), LiaisonTask.done_by: by.user_id}
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
