"""Retention of biometric data, photos and search requests (docs/privacy.md, "Retention").

- Face encodings of a closed case (status in ``TERMINAL_STATUSES``) are deleted
  ``FACE_RETENTION_DAYS`` (default 30) after it closed; PIPL art. 19 and 47:
  personal information is deleted once the purpose (the family search) is
  achieved or ended, and art. 28 makes face data sensitive.
- Photos of a closed case are deleted after the station's photo retention
  (``PHOTO_RETENTION_DAYS``, per station ``PHOTO_RETENTION_DAYS_BY_STATION``;
  0 keeps them), objects first, then their rows.
- The notice that matched a closed case (its confirmed candidate's notice,
  status ``found``) served the same, now achieved, purpose: its face encodings
  and photos go by the same two periods, counted from the same closing. Open
  notices, and notices of cases still in care, keep theirs.
- Candidates, their evidence records, reviews and family confirmations stay:
  before biometric data of either side is deleted, each candidate concerned
  gets ``retained_evidence`` (:func:`evidence_summary`) and
  ``photos_deleted_at``, and every reference to the deleted photos is cleared
  (the foreign keys would otherwise cascade and delete the evidence). The audit
  trail and the case and notice timelines are never touched.
- Online search requests closed (rejected, or closed by this run after
  waiting for more information ``FAMILY_REQUEST_STALE_DAYS``) lose their
  photos (objects and rows), contact and details
  ``FAMILY_REQUEST_RETENTION_DAYS`` after closing; status, dates and the
  message to the family stay, so the tracking code still answers "closed".
- Failed-login counters (usernames, client addresses) are deleted a day after
  their last failure; expired page sessions and day-old once-only form keys
  (rescue.web.sessions.purge_expired) too.
- Settled people (落户安置) are not closed: their search continues, so they keep
  both.

The moment a case closed is its last ``status_changed`` event into a terminal
status (the case timeline). Runs daily from the scheduler (``rescue retention
schedule``, or inside ``rescue serve`` in embedded mode) through the Dramatiq
actor ``workers.actors.apply_retention``, or by hand: ``rescue retention run``.
Idempotent. Each deletion is written to the case's or notice's timeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from media.storage import ObjectStore
from rescue import clock
from rescue.cases.events import CaseEvent, record_event
from rescue.cases.tables import TERMINAL_STATUSES, Case, Sex
from rescue.matching.tables import (
    Candidate,
    CandidateEvidence,
    CandidateStatus,
    EvidenceKind,
)
from rescue.notices.events import record_notice_event
from rescue.notices.tables import Notice, NoticeStatus
from rescue.photos.tables import Face, Photo
from rescue.settings import RetentionSettings
from rescue.users.tables import LoginThrottle

__all__ = ["RetentionReport", "closed_cases", "evidence_summary", "run_retention"]

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    faces_deleted: int = 0
    photos_deleted: int = 0
    login_counters_deleted: int = 0
    sessions_deleted: int = 0
    #: Search requests closed by this run (waiting for information too long).
    requests_closed: int = 0
    #: Search requests whose photos, contact and details were deleted.
    requests_purged: int = 0
    cases: list[int] = field(default_factory=list)
    #: Matched notices whose face encodings or photos were deleted.
    notices: list[int] = field(default_factory=list)


async def closed_cases() -> dict[int, tuple[datetime, str]]:
    """Closed cases: id → (when it closed, station)."""
    terminal = [s.value for s in TERMINAL_STATUSES]
    cases = await Case.select(Case.id, Case.station, Case.updated_at).where(
        Case.status.is_in(terminal)
    )
    if not cases:
        return {}
    events = await CaseEvent.select(CaseEvent.case, CaseEvent.at).where(
        CaseEvent.case.is_in([c["id"] for c in cases])
        & (CaseEvent.kind == "status_changed")
        & CaseEvent.to_status.is_in(terminal)
    )
    closed_at: dict[int, datetime] = {}
    for e in events:
        if e["case"] not in closed_at or e["at"] > closed_at[e["case"]]:
            closed_at[e["case"]] = e["at"]
    return {c["id"]: (closed_at.get(c["id"], c["updated_at"]), str(c["station"])) for c in cases}


async def matched_notices(case_id: int) -> list[int]:
    """Notices resolved by this case: the notices of its confirmed candidates
    that are ``found`` (rescue.matching.review confirms both in one transaction)."""
    rows = await Candidate.select(Candidate.notice).where(
        (Candidate.case == case_id) & (Candidate.status == CandidateStatus.confirmed.value)
    )
    ids = sorted({int(r["notice"]) for r in rows})
    if not ids:
        return []
    found = await Notice.select(Notice.id).where(
        Notice.id.is_in(ids) & (Notice.status == NoticeStatus.found.value)
    )
    return sorted(int(r["id"]) for r in found)


def _loads(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


async def evidence_summary(row: dict[str, Any]) -> dict[str, Any]:
    """What a candidate's decision rested on, in plain values (no biometric data).

    Returns:
        ``status``, ``best_distance`` (Euclidean, 128-d encodings), ``score``
        (0..1), ``band`` (strong/possible/weak or None), ``model`` and
        ``threshold`` of the best face evidence record, ``case_photo_id`` and
        ``notice_photo_id`` (plain integers or None: the photos that gave the
        distance, which may be deleted), ``decided_by`` (users.id),
        ``decided_at`` and ``first_confirmed_by``.
    """
    face = (
        await CandidateEvidence.select(
            CandidateEvidence.model,
            CandidateEvidence.threshold,
            CandidateEvidence.distance,
            CandidateEvidence.case_photo,
            CandidateEvidence.notice_photo,
            CandidateEvidence.values,
        )
        .where(
            (CandidateEvidence.candidate == row["id"])
            & (CandidateEvidence.kind == EvidenceKind.face.value)
            & CandidateEvidence.distance.is_not_null()
        )
        .order_by(CandidateEvidence.distance)
        .first()
    )
    values = dict(_loads(face["values"]) or {}) if face else {}
    confidence = dict(_loads(row.get("confidence")) or {})
    decided_at = row.get("decided_at")
    return {
        "status": row["status"],
        "best_distance": row["best_distance"],
        "score": row["score"],
        "band": confidence.get("band"),
        "model": face["model"] if face else confidence.get("model"),
        "threshold": face["threshold"] if face else None,
        "case_photo_id": row["case_photo"]
        or (face and face["case_photo"])
        or values.get("case_photo_id"),
        "notice_photo_id": row["notice_photo"]
        or (face and face["notice_photo"])
        or values.get("notice_photo_id"),
        "decided_by": row.get("decided_by"),
        "decided_at": clock.iso_utc(decided_at) if decided_at else None,
        "first_confirmed_by": row.get("first_confirmed_by"),
    }


async def _keep_evidence(where: Any, now: datetime) -> None:
    """Write the evidence summary of the candidates matching ``where`` that do not
    have one yet (the first deletion of biometric data of either side)."""
    rows = await Candidate.select().where(where & Candidate.photos_deleted_at.is_null())
    for row in rows:
        await Candidate.update(
            {
                Candidate.retained_evidence: await evidence_summary(row),
                Candidate.photos_deleted_at: now,
            }
        ).where(Candidate.id == row["id"])


async def _delete_faces(*, of_case: bool, owner_id: int, now: datetime) -> int:
    """Delete the face encodings of one case (``of_case``) or notice, keeping the
    evidence of their candidates."""
    owner = Face.case if of_case else Face.notice
    side = Candidate.case if of_case else Candidate.notice
    async with Face._meta.db.transaction():
        await _keep_evidence(side == owner_id, now)
        deleted = await Face.delete().where(owner == owner_id).returning(Face.id)
    return len(deleted)


async def _delete_photos(
    *, of_case: bool, owner_id: int, store: ObjectStore, now: datetime
) -> tuple[int, int]:
    """Delete the photos of one case (``of_case``) or notice: objects first (a
    failure leaves rows to retry with), then, in one transaction, the evidence
    summaries, every reference to the photos (candidates, evidence records,
    announcements), their faces and rows.

    Returns:
        (photos deleted, faces deleted)
    """
    from rescue.announcements.tables import Announcement
    from rescue.photos.thumbnails import thumb_key

    owner = Photo.case if of_case else Photo.notice
    photos = await Photo.select(Photo.id, Photo.object_key).where(owner == owner_id)
    if not photos:
        return 0, 0
    for p in photos:
        await store.aremove(thumb_key(p["object_key"]))  # pages' thumbnail
        await store.aremove(p["object_key"])
    ids = [p["id"] for p in photos]
    side = Candidate.case if of_case else Candidate.notice
    async with Photo._meta.db.transaction():
        refers = Candidate.case_photo.is_in(ids) | Candidate.notice_photo.is_in(ids)
        await _keep_evidence((side == owner_id) | refers, now)
        evidence_of = await CandidateEvidence.select(CandidateEvidence.candidate).where(
            CandidateEvidence.case_photo.is_in(ids) | CandidateEvidence.notice_photo.is_in(ids)
        )
        if evidence_of:
            await _keep_evidence(
                Candidate.id.is_in(sorted({int(e["candidate"]) for e in evidence_of})), now
            )
        # The foreign keys cascade: clear every reference before the rows go.
        for column in (Candidate.case_photo, Candidate.notice_photo):
            await Candidate.update({column: None}).where(column.is_in(ids))
        for column in (CandidateEvidence.case_photo, CandidateEvidence.notice_photo):
            await CandidateEvidence.update({column: None}).where(column.is_in(ids))
        await Announcement.update({Announcement.photo: None}).where(Announcement.photo.is_in(ids))
        faces = await Face.delete().where(Face.photo.is_in(ids)).returning(Face.id)
        await Photo.delete().where(Photo.id.is_in(ids))
    return len(ids), len(faces)


async def _retire_case(
    case_id: int,
    closed: datetime,
    station: str,
    *,
    settings: RetentionSettings,
    store: ObjectStore,
    now: datetime,
    report: RetentionReport,
) -> None:
    """Apply the face and photo periods to a closed case and its matched notices."""
    notices = await matched_notices(case_id)
    touched_case = False
    touched_notices: set[int] = set()
    if closed <= now - timedelta(days=settings.face_days):
        reason = f"retention: {settings.face_days} days after closing"
        deleted = await _delete_faces(of_case=True, owner_id=case_id, now=now)
        if deleted:
            report.faces_deleted += deleted
            touched_case = True
            await record_event(
                case_id=case_id,
                kind="faces_deleted",
                actor_id=None,
                actor_role="system",
                reason=reason,
                data={"faces": deleted},
            )
        for notice_id in notices:
            deleted = await _delete_faces(of_case=False, owner_id=notice_id, now=now)
            if deleted:
                report.faces_deleted += deleted
                touched_notices.add(notice_id)
                await record_notice_event(
                    notice_id=notice_id,
                    kind="faces_deleted",
                    actor_id=None,
                    actor_role="system",
                    reason=f"{reason} of case {case_id}",
                    data={"faces": deleted, "case_id": case_id},
                )
    photo_days = settings.photo_days_for(station)
    if photo_days > 0 and closed <= now - timedelta(days=photo_days):
        reason = f"retention: {photo_days} days after closing ({station or '-'})"
        photos, faces = await _delete_photos(of_case=True, owner_id=case_id, store=store, now=now)
        if photos:
            report.photos_deleted += photos
            report.faces_deleted += faces
            touched_case = True
            await record_event(
                case_id=case_id,
                kind="photos_deleted",
                actor_id=None,
                actor_role="system",
                reason=reason,
                data={"photos": photos},
            )
        for notice_id in notices:
            photos, faces = await _delete_photos(
                of_case=False, owner_id=notice_id, store=store, now=now
            )
            if photos:
                report.photos_deleted += photos
                report.faces_deleted += faces
                touched_notices.add(notice_id)
                await record_notice_event(
                    notice_id=notice_id,
                    kind="photos_deleted",
                    actor_id=None,
                    actor_role="system",
                    reason=f"{reason} of case {case_id}",
                    data={"photos": photos, "case_id": case_id},
                )
    if touched_case:
        report.cases.append(case_id)
    report.notices.extend(sorted(touched_notices))


async def retire_requests(
    *, settings: RetentionSettings, store: ObjectStore, now: datetime
) -> tuple[int, int]:
    """Close search requests waiting for information longer than
    ``request_stale_days``, and purge requests closed more than ``request_days``
    ago: photo objects and rows (those sent with answers too), reporter's name
    and contact (and its digest), the missing person's details, the text of
    the family's answers. Kept: status, station, dates, consent version
    and time, the message to the family, and ``purged_at``.

    Returns:
        (requests closed, requests purged)
    """
    from rescue.family_requests.tables import (
        MessageAuthor,
        RequestStatus,
        SearchRequest,
        SearchRequestMessage,
        SearchRequestPhoto,
    )
    from rescue.i18n import _, use_locale
    from rescue.settings import get_settings

    stale_before = now - timedelta(days=settings.request_stale_days)
    with use_locale(get_settings().default_locale):
        message = _(
            "Closed: no further information arrived within {days} days. "
            "You are welcome to submit a new request.",
            days=settings.request_stale_days,
        )
    closed = (
        await SearchRequest.update(
            {
                SearchRequest.status: RequestStatus.closed.value,
                SearchRequest.staff_message: message,
                SearchRequest.decided_by: None,
                SearchRequest.decided_at: now,
                SearchRequest.updated_at: now,
            }
        )
        .where(
            (SearchRequest.status == RequestStatus.more_info.value)
            & (SearchRequest.updated_at <= stale_before)
        )
        .returning(SearchRequest.id)
    )
    for row in closed:  # the closing message joins the exchange staff see
        await SearchRequestMessage.insert(
            SearchRequestMessage(
                request=row["id"], author=MessageAuthor.staff.value, body=message, created_at=now
            )
        )
    purge_before = now - timedelta(days=settings.request_days)
    due = await SearchRequest.select(SearchRequest.id).where(
        (SearchRequest.status == RequestStatus.closed.value)
        & SearchRequest.purged_at.is_null()
        & (
            (SearchRequest.decided_at <= purge_before)
            | (SearchRequest.decided_at.is_null() & (SearchRequest.updated_at <= purge_before))
        )
    )
    ids = [int(r["id"]) for r in due]
    if ids:
        photos = await SearchRequestPhoto.select(
            SearchRequestPhoto.id, SearchRequestPhoto.object_key
        ).where(SearchRequestPhoto.request.is_in(ids))
        for p in photos:  # objects first: a failure leaves rows to retry with
            if p["object_key"]:
                await store.aremove(p["object_key"])
        async with SearchRequest._meta.db.transaction():
            await SearchRequestPhoto.delete().where(SearchRequestPhoto.request.is_in(ids))
            # The family's answers are their data too; staff's messages stay
            # (like the message to the family).
            await SearchRequestMessage.update({SearchRequestMessage.body: ""}).where(
                SearchRequestMessage.request.is_in(ids)
                & (SearchRequestMessage.author == MessageAuthor.family.value)
            )
            await SearchRequest.update(
                {
                    SearchRequest.missing_name: "",
                    SearchRequest.sex: Sex.unknown.value,
                    SearchRequest.date_of_birth: None,
                    SearchRequest.age_when_missing: None,
                    SearchRequest.missing_since: None,
                    SearchRequest.last_seen_place: "",
                    SearchRequest.description: "",
                    SearchRequest.dialect: "",
                    SearchRequest.relation: "",
                    SearchRequest.reporter_name: "",
                    SearchRequest.reporter_contact: "",
                    SearchRequest.contact_key: "",
                    SearchRequest.person_key: "",
                    SearchRequest.purged_at: now,
                }
            ).where(SearchRequest.id.is_in(ids))
    return len(closed), len(ids)


async def run_retention(
    *, settings: RetentionSettings, store: ObjectStore, now: datetime | None = None
) -> RetentionReport:
    """Delete face encodings, photos and search-request data whose retention has
    passed (module docstring). Idempotent.

    Args:
        now: the moment to judge by; defaults to ``rescue.clock.now()``.

    Returns:
        What was deleted (counts, and the cases and notices concerned).
    """
    now = now or clock.now()
    report = RetentionReport()
    for case_id, (closed, station) in (await closed_cases()).items():
        await _retire_case(
            case_id, closed, station, settings=settings, store=store, now=now, report=report
        )
    report.requests_closed, report.requests_purged = await retire_requests(
        settings=settings, store=store, now=now
    )
    stale = (
        await LoginThrottle.delete()
        .where(LoginThrottle.last_failed_at < now - timedelta(days=1))
        .returning(LoginThrottle.id)
    )
    report.login_counters_deleted = len(stale)
    from rescue.web.sessions import purge_expired

    report.sessions_deleted = await purge_expired(now=now)
    log.info(
        "retention: %s face encodings and %s photos deleted (%s cases, %s notices); "
        "%s search requests closed, %s purged",
        report.faces_deleted,
        report.photos_deleted,
        len(report.cases),
        len(report.notices),
        report.requests_closed,
        report.requests_purged,
    )
    return report
