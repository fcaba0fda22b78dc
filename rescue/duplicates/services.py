"""Duplicate intake (重复登记): is a newly registered person already registered?

Checked on intake (attributes, ID number) and on every new case photo (same
photo bytes at once; close faces once the worker has encoded the photo). The
other side is every case at any station that is still in care or left less
than :data:`RECENT_DAYS` ago. A hit is a *warning*, never a refusal: the person
is registered anyway, and staff link the two cases as one person (a repeat
admission, 重复入站) or dismiss the warning.

One warning per pair of cases; a new kind of evidence is added to its
``reasons``, and a dismissed warning is reopened only by a new kind of evidence
(the same evidence is not raised twice).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rescue import clock
from rescue.cases.events import record_event
from rescue.cases.tables import IN_CARE_STATUSES, Case
from rescue.duplicates.schemas import CaseDuplicates, DuplicateWarningOut, OtherRecord
from rescue.duplicates.tables import DuplicateFaceCheck, DuplicateStatus, DuplicateWarning
from rescue.errors import Conflict, NotFound, PermissionDenied
from rescue.i18n import _
from rescue.photos.tables import Photo, PhotoStatus
from rescue.users.services import Principal

__all__ = [
    "RECENT_DAYS",
    "check_new_case",
    "check_photo_bytes",
    "check_photo_faces",
    "decide",
    "warnings_for_case",
]

#: A case that left the station less than this many days ago still counts: people
#: who leave on their own are often taken in again within weeks (repeat
#: admissions, 反复受助), at this station or a neighbouring one.
RECENT_DAYS = 180
#: Half-width (years) of the age range given by an ``estimated_age`` alone; the
#: same ±5 years a station's visual estimate is recorded with (age_low/age_high).
AGE_SLACK = 5


def _eligible(row: dict[str, Any]) -> bool:
    if row["status"] in {s.value for s in IN_CARE_STATUSES}:
        return True
    return bool(row["updated_at"] >= clock.now() - timedelta(days=RECENT_DAYS))


def _norm_name(name: str | None) -> str:
    return "".join(unicodedata.normalize("NFKC", name or "").split()).lower()


def _age_range(row: dict[str, Any]) -> tuple[int, int] | None:
    low, high = row.get("age_low"), row.get("age_high")
    if low is not None and high is not None:
        return int(low), int(high)
    if row.get("estimated_age") is not None:
        age = int(row["estimated_age"])
        return age - AGE_SLACK, age + AGE_SLACK
    return None


def attributes_match(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The attributes on which two cases strongly agree, or ``[]`` when they do not.

    Strong agreement: the same self-reported name (after Unicode NFKC, spaces and
    case ignored), no contradicting sex (both known and different), and
    overlapping age ranges when both have one. A name alone is not enough when
    neither age nor sex is known on both sides (common names repeat).
    """
    name = _norm_name(a.get("reported_name"))
    if not name or name != _norm_name(b.get("reported_name")):
        return []
    matched = ["name"]
    sexes = {a.get("sex"), b.get("sex")} - {"unknown", None}
    if len(sexes) > 1:
        return []
    if len(sexes) == 1 and a.get("sex") == b.get("sex"):
        matched.append("sex")
    ra, rb = _age_range(a), _age_range(b)
    if ra is not None and rb is not None:
        if ra[1] < rb[0] or rb[1] < ra[0]:
            return []
        matched.append("age")
    return matched if len(matched) >= 2 else []


def _id_number_column() -> Any:
    """The case's ID-number column (身份证号) once the workflow records it, else None."""
    return Case._meta.get_column_by_name("id_number") if hasattr(Case, "id_number") else None


def _pair_key(a: int, b: int) -> str:
    return f"{min(a, b)}-{max(a, b)}"


@dataclass(frozen=True)
class Evidence:
    """One reason to think ``other_case_id`` is the same person (a ``reasons``
    entry: ``{"kind": same_photo|face|id_number|attributes, ...}``), with the face
    distance of a face hit."""

    other_case_id: int
    reason: dict[str, Any]
    distance: float | None = None


async def _raise(*, case_id: int, found: Sequence[Evidence]) -> None:
    """The one writer of duplicate warnings: raise ``case_id``'s warning with each
    case in ``found``, or add the evidence to the pair's warning.

    In one transaction (joined when the caller has one open): the pairs without
    a warning yet are inserted in one statement, in pair-key order (two checks
    of overlapping pairs take the unique index's locks in the same order); a
    pair that has its warning gets a reason of a kind it did not have (a
    dismissed warning with some reason then opens again: new evidence) and the
    smaller face distance. The same kind of evidence again changes nothing.
    """
    if not found:
        return
    ordered = sorted(found, key=lambda e: _pair_key(case_id, e.other_case_id))
    now = clock.now()
    async with DuplicateWarning._meta.db.transaction():
        rows = (
            await DuplicateWarning.insert(
                *(
                    DuplicateWarning(
                        case=case_id,
                        other_case=e.other_case_id,
                        pair_key=_pair_key(case_id, e.other_case_id),
                        reasons=[e.reason],
                        best_distance=e.distance,
                        status=DuplicateStatus.open.value,
                        created_at=now,
                        updated_at=now,
                    )
                    for e in ordered
                )
            )
            .on_conflict(target=DuplicateWarning.pair_key, action="DO NOTHING")
            .returning(DuplicateWarning.pair_key)
        )
        inserted = {str(r["pair_key"]) for r in rows}
        for evidence in ordered:
            key = _pair_key(case_id, evidence.other_case_id)
            if key in inserted:
                inserted.discard(key)  # made with this evidence (a repeat of the pair is added)
                continue
            await _add_evidence(key, evidence, now)


async def _add_evidence(key: str, evidence: Evidence, now: Any) -> None:
    """Add ``evidence`` to the existing warning of pair ``key`` (see :func:`_raise`)."""
    row = await DuplicateWarning.select().where(DuplicateWarning.pair_key == key).first()
    assert row is not None  # inserted by the caller or before; warnings are never deleted
    reasons = _loads(row["reasons"])
    changes: dict[Any, Any] = {}
    if evidence.reason["kind"] not in {r["kind"] for r in reasons}:
        changes[DuplicateWarning.reasons] = [*reasons, evidence.reason]
        if row["status"] == DuplicateStatus.dismissed.value and reasons:
            # New kind of evidence after a dismissal: look again.
            changes[DuplicateWarning.status] = DuplicateStatus.open.value
    distance = evidence.distance
    if distance is not None and (row["best_distance"] is None or distance < row["best_distance"]):
        changes[DuplicateWarning.best_distance] = distance
    if changes:
        changes[DuplicateWarning.updated_at] = now
        await DuplicateWarning.update(changes).where(DuplicateWarning.id == row["id"])


def _loads(value: Any) -> list[dict[str, Any]]:
    import json

    if isinstance(value, str):
        return list(json.loads(value or "[]"))
    return list(value or [])


async def _eligible_cases(ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = await Case.select(Case.id, Case.status, Case.updated_at).where(Case.id.is_in(ids))
    return {int(r["id"]) for r in rows if _eligible(r)}


async def check_new_case(*, case_id: int) -> list[DuplicateWarningOut]:
    """Compare a newly registered case's attributes (and ID number) with the others.

    Returns the case's open warnings (empty when nothing matched).
    """
    case = await Case.select().where(Case.id == case_id).first()
    if case is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    id_column = _id_number_column()
    if id_column is not None and case.get("id_number"):
        same = await Case.select(Case.id, Case.status, Case.updated_at).where(
            (id_column == case["id_number"]) & (Case.id != case_id)
        )
        await _raise(
            case_id=case_id,
            found=[
                Evidence(int(other["id"]), {"kind": "id_number"})
                for other in same
                if _eligible(other)
            ],
        )
    name = _norm_name(case["reported_name"])
    if name:
        # Prefilter in SQL on the name's characters in order (spaces may differ);
        # equality after normalisation is decided in Python.
        pattern = "%".join(c for c in case["reported_name"] if c.strip() and c not in "%_\\")
        others = await Case.select().where(
            (Case.id != case_id) & Case.reported_name.ilike(f"%{pattern}%")
        )
        found = []
        for other in others:
            matched = attributes_match(case, other)
            if matched and _eligible(other):
                found.append(Evidence(int(other["id"]), {"kind": "attributes", "matched": matched}))
        await _raise(case_id=case_id, found=found)
    return await _open_outs(case_id)


async def check_photo_bytes(*, photo_id: int) -> list[DuplicateWarningOut]:
    """A case photo whose exact bytes (sha256) are a photo of another case.

    Returns the photo's case's open warnings (``[]`` for a notice photo).
    """
    photo = (
        await Photo.select(Photo.id, Photo.case, Photo.sha256).where(Photo.id == photo_id).first()
    )
    if photo is None or photo["case"] is None:
        return []
    same = await Photo.select(Photo.id, Photo.case).where(
        (Photo.sha256 == photo["sha256"]) & Photo.case.is_not_null() & (Photo.case != photo["case"])
    )
    eligible = await _eligible_cases([int(s["case"]) for s in same])
    await _raise(
        case_id=int(photo["case"]),
        found=[
            Evidence(
                int(other["case"]),
                {"kind": "same_photo", "photo_id": photo_id, "other_photo_id": other["id"]},
            )
            for other in same
            if int(other["case"]) in eligible
        ],
    )
    return await _open_outs(int(photo["case"]))


async def check_photo_faces(*, photo_id: int, galleries: Any, threshold: float) -> int:
    """Compare the faces of case photo ``photo_id`` with every other case's faces
    (:func:`rescue.matching.duplicates.same_person_faces`, distance ≤ ``threshold``)
    and raise a warning per eligible case found. Done once per photo (idempotent:
    safe under at-least-once delivery). Returns the number of warnings raised.
    """
    from rescue.matching.duplicates import same_person_faces

    photo = (
        await Photo.select(Photo.id, Photo.case, Photo.encoded_at)
        .where(Photo.id == photo_id)
        .first()
    )
    if photo is None or photo["case"] is None or photo["encoded_at"] is None:
        return 0
    if await DuplicateFaceCheck.exists().where(DuplicateFaceCheck.photo == photo_id):
        return 0
    case_id = int(photo["case"])
    hits = await same_person_faces(
        photo_id=photo_id, galleries=galleries, threshold=threshold, case_id=case_id
    )
    eligible = await _eligible_cases([h.owner_id for h in hits])
    found = [h for h in hits if h.owner_id in eligible]
    evidence = [
        Evidence(
            h.owner_id,
            {
                "kind": "face",
                "photo_id": photo_id,
                "other_photo_id": h.photo_id,
                "distance": round(h.distance, 4),
                "threshold": threshold,
            },
            h.distance,
        )
        for h in found
    ]
    # One transaction (one commit): the warnings and the photo's check mark.
    async with DuplicateWarning._meta.db.transaction():
        await _raise(case_id=case_id, found=evidence)
        await DuplicateFaceCheck.insert(
            DuplicateFaceCheck(photo=photo_id, hits=len(found))
        ).on_conflict(target=DuplicateFaceCheck.photo, action="DO NOTHING")
    return len(found)


async def _outs(rows: list[dict[str, Any]], case_id: int) -> list[DuplicateWarningOut]:
    other_ids = [int(r["other_case"] if r["case"] == case_id else r["case"]) for r in rows]
    cases = {
        int(c["id"]): c
        for c in (
            await Case.select(
                Case.id, Case.reference, Case.station, Case.status, Case.admitted_at
            ).where(Case.id.is_in(other_ids))
            if other_ids
            else []
        )
    }
    outs = []
    for row, other_id in zip(rows, other_ids, strict=True):
        other = cases[other_id]
        outs.append(
            DuplicateWarningOut(
                id=row["id"],
                case_id=case_id,
                status=DuplicateStatus(row["status"]),
                reasons=_loads(row["reasons"]),
                best_distance=row["best_distance"],
                other=OtherRecord(
                    case_id=other_id,
                    reference=other["reference"],
                    station=other["station"],
                    status=other["status"],
                    admitted_at=other["admitted_at"],
                    link=f"/api/cases/{other_id}",
                ),
                note=row["note"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                decided_at=row["decided_at"],
            )
        )
    return outs


def _of_case(case_id: int) -> Any:
    return (DuplicateWarning.case == case_id) | (DuplicateWarning.other_case == case_id)


async def _open_outs(case_id: int) -> list[DuplicateWarningOut]:
    rows = (
        await DuplicateWarning.select()
        .where(_of_case(case_id) & (DuplicateWarning.status == DuplicateStatus.open.value))
        .order_by(DuplicateWarning.id)
    )
    return await _outs(rows, case_id)


async def open_warnings(*, case_id: int) -> list[DuplicateWarningOut]:
    """The case's open duplicate warnings, oldest first (for the case detail)."""
    return await _open_outs(case_id)


async def warnings_for_case(*, case_id: int) -> CaseDuplicates:
    """Every duplicate warning of a case (any status), and its photos not yet face-checked.

    Raises:
        NotFound: no such case.
    """
    if not await Case.exists().where(Case.id == case_id):
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    rows = await DuplicateWarning.select().where(_of_case(case_id)).order_by(DuplicateWarning.id)
    photos = await Photo.select(Photo.id, Photo.status).where(Photo.case == case_id)
    checked = {
        int(r["photo"])
        for r in await DuplicateFaceCheck.select(DuplicateFaceCheck.photo).where(
            DuplicateFaceCheck.photo.is_in([int(p["id"]) for p in photos] or [0])
        )
    }
    pending = [
        int(p["id"])
        for p in photos
        if int(p["id"]) not in checked
        and p["status"] not in {PhotoStatus.no_face.value, PhotoStatus.failed.value}
    ]
    return CaseDuplicates(warnings=await _outs(rows, case_id), photos_pending_face_check=pending)


async def decide(*, warning_id: int, link: bool, note: str, by: Principal) -> DuplicateWarningOut:
    """Link the two cases as one person (a repeat admission) or dismiss the warning.

    Both cases' timelines get an event (``duplicate_linked`` / ``duplicate_dismissed``).

    Raises:
        NotFound: no such warning.
        PermissionDenied: the caller sees neither case's station.
        Conflict: the warning was already decided.
    """
    row = await DuplicateWarning.select().where(DuplicateWarning.id == warning_id).first()
    if row is None:
        raise NotFound(_("duplicate warning {warning_id} does not exist", warning_id=warning_id))
    stations = await Case.select(Case.id, Case.station).where(
        Case.id.is_in([row["case"], row["other_case"]])
    )
    if not any(by.sees_station(s["station"]) for s in stations):
        raise PermissionDenied(
            _(
                "duplicate warning {warning_id} concerns no case of your station",
                warning_id=warning_id,
            )
        )
    status = DuplicateStatus.linked if link else DuplicateStatus.dismissed
    now = clock.now()
    async with DuplicateWarning._meta.db.transaction():
        done = (
            await DuplicateWarning.update(
                {
                    DuplicateWarning.status: status.value,
                    DuplicateWarning.note: note,
                    DuplicateWarning.decided_by: by.user_id,
                    DuplicateWarning.decided_at: now,
                    DuplicateWarning.updated_at: now,
                }
            )
            .where(
                (DuplicateWarning.id == warning_id)
                & (DuplicateWarning.status == DuplicateStatus.open.value)
            )
            .returning(DuplicateWarning.id)
        )
        if not done:
            raise Conflict(
                _(
                    "duplicate warning {warning_id} is already {status}",
                    warning_id=warning_id,
                    status=row["status"],
                ),
                accepted={"status": [DuplicateStatus.open.value]},
            )
        for case_id, other in ((row["case"], row["other_case"]), (row["other_case"], row["case"])):
            await record_event(
                case_id=case_id,
                kind=f"duplicate_{status.value}",
                actor_id=by.user_id,
                actor_role=by.role.value,
                reason=note,
                data={"warning_id": warning_id, "other_case_id": other},
            )
    updated = await DuplicateWarning.select().where(DuplicateWarning.id == warning_id).first()
    assert updated is not None
    return (await _outs([updated], int(row["case"])))[0]
