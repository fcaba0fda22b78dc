"""Retention of biometric data, photos, search requests and imported lists
(docs/privacy.md, "Retention").

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
- Import runs (external lists, rescue.imports; and backlog runs, rescue.backlog)
  without activity for ``IMPORT_RETENTION_DAYS`` (default 30; the run's own
  last change or any chunk's progress: finished, failed, stopped, or checked and
  never started) lose their list file, photos ZIP, problem-row list and kept
  row photos (objects first), then their row records: a row no warning refers
  to is deleted, a row whose warnings are all verified keeps only its number
  and external id (``fields`` emptied; the warning, its outcome, note and
  verifier stay, and the foreign key would otherwise cascade and delete the
  warning). Rows of warnings still open keep their fields and kept photo, so
  staff verify them as before; the run's daily revisit releases them once
  verified (:func:`retire_imports`). The run keeps its summary (kind, name,
  station, file name and digest, counts, dates, who) and gets ``purged_at``;
  its per-row problems are emptied (they quote cells). A purged run cannot be
  started or resumed.
- The face deletion log (``face_deletions``, read incrementally by the worker
  galleries) keeps :data:`DELETION_LOG_DAYS` (7) days; older entries are
  pruned and the newest of them becomes a reload marker, so a gallery that had
  not read them reloads (:func:`prune_deletion_log`).
- Settled people (落户安置) are not closed: their search continues, so they keep
  both.

The moment a case closed is its last ``status_changed`` event into a terminal
status (the case timeline). Runs daily from the scheduler (``rescue retention
schedule``, or inside ``rescue serve`` in embedded mode) through the Dramatiq
actor ``workers.actors.apply_retention``, or by hand: ``rescue retention run``.
Idempotent. Each deletion is written to the case's or notice's timeline (an
import run's to its ``purged_at``).
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
    RELOAD_MARKER,
    Candidate,
    CandidateEvidence,
    CandidateStatus,
    EvidenceKind,
    FaceDeletion,
)
from rescue.notices.events import record_notice_event
from rescue.notices.tables import Notice, NoticeStatus
from rescue.photos.tables import Face, Photo
from rescue.settings import RetentionSettings
from rescue.users.tables import LoginThrottle

__all__ = [
    "DELETION_LOG_DAYS",
    "RetentionReport",
    "closed_cases",
    "evidence_summary",
    "prune_deletion_log",
    "retire_imports",
    "run_retention",
]

log = logging.getLogger(__name__)

#: Days an entry of the face deletion log is kept. Every worker gallery reads
#: the log at each photo job and import chunk (rescue.matching.services
#: .SideGallery.refresh), so a working gallery is seconds behind; one idle for
#: longer than this finds the reload marker and loads its side again (one full
#: load, as at a worker's start). A week keeps even a worker idle over a
#: holiday incremental, while the log stays a week of deletions instead of
#: every deletion ever. The log holds face ids only (no personal data): a
#: housekeeping period, not a privacy one, hence no setting.
DELETION_LOG_DAYS = 7


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
    #: Import runs whose list objects and rows were deleted by this run.
    import_runs: list[int] = field(default_factory=list)
    #: Import row records deleted, and emptied (kept for a verified warning).
    import_records_deleted: int = 0
    import_records_emptied: int = 0
    #: Objects of import runs removed: list files, ZIPs, problem-row lists, row photos.
    import_objects_deleted: int = 0
    #: Entries pruned from the face deletion log.
    deletion_log_pruned: int = 0


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


async def _remove_counted(store: ObjectStore, key: str) -> int:
    """Remove ``key`` if it is there; 1 if it was (so that a repeated run counts 0)."""
    if not await store.aexists(key):
        return 0
    await store.aremove(key)
    return 1


def _open_records() -> Any:
    """Sub-select: ids of the import records shown by a warning still open."""
    from rescue.imports.tables import ImportWarning

    return ImportWarning.select(ImportWarning.record).where(ImportWarning.outcome.is_null())


async def _release_records(where: Any) -> tuple[int, int]:
    """Of the import records matching ``where`` (of purged runs), delete those no
    warning refers to, and empty the fields of those whose warnings are all
    verified. Records of open warnings are left as they are. Call inside a
    transaction.

    Returns:
        (records deleted, records emptied)
    """
    from rescue.imports.tables import ImportRecord, ImportWarning

    deleted = (
        await ImportRecord.delete()
        .where(where & ImportRecord.id.not_in(ImportWarning.select(ImportWarning.record)))
        .returning(ImportRecord.id)
    )
    candidates = await ImportRecord.select(ImportRecord.id, ImportRecord.fields).where(
        where & ImportRecord.id.not_in(_open_records())
    )
    full = [int(r["id"]) for r in candidates if _loads(r["fields"])]
    if full:
        await ImportRecord.update({ImportRecord.fields: {}}).where(ImportRecord.id.is_in(full))
    return len(deleted), len(full)


async def _purge_run(
    run: dict[str, Any], *, store: ObjectStore, now: datetime, report: RetentionReport
) -> None:
    """Delete one inactive run's objects (every kept row photo but those of open
    warnings, the problem-row list, the ZIP, the list file last), then in one
    transaction its releasable records (:func:`_release_records`), the first
    external id of each chunk and the per-row problems, and set ``purged_at``.
    A store failure raises before any row changed: the next run does it again."""
    from rescue.imports.photos import photos_key
    from rescue.imports.services import skip_key
    from rescue.imports.tables import ImportChunk, ImportRecord, ImportRun

    run_id, key = int(run["id"]), str(run["object_key"])
    kept = {
        int(r["row_number"])
        for r in await ImportRecord.select(ImportRecord.row_number).where(
            (ImportRecord.run == run_id) & ImportRecord.id.is_in(_open_records())
        )
    }
    removed = 0
    for row_key in await store.akeys_under(f"{key}.rows"):
        row = row_key.rsplit("/", 1)[-1]
        if row.isdigit() and int(row) in kept:
            continue  # an open warning's evidence: verifying "helped" puts it on a notice
        await store.aremove(row_key)
        removed += 1
    # The list file last: while it is there, a failed run can still be resumed.
    for object_key in (skip_key(key), photos_key(key), run["archive_key"], key):
        if object_key:
            removed += await _remove_counted(store, object_key)
    async with ImportRun._meta.db.transaction():
        deleted, emptied = await _release_records(ImportRecord.run == run_id)
        await ImportChunk.update({ImportChunk.first_id: ""}).where(ImportChunk.run == run_id)
        await ImportRun.update({ImportRun.purged_at: now, ImportRun.errors: []}).where(
            ImportRun.id == run_id
        )
    report.import_runs.append(run_id)
    report.import_objects_deleted += removed
    report.import_records_deleted += deleted
    report.import_records_emptied += emptied


async def retire_imports(
    *, settings: RetentionSettings, store: ObjectStore, now: datetime, report: RetentionReport
) -> None:
    """Apply ``IMPORT_RETENTION_DAYS`` to import runs (module docstring).

    1. A run not yet purged whose last activity (``import_runs.updated_at``: its
       dry run, start, finish or failure; a backlog run's every row; and the
       ``updated_at`` of each of its chunks: every committed batch) is at least
       ``import_days`` before ``now`` is purged (:func:`_purge_run`), whatever
       its status: done, failed, checked and never started, or running but
       stopped for that long (a live chunk commits every 100 rows).
    2. Rows of purged runs kept for warnings then open are released once those
       warnings are verified (their kept photo first, then the row), and rows
       no warning refers to any longer (the warning was raised again on a later
       list's row) are deleted.

    Warnings are never deleted (their outcome, note, verifier and candidate are
    the record of the verification, and a warning is not raised again for the
    same pair, rescue.imports.services). A warning verified ``helped`` on a
    person in care has already put the row's photo on the notice it made
    (rescue.imports.services.verify), so the kept row photo is not needed
    after verification.
    """
    from rescue.imports.services import row_photo_key
    from rescue.imports.tables import ImportChunk, ImportRecord, ImportRun

    cutoff = now - timedelta(days=settings.import_days)
    due = await ImportRun.select(ImportRun.id, ImportRun.object_key, ImportRun.archive_key).where(
        ImportRun.purged_at.is_null() & (ImportRun.updated_at <= cutoff)
    )
    if due:
        busy = {
            int(r["run"])
            for r in await ImportChunk.select(ImportChunk.run).where(
                ImportChunk.run.is_in([int(r["id"]) for r in due])
                & (ImportChunk.updated_at > cutoff)
            )
        }
        for run in sorted(due, key=lambda r: int(r["id"])):
            if int(run["id"]) not in busy:
                await _purge_run(run, store=store, now=now, report=report)
    purged = ImportRun.select(ImportRun.id).where(ImportRun.purged_at.is_not_null())
    rows = await ImportRecord.select(
        ImportRecord.id, ImportRecord.row_number, ImportRecord.fields, ImportRecord.run.object_key
    ).where(ImportRecord.run.is_in(purged) & ImportRecord.id.not_in(_open_records()))
    for r in rows:  # objects first: a failure leaves the rows to retry with
        if _loads(r["fields"]):
            report.import_objects_deleted += await _remove_counted(
                store, row_photo_key(r["run.object_key"], int(r["row_number"]))
            )
    async with ImportRun._meta.db.transaction():
        deleted, emptied = await _release_records(ImportRecord.run.is_in(purged))
    report.import_records_deleted += deleted
    report.import_records_emptied += emptied


async def prune_deletion_log(*, now: datetime) -> int:
    """Prune entries of the face deletion log logged :data:`DELETION_LOG_DAYS`
    or more before ``now``.

    Every entry up to the newest old one is deleted, and that newest one
    becomes a :data:`~rescue.matching.tables.RELOAD_MARKER`, in one
    transaction. A gallery that read past it goes on incrementally; one whose
    last entry read is older (an idle worker) would miss the deletions pruned,
    but it reads the marker first and reloads its side from the faces table
    (rescue.matching.services.SideGallery). Idempotent: an old marker alone is
    left as it is.

    Returns:
        Entries pruned (the marker that replaces a deletion counts as one).
    """
    horizon = now - timedelta(days=DELETION_LOG_DAYS)
    newest = (
        await FaceDeletion.select(FaceDeletion.id, FaceDeletion.face_id)
        .where(FaceDeletion.logged_at <= horizon)
        .order_by(FaceDeletion.id, ascending=False)
        .first()
    )
    if newest is None:
        return 0
    async with FaceDeletion._meta.db.transaction():
        deleted = (
            await FaceDeletion.delete()
            .where(FaceDeletion.id < newest["id"])
            .returning(FaceDeletion.id)
        )
        await FaceDeletion.update({FaceDeletion.face_id: RELOAD_MARKER}).where(
            FaceDeletion.id == newest["id"]
        )
    return len(deleted) + (0 if int(newest["face_id"]) == RELOAD_MARKER else 1)


async def run_retention(
    *, settings: RetentionSettings, store: ObjectStore, now: datetime | None = None
) -> RetentionReport:
    """Delete face encodings, photos, search-request data, import runs' lists and
    rows, and old entries of the face deletion log, whose retention has passed
    (module docstring). Idempotent.

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
    await retire_imports(settings=settings, store=store, now=now, report=report)
    report.deletion_log_pruned = await prune_deletion_log(now=now)
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
        "%s search requests closed, %s purged; %s import runs purged (%s records "
        "deleted, %s emptied, %s objects); %s deletion log entries pruned",
        report.faces_deleted,
        report.photos_deleted,
        len(report.cases),
        len(report.notices),
        report.requests_closed,
        report.requests_purged,
        len(report.import_runs),
        report.import_records_deleted,
        report.import_records_emptied,
        report.import_objects_deleted,
        report.deletion_log_pruned,
    )
    return report
