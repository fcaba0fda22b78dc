"""Face processing of a photo, and matching it against the other side.

Called by the Dramatiq actor ``workers.actors.process_photo`` with a photo id.
Idempotent: a photo already processed is not processed again, and matching
only ever lowers a candidate's best distance (at-least-once delivery safe).

Matching runs both ways:
- a case photo is compared with the faces of every *open* notice;
- a notice photo is compared with the faces of every case *still in care*.
A pair whose best face distance is within the threshold becomes (or updates)
its single candidate.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import numpy as np

from media.images import ImageRejected, decode_for_detection
from media.storage import ObjectMissing, ObjectStore
from rescue.cases.tables import IN_CARE_STATUSES, Case
from rescue.errors import NotFound, is_unavailable
from rescue.i18n import _
from rescue.matching.embedding import MODEL_NAME, DetectedFace, detect_and_encode
from rescue.matching.gallery import FaceGallery, GalleryHit
from rescue.matching.ledger import (
    candidate_outs,
    loads,
    pair_key,
    re_propose_if_rejected,
    record_face_evidence,
    rescore,
)
from rescue.matching.schemas import CandidateOut
from rescue.matching.tables import Candidate, CandidateStatus
from rescue.notices.tables import Notice, NoticeStatus
from rescue.photos.tables import Face, Photo, PhotoStatus
from rescue.schemas import Page
from rescue.settings import Settings

__all__ = [
    "GallerySet",
    "list_candidates",
    "match_photo",
    "process_photo",
]

log = logging.getLogger(__name__)

#: Faces fetched per query when a worker loads its gallery (~1 KB each in flight).
_LOAD_BATCH = 20_000


@dataclass
class SideGallery:
    """The gallery of one side (``case`` or ``notice``), kept in step with the faces table."""

    side: str
    gallery: FaceGallery = field(default_factory=FaceGallery)
    last_face_id: int = 0
    lock: asyncio.Lock | None = None

    @property
    def owner_column(self) -> Any:
        return Face.case if self.side == "case" else Face.notice

    async def _load_since(self, face_id: int) -> None:
        """Add faces with id > ``face_id``, ``_LOAD_BATCH`` rows per query (bounded memory)."""
        owner = self.owner_column
        while True:
            rows = (
                await Face.select(Face.id, owner, Face.photo, Face.encoding)
                .where(owner.is_not_null() & (Face.id > face_id))
                .order_by(Face.id)
                .limit(_LOAD_BATCH)
            )
            if not rows:
                return
            self.gallery.add(
                np.array([r["id"] for r in rows]),
                np.array([r[self.side] for r in rows]),
                np.array([r["photo"] for r in rows]),
                np.stack([np.frombuffer(r["encoding"], dtype="<f8") for r in rows]),
            )
            face_id = int(rows[-1]["id"])
            self.last_face_id = max(self.last_face_id, face_id)
            if len(rows) < _LOAD_BATCH:
                return

    async def _reload(self) -> None:
        """Load the whole side into a new gallery sized exactly (no growth slack)."""
        total = await Face.count().where(self.owner_column.is_not_null())
        self.gallery, self.last_face_id = FaceGallery(capacity=max(1, total)), 0
        await self._load_since(0)

    async def refresh(self) -> FaceGallery:
        """Load faces added since the last refresh; reload fully if any were removed.

        The first call loads everything at the exact size; later calls add only
        faces with a larger id than any seen.
        """
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if self.last_face_id == 0 and len(self.gallery) == 0:
                await self._reload()
            else:
                await self._load_since(self.last_face_id)
            total = await Face.count().where(self.owner_column.is_not_null())
            if total != len(self.gallery):
                log.info(
                    "%s gallery out of step (%s in db, %s in memory): reloading",
                    self.side,
                    total,
                    len(self.gallery),
                )
                await self._reload()
            return self.gallery


@dataclass
class GallerySet:
    """One worker process's galleries (both sides)."""

    cases: SideGallery = field(default_factory=lambda: SideGallery("case"))
    notices: SideGallery = field(default_factory=lambda: SideGallery("notice"))


async def process_photo(
    *, photo_id: int, store: ObjectStore, settings: Settings, galleries: GallerySet
) -> str:
    """Process a pending photo (:func:`_process`), counting attempts, and end it
    ``failed`` with a reason a person can act on when it cannot succeed.

    - Permanent at once: the original is missing from the object store, or the
      file cannot be decoded.
    - Transient (a service unreachable, cut off or too slow:
      rescue.errors.is_unavailable): the attempt is not counted and the error
      propagates, so Dramatiq retries with back-off; the recovery sweep queues
      the photo again if the retries run out.
    - Anything else counts; so does an attempt that never ended (its worker was
      killed). After ``PHOTO_MAX_ATTEMPTS`` the photo ends ``failed``.

    Returns:
        The photo's status (``missing`` if the photo no longer exists).

    Raises:
        Exception: a failure worth retrying (the actor retries).
    """
    limit = settings.recovery.max_attempts
    started = (
        await Photo.update({Photo.attempts: Photo.attempts + 1})
        .where((Photo.id == photo_id) & (Photo.status == PhotoStatus.pending.value))
        .returning(Photo.attempts, Photo.last_error)
    )
    if not started:
        row = await Photo.select(Photo.status).where(Photo.id == photo_id).first()
        if row is None:
            log.warning("photo %s no longer exists; nothing to do", photo_id)
        return "missing" if row is None else str(row["status"])
    attempts = int(started[0]["attempts"])
    if attempts > limit:
        return await _finish(
            photo_id,
            PhotoStatus.failed,
            _(
                "face processing was started {attempts} times without finishing "
                "(last error: {error}); the worker may be crashing on this photo: "
                "see the worker log, then upload the photo again",
                attempts=attempts - 1,
                error=started[0]["last_error"] or _("none recorded"),
            ),
        )
    try:
        return await _process(
            photo_id=photo_id, store=store, settings=settings, galleries=galleries
        )
    except ObjectMissing:
        return await _finish(
            photo_id,
            PhotoStatus.failed,
            _("the photo's file is missing from the object store; upload the photo again"),
        )
    except Exception as exc:
        transient = is_unavailable(exc)
        await _end_attempt(photo_id, exc, counted=not transient)
        if transient or attempts < limit:
            raise
        log.exception("photo %s failed %d times; giving up", photo_id, attempts)
        return await _finish(
            photo_id,
            PhotoStatus.failed,
            _(
                "face processing failed {attempts} times with an unexpected error "
                "({error}); the worker log has the details",
                attempts=attempts,
                error=type(exc).__name__,
            ),
        )


async def _end_attempt(photo_id: int, exc: Exception, *, counted: bool) -> None:
    """Record the error of an attempt; a transient one gives the attempt back.
    Best effort: if the database is what failed, the attempt stays counted."""
    values: dict[Any, Any] = {Photo.last_error: type(exc).__name__}
    if not counted:
        values[Photo.attempts] = Photo.attempts - 1
    try:
        await Photo.update(values).where(Photo.id == photo_id)
    except Exception:  # noqa: BLE001 - see docstring
        log.warning("photo %s: could not record the attempt's error", photo_id)


async def _process(
    *, photo_id: int, store: ObjectStore, settings: Settings, galleries: GallerySet
) -> str:
    """Detect and encode the faces of a photo, match them, and mark the photo done.

    Steps, each safe to repeat (Dramatiq delivers at least once):
    1. unless ``encoded_at`` is set: decode, detect, encode; store the faces and
       set ``encoded_at`` in one transaction (a concurrent duplicate loses the
       claim and stores nothing);
    2. match against the other side (candidate upserts never duplicate);
    3. set ``status`` to ``processed`` (or ``no_face``/``failed``).

    ``processed`` is therefore only visible once the candidates are.

    Returns:
        The photo's final status (``missing`` if the photo no longer exists).
    """
    photo = await Photo.select().where(Photo.id == photo_id).first()
    if photo is None:
        log.warning("photo %s no longer exists; nothing to do", photo_id)
        return "missing"
    if photo["status"] != PhotoStatus.pending.value:
        return str(photo["status"])
    if photo["encoded_at"] is None:
        outcome = await _encode(photo, store=store, settings=settings)
        if outcome is not None:
            return outcome
    await match_photo(photo_id=photo_id, settings=settings, galleries=galleries)
    await Photo.update(
        {Photo.status: PhotoStatus.processed.value, Photo.processed_at: datetime.now(UTC)}
    ).where((Photo.id == photo_id) & (Photo.status == PhotoStatus.pending.value))
    return PhotoStatus.processed.value


async def _finish(photo_id: int, status: PhotoStatus, reason: str = "") -> str:
    await Photo.update(
        {
            Photo.status: status.value,
            Photo.failure_reason: reason,
            Photo.processed_at: datetime.now(UTC),
        }
    ).where((Photo.id == photo_id) & (Photo.status == PhotoStatus.pending.value))
    return status.value


async def _encode(photo: dict[str, Any], *, store: ObjectStore, settings: Settings) -> str | None:
    """Store the photo's faces. Returns a final status if there is nothing to match."""
    data = await store.aget(photo["object_key"])
    matching = settings.matching

    def detect() -> list[DetectedFace]:
        decoded = decode_for_detection(
            data, max_pixels=settings.upload.max_pixels, min_side=matching.detect_max_side
        )
        return detect_and_encode(
            decoded, detect_max_side=matching.detect_max_side, upsample=matching.detect_upsample
        )

    try:
        faces = await anyio.to_thread.run_sync(detect)
    except ImageRejected as exc:
        return await _finish(photo["id"], PhotoStatus.failed, exc.detail)
    log.info("photo %s: %d face(s) found", photo["id"], len(faces))
    async with Photo._meta.db.transaction():
        claimed = (
            await Photo.update({Photo.encoded_at: datetime.now(UTC)})
            .where((Photo.id == photo["id"]) & Photo.encoded_at.is_null())
            .returning(Photo.id)
        )
        if claimed and faces:
            await Face.insert(
                *[
                    Face(
                        photo=photo["id"],
                        case=photo["case"],
                        notice=photo["notice"],
                        top=f.top,
                        right=f.right,
                        bottom=f.bottom,
                        left=f.left,
                        encoding=np.asarray(f.encoding, dtype="<f8").tobytes(),
                        model=MODEL_NAME,
                    )
                    for f in faces
                ]
            )
    if not faces:
        return await _finish(photo["id"], PhotoStatus.no_face)
    return None


async def match_photo(*, photo_id: int, settings: Settings, galleries: GallerySet) -> list[int]:
    """Match every face of one photo against the other side. Returns candidate ids touched."""
    photo = (
        await Photo.select(Photo.id, Photo.case, Photo.notice).where(Photo.id == photo_id).first()
    )
    if photo is None:
        return []
    faces = await Face.select(Face.encoding).where(Face.photo == photo_id).order_by(Face.id)
    if not faces:
        return []
    probes = np.stack([np.frombuffer(f["encoding"], dtype="<f8") for f in faces])
    threshold = settings.matching.threshold
    if photo["case"] is not None:
        case = await Case.select(Case.status).where(Case.id == photo["case"]).first()
        if case is None or case["status"] not in {s.value for s in IN_CARE_STATUSES}:
            return []
        gallery = await galleries.notices.refresh()
        hits = await anyio.to_thread.run_sync(gallery.search, probes, threshold)
        open_ids = await _open_notice_ids([h.owner_id for h in hits])
        pairs = [
            (photo["case"], h.owner_id, photo_id, h.photo_id, h)
            for h in hits
            if h.owner_id in open_ids
        ]
    else:
        notice = await Notice.select(Notice.status).where(Notice.id == photo["notice"]).first()
        if notice is None or notice["status"] != NoticeStatus.open.value:
            return []
        gallery = await galleries.cases.refresh()
        hits = await anyio.to_thread.run_sync(gallery.search, probes, threshold)
        in_care = await _in_care_case_ids([h.owner_id for h in hits])
        pairs = [
            (h.owner_id, photo["notice"], h.photo_id, photo_id, h)
            for h in hits
            if h.owner_id in in_care
        ]
    log.info(
        "photo %s: %d face(s) vs %d in gallery, %d owner(s) within %.2f, %d eligible",
        photo_id,
        len(probes),
        len(gallery),
        len(hits),
        threshold,
        len(pairs),
    )
    touched = []
    for case_id, notice_id, case_photo, notice_photo, hit in pairs:
        touched.append(
            await upsert_face_candidate(
                case_id=case_id,
                notice_id=notice_id,
                distance=hit.distance,
                case_photo_id=case_photo,
                notice_photo_id=notice_photo,
                threshold=threshold,
            )
        )
    return touched


async def _open_notice_ids(ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = await Notice.select(Notice.id).where(
        Notice.id.is_in(ids) & (Notice.status == NoticeStatus.open.value)
    )
    return {int(r["id"]) for r in rows}


async def _in_care_case_ids(ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = await Case.select(Case.id).where(
        Case.id.is_in(ids) & Case.status.is_in([s.value for s in IN_CARE_STATUSES])
    )
    return {int(r["id"]) for r in rows}


async def upsert_face_candidate(
    *,
    case_id: int,
    notice_id: int,
    distance: float,
    case_photo_id: int,
    notice_photo_id: int,
    threshold: float = 0.6,
    model: str = MODEL_NAME,
) -> int:
    """Create the pair's candidate, or lower its best distance; write or refresh its
    face evidence record (model, threshold, the two photos, distance) and its
    score. Returns the candidate id.

    A rejected pair stays rejected when the face pair comes from photos that were
    already processed at rejection (``rejected_photo_ids``); a new photo brings it
    back as proposed with ``re_proposed`` + 1.

    Safe under concurrent workers: ``pair_key`` is unique and the update only
    applies when the new distance is smaller.
    """
    key = pair_key(case_id, notice_id)
    now = datetime.now(UTC)
    await Candidate.insert(
        Candidate(
            case=case_id,
            notice=notice_id,
            pair_key=key,
            best_distance=distance,
            case_photo=case_photo_id,
            notice_photo=notice_photo_id,
            status=CandidateStatus.proposed.value,
            created_at=now,
            updated_at=now,
        )
    ).on_conflict(target=Candidate.pair_key, action="DO NOTHING")
    await Candidate.update(
        {
            Candidate.best_distance: distance,
            Candidate.case_photo: case_photo_id,
            Candidate.notice_photo: notice_photo_id,
            Candidate.updated_at: now,
        }
    ).where(
        (Candidate.pair_key == key)
        & (Candidate.best_distance.is_null() | (Candidate.best_distance > distance))
    )
    row = (
        await Candidate.select(Candidate.id, Candidate.status, Candidate.rejected_photo_ids)
        .where(Candidate.pair_key == key)
        .first()
    )
    assert row is not None  # inserted above, and candidates are never deleted
    candidate_id = int(row["id"])
    await record_face_evidence(
        candidate_id=candidate_id,
        distance=distance,
        threshold=threshold,
        model=model,
        case_photo_id=case_photo_id,
        notice_photo_id=notice_photo_id,
    )
    if row["status"] == CandidateStatus.rejected.value:
        seen = {int(p) for p in (loads(row["rejected_photo_ids"]) or [])}
        new_photos = sorted({case_photo_id, notice_photo_id} - seen)
        if new_photos:
            await re_propose_if_rejected(
                candidate_id=candidate_id,
                why="face match from a photo added after the rejection",
                actor=None,
                data={"photo_ids": new_photos, "distance": distance},
            )
    await rescore(candidate_id=candidate_id)
    return candidate_id


async def list_candidates(
    *,
    settings: Settings,
    case_id: int | None = None,
    notice_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    stations: list[str] | None = None,
) -> Page[CandidateOut]:
    """Candidates of one case or one notice, best first (score descending, then the
    smallest face distance); only those whose case belongs to ``stations`` (None: all).

    Raises:
        NotFound: the case or notice does not exist.
    """
    if case_id is not None:
        if not await Case.exists().where(Case.id == case_id):
            raise NotFound(f"case {case_id} does not exist")
        where = Candidate.case == case_id
    else:
        if not await Notice.exists().where(Notice.id == notice_id):
            raise NotFound(f"notice {notice_id} does not exist")
        where = Candidate.notice == notice_id
    if stations is not None:
        where = where & Candidate.case.station.is_in(stations or [""])  # type: ignore[assignment]
    rows = (
        await Candidate.select()
        .where(where)
        .order_by(Candidate.score, ascending=False)
        .order_by(Candidate.best_distance)
        .order_by(Candidate.id)
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=await candidate_outs(rows, threshold=settings.matching.threshold),
        total=await Candidate.count().where(where),
        limit=limit,
        offset=offset,
    )


__all__ += ["GalleryHit", "upsert_face_candidate"]
