"""Placements: periods at a facility that never overlap; the current one is the open one.

Sources: 2015 意见 (照料安置: in-station care, designated hospitals for the sick and
for mental disorders, outsourced care 站外托养 under contract, welfare homes for
settlement). A hospital stay does not change the case status; settlement
(``settled``) requires a current welfare-home placement (rescue.cases.flows).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine

from media.storage import ObjectStore
from rescue import clock
from rescue.cases.events import record_event
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.documents import stored_document
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.i18n import _, label
from rescue.placements.schemas import (
    DocumentOut,
    PlacementCreate,
    PlacementEnd,
    PlacementList,
    PlacementOut,
    SettlementApprovalOut,
)
from rescue.placements.tables import (
    Placement,
    PlacementDocument,
    PlacementKind,
    SettlementApproval,
)
from rescue.settings import UploadSettings
from rescue.users.services import Principal

__all__ = [
    "add_document",
    "create_placement",
    "end_placement",
    "get_document",
    "list_placements",
    "record_settlement_approval",
    "start_in_station",
]


async def _case_in_care(case_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The case row; with ``lock`` (inside a transaction, PostgreSQL) it is locked
    FOR UPDATE so concurrent placement writes for one case run one after the other
    (SQLite serialises writers by itself and has no row locks)."""
    query = Case.select(Case.id, Case.status, Case.station, Case.admitted_at).where(
        Case.id == case_id
    )
    if lock and not isinstance(Case._meta.db, SQLiteEngine):
        query = query.lock_rows()
    row = await query.first()
    if row is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    if CaseStatus(row["status"]) in TERMINAL_STATUSES:
        raise Conflict(
            _(
                "case {case_id} is closed ({status}); placements cannot change",
                case_id=case_id,
                status=label(CaseStatus(row["status"])),
            ),
            current=row["status"],
        )
    return row


def _local(moment: datetime) -> str:
    """A moment as the station's local date and time (for messages)."""
    return clock.local(moment).strftime("%Y-%m-%d %H:%M")


def _doc_out(d: dict[str, Any]) -> DocumentOut:
    return DocumentOut(
        id=d["id"],
        placement_id=d["placement"],
        title=d["title"],
        media_type=d["media_type"],
        size_bytes=d["size_bytes"],
        sha256=d["sha256"],
        created_at=d["created_at"],
    )


def _out(p: dict[str, Any], docs: list[DocumentOut]) -> PlacementOut:
    return PlacementOut(
        id=p["id"],
        case_id=p["case"],
        kind=p["kind"],
        facility=p["facility"],
        reason=p["reason"],
        responsible_contact=p["responsible_contact"],
        contract_reference=p["contract_reference"],
        started_at=p["started_at"],
        ended_at=p["ended_at"],
        current=p["ended_at"] is None,
        documents=docs,
        entered_later=bool(p.get("entered_later")),
        created_by=p.get("created_by"),
        created_at=p.get("created_at"),
    )


async def start_in_station(
    *, case_id: int, station: str, at: datetime, by: Principal, entered_later: bool = False
) -> None:
    """The first placement of a new case: in the station itself (站内照料), from
    the admission ``at``. Called inside the admission transaction."""
    await Placement.insert(
        Placement(
            case=case_id,
            kind=PlacementKind.in_station.value,
            facility=station or "station",
            reason="admission",
            started_at=at,
            created_by=by.user_id,
            entered_later=entered_later,
        )
    )


async def create_placement(*, case_id: int, data: PlacementCreate, by: Principal) -> PlacementOut:
    """Record a placement period.

    A new open-ended placement starting after the current one's start ends the
    current one at its start (a move, recorded on the timeline). Any other
    overlap with an existing period is refused.

    Raises:
        NotFound: no such case.
        InvalidInput: ``ended_at`` not after ``started_at``; ``outsourced_care``
            without ``contract_reference``; a start in the future or before admission.
        Conflict: the case is closed, or the period overlaps another (409, naming
            the overlapping placement).
    """
    now = clock.now()
    start = data.started_at or now
    end = data.ended_at
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise InvalidInput(_("started_at and ended_at need a UTC offset"), accepted=_("ISO 8601"))
    if end is not None and end <= start:
        raise InvalidInput(_("ended_at must be after started_at"))
    if start > now:
        raise InvalidInput(_("started_at is in the future"), accepted=_("a moment up to now"))
    if data.kind == PlacementKind.outsourced_care and not data.contract_reference.strip():
        raise InvalidInput(
            _("outsourced care (站外托养) needs the contract reference"),
            accepted=_("contract_reference: the care agreement's number"),
        )
    async with Case._meta.db.transaction():
        case = await _case_in_care(case_id, lock=True)
        if start < case["admitted_at"]:
            raise InvalidInput(
                _(
                    "started_at is before the admission ({admitted_at})",
                    admitted_at=_local(case["admitted_at"]),
                ),
                accepted=_("a start at or after admission"),
            )
        existing = await Placement.select().where(Placement.case == case_id)
        moved: dict[str, Any] | None = None
        for p in existing:
            p_end = p["ended_at"]
            if p_end is None and end is None and p["started_at"] < start:
                moved = p  # ends when the new one starts
                continue
            if p["started_at"] < (end or datetime.max.replace(tzinfo=UTC)) and (
                p_end is None or p_end > start
            ):
                raise Conflict(
                    _(
                        "the period overlaps placement {placement_id} ({kind} at {facility}, "
                        "{start} – {end})",
                        placement_id=p["id"],
                        kind=label(PlacementKind(p["kind"])),
                        facility=p["facility"],
                        start=_local(p["started_at"]),
                        end=_local(p_end) if p_end else _("now"),
                    ),
                    placement_id=p["id"],
                    accepted=_("a period that overlaps no other placement of the case"),
                )
        if moved is not None:
            await Placement.update({Placement.ended_at: start}).where(Placement.id == moved["id"])
            await record_event(
                case_id=case_id,
                kind="placement_ended",
                actor_id=by.user_id,
                actor_role=by.role.value,
                reason=f"moved to {data.kind.value} at {data.facility}",
                data={"placement_id": moved["id"], "ended_at": clock.iso_utc(start)},
            )
        rows = await Placement.insert(
            Placement(
                case=case_id,
                kind=data.kind.value,
                facility=data.facility,
                reason=data.reason,
                responsible_contact=data.responsible_contact,
                contract_reference=data.contract_reference,
                started_at=start,
                ended_at=end,
                created_by=by.user_id,
            )
        ).returning(Placement.id)
        placement_id = int(rows[0]["id"])
        await record_event(
            case_id=case_id,
            kind="placement_started",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.reason,
            data={
                "placement_id": placement_id,
                "kind": data.kind.value,
                "facility": data.facility,
                "started_at": clock.iso_utc(start),
                "ended_at": clock.iso_utc(end) if end else None,
            },
        )
    return await get_placement(placement_id=placement_id)


async def end_placement(*, placement_id: int, data: PlacementEnd, by: Principal) -> PlacementOut:
    """End the current placement (e.g. discharged and back in the station is a new
    ``in_station`` placement instead; this is for a stay that just ends).

    Raises:
        NotFound: no such placement.
        Conflict: already ended.
        InvalidInput: ``ended_at`` not after the start, or in the future.
    """
    row = await Placement.select().where(Placement.id == placement_id).first()
    if row is None:
        raise NotFound(_("placement {placement_id} does not exist", placement_id=placement_id))
    if row["ended_at"] is not None:
        raise Conflict(
            _(
                "placement {placement_id} already ended at {ended_at}",
                placement_id=placement_id,
                ended_at=_local(row["ended_at"]),
            )
        )
    end = data.ended_at or clock.now()
    if end.tzinfo is None or end <= row["started_at"] or end > clock.now():
        raise InvalidInput(
            _("ended_at must be after the placement's start and not in the future"),
            accepted=_("ISO 8601 with offset"),
        )
    async with Placement._meta.db.transaction():
        await Placement.update({Placement.ended_at: end}).where(Placement.id == placement_id)
        await record_event(
            case_id=row["case"],
            kind="placement_ended",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.reason,
            data={"placement_id": placement_id, "ended_at": clock.iso_utc(end)},
        )
    return await get_placement(placement_id=placement_id)


async def get_placement(*, placement_id: int) -> PlacementOut:
    """One placement with its documents. Raises NotFound."""
    row = await Placement.select().where(Placement.id == placement_id).first()
    if row is None:
        raise NotFound(_("placement {placement_id} does not exist", placement_id=placement_id))
    docs = (
        await PlacementDocument.select()
        .where(PlacementDocument.placement == placement_id)
        .order_by(PlacementDocument.id)
    )
    return _out(row, [_doc_out(d) for d in docs])


async def list_placements(*, case_id: int) -> PlacementList:
    """A case's placements, oldest first. Raises NotFound."""
    if not await Case.exists().where(Case.id == case_id):
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    rows = await Placement.select().where(Placement.case == case_id).order_by(Placement.started_at)
    docs = (
        await PlacementDocument.select()
        .where(PlacementDocument.placement.is_in([r["id"] for r in rows] or [0]))
        .order_by(PlacementDocument.id)
    )
    items = [_out(r, [_doc_out(d) for d in docs if d["placement"] == r["id"]]) for r in rows]
    return PlacementList(current=next((p for p in items if p.current), None), items=items)


async def add_document(
    *,
    placement_id: int,
    title: str,
    data: bytes,
    by: Principal,
    store: ObjectStore,
    limits: UploadSettings,
) -> DocumentOut:
    """Attach a scanned document (PDF, JPEG, PNG or WebP; type sniffed from the bytes)
    to a placement, e.g. a discharge certificate (出院证明).

    Raises:
        NotFound: no such placement.
        InvalidInput / UnsupportedMedia / PayloadTooLarge: see rescue.documents.
    """
    row = await Placement.select(Placement.case).where(Placement.id == placement_id).first()
    if row is None:
        raise NotFound(_("placement {placement_id} does not exist", placement_id=placement_id))
    title = title.strip() or "document"
    async with (
        stored_document(data=data, store=store, limits=limits) as doc,
        PlacementDocument._meta.db.transaction(),
    ):
        rows = await PlacementDocument.insert(
            PlacementDocument(
                placement=placement_id,
                title=title[:200],
                object_key=doc.object_key,
                media_type=doc.media_type,
                size_bytes=doc.size_bytes,
                sha256=doc.sha256,
                uploaded_by=by.user_id,
            )
        ).returning(PlacementDocument.id)
        await record_event(
            case_id=row["case"],
            kind="placement_document_added",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=title,
            data={"placement_id": placement_id, "document_id": rows[0]["id"]},
        )
    return await get_document(document_id=int(rows[0]["id"]))


async def get_document(*, document_id: int, store: ObjectStore | None = None) -> DocumentOut:
    """A document's record and (with ``store``) a presigned URL. Raises NotFound."""
    row = await PlacementDocument.select().where(PlacementDocument.id == document_id).first()
    if row is None:
        raise NotFound(_("document {document_id} does not exist", document_id=document_id))
    out = _doc_out(row)
    if store is not None:
        out.url = await store.apresigned_url(row["object_key"])
        out.url_expires_in = store.presign_seconds
    return out


async def record_settlement_approval(
    *,
    case_id: int,
    authority: str,
    reference: str,
    approved_on: date,
    document: bytes,
    by: Principal,
    store: ObjectStore,
    limits: UploadSettings,
) -> SettlementApprovalOut:
    """Record an approval of settlement (落户安置审批) with its scanned document: it
    lets a case become ``settled`` before the eligibility period (3 months by
    default, ``settlement_eligible`` in DEADLINE_OVERRIDES) is over
    (rescue.cases.flows). A ``settlement_approved`` event goes on the timeline.

    Raises:
        NotFound: no such case.
        Conflict: the case is closed.
        InvalidInput: empty authority or reference, a date in the future or
            before admission; bad document (also 413/415, see rescue.documents).
    """
    case = await _case_in_care(case_id)
    authority, reference = authority.strip(), reference.strip()
    if not authority or not reference or len(authority) > 200 or len(reference) > 100:
        raise InvalidInput(
            _("authority (1..200 characters) and reference (1..100) are required"),
            accepted={"authority": "e.g. 市民政局", "reference": "文号"},
        )
    if approved_on > clock.today() or approved_on < clock.local_date(case["admitted_at"]):
        raise InvalidInput(
            _("approved_on must lie between the admission and today"),
            accepted=_("a date in the case's stay, station's local date"),
        )
    async with (
        stored_document(data=document, store=store, limits=limits) as doc,
        SettlementApproval._meta.db.transaction(),
    ):
        rows = await SettlementApproval.insert(
            SettlementApproval(
                case=case_id,
                authority=authority,
                reference=reference,
                approved_on=approved_on,
                object_key=doc.object_key,
                media_type=doc.media_type,
                sha256=doc.sha256,
                recorded_by=by.user_id,
            )
        ).returning(SettlementApproval.id)
        await record_event(
            case_id=case_id,
            kind="settlement_approved",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=f"{authority} {reference}",
            data={
                "settlement_approval_id": rows[0]["id"],
                "approved_on": approved_on.isoformat(),
                "sha256": doc.sha256,
            },
        )
    row = await SettlementApproval.select().where(SettlementApproval.id == rows[0]["id"]).first()
    assert row is not None
    return SettlementApprovalOut(
        id=row["id"],
        case_id=row["case"],
        authority=row["authority"],
        reference=row["reference"],
        approved_on=row["approved_on"],
        media_type=row["media_type"],
        sha256=row["sha256"],
        recorded_by=row["recorded_by"],
        created_at=row["created_at"],
    )
