"""Face processing of a photo, and matching it against the other side.

Called by the Dramatiq actor ``workers.actors.process_photo`` with a photo id.
Idempotent: a photo already processed is not processed again, and matching
only ever lowers a candidate's best distance (at-least-once delivery safe).

Matching runs both ways:
- a case photo is compared with the faces of every *open* notice;
- a notice photo is compared with the faces of every case *still in care*.
The owner of the photo is searched as one identity (all its faces), and only
its best few pairs by the full score, within a loose distance bound, become (or
update) their single candidates (:func:`match_photo`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import numpy as np

from media.images import ImageRejected, decode_for_detection
from media.storage import ObjectMissing, ObjectStore
from rescue import clock
from rescue.cases.tables import IN_CARE_STATUSES, Case
from rescue.db import concurrently
from rescue.errors import NotFound, is_unavailable
from rescue.i18n import _
from rescue.matching.calibration import calibration_for
from rescue.matching.embedding import MODEL_NAME, DetectedFace, detect_and_encode
from rescue.matching.filters import relaxed_filters_of
from rescue.matching.gallery import FaceGallery, GalleryHit
from rescue.matching.ledger import (
    FaceMatch,
    candidate_outs,
    loads,
    pair_key,
    record_face_matches,
)
from rescue.matching.quality import FaceQuality
from rescue.matching.quality import of_detected as face_quality
from rescue.matching.schemas import CandidateOut
from rescue.matching.scoring import EvidenceInput, compute_score, excluded_by
from rescue.matching.tables import (
    RELOAD_MARKER,
    Candidate,
    CandidateStatus,
    FaceDeletion,
    MatchFilteredPair,
)
from rescue.notices.tables import Notice, NoticeStatus
from rescue.photos.tables import Face, Photo, PhotoStatus
from rescue.schemas import Page
from rescue.settings import Settings

__all__ = [
    "GallerySet",
    "detect_faces",
    "face_rows",
    "hits_on_current_faces",
    "list_candidates",
    "match_photo",
    "process_photo",
    "process_photo_job",
]

log = logging.getLogger(__name__)

#: Faces fetched per query when a worker loads its gallery (~1 KB each in flight).
_LOAD_BATCH = 20_000
#: Seconds a face id missing under the largest id seen is looked up again: an
#: insert by another worker commits within milliseconds of taking its id; after
#: this the id is taken to be rolled back.
GAP_SECONDS = 120.0
#: Gaps are looked for only among this many ids under the largest one loaded.
GAP_WINDOW = 10_000
#: People looked at per candidate kept: the nearest POOL_PER_CANDIDATE × MATCH_CANDIDATES
#: within the loose bound are scored, so a filtered or implausible near one
#: still leaves enough to choose from, and a crowded bound stays cheap.
POOL_PER_CANDIDATE = 20


def _note_skipped(gaps: dict[int, float], after: int, upto: int, present: list[int]) -> None:
    """Remember in ``gaps`` (first seen now, rescue.clock.monotonic) the ids in
    (``after``, ``upto``] not in ``present``; only the top :data:`GAP_WINDOW` ids
    (writes in flight hold the newest ids; older holes are deleted faces, or
    writes rolled back)."""
    after = max(after, upto - GAP_WINDOW)
    missing = np.setdiff1d(
        np.arange(after + 1, upto + 1, dtype=np.int64), np.array(present, dtype=np.int64)
    )
    first_seen = clock.monotonic()
    for gap in missing.tolist():
        gaps.setdefault(int(gap), first_seen)


def _recent(gaps: dict[int, float]) -> dict[int, float]:
    """The gaps first seen less than :data:`GAP_SECONDS` ago (older ones: rolled back)."""
    cutoff = clock.monotonic() - GAP_SECONDS
    return {k: v for k, v in gaps.items() if v >= cutoff}


@dataclass
class SideGallery:
    """The gallery of one side (``case`` or ``notice``), kept in step with the faces table.

    Per job it reads only what changed, never the whole table:

    - new faces: ids above the largest seen (index range scan);
    - deleted faces: the deletion log ``face_deletions`` (a trigger on ``faces``)
      after the last entry read. An entry with face id 0
      (:data:`~rescue.matching.tables.RELOAD_MARKER`) means the log before it
      is incomplete, and the gallery reloads: the faces table was truncated, or
      the retention run pruned old entries (rescue.retention.prune_deletion_log
      leaves the marker in place of the newest pruned entry, so a gallery whose
      last entry read is older than that sees the marker, while one that read
      past it goes on incrementally);
    - late commits: a face id under the largest seen that was not visible yet
      (another worker's insert still uncommitted, or rolled back) is a *gap*; gaps
      are looked up again by id on each refresh for :data:`GAP_SECONDS` (inserts
      commit within milliseconds), then forgotten (rolled back). The deletion log
      has the same race: its ids are taken when a face is deleted but seen when
      the deletion commits, so a deletion committed after a later one would
      otherwise be passed over for good (the face kept until the worker
      restarts). Log ids under the largest read that were not visible yet (at a
      reload too) are *deletion gaps*, read again with the new entries on each
      refresh and forgotten after :data:`GAP_SECONDS` (a deletion rolled back
      leaves a hole for good).

    Only the first load counts the side's faces, to size the gallery exactly.

    Only faces encoded by the model in use (``MODEL_NAME``) are loaded: distances
    between encodings of two models mean nothing, so a gallery never mixes model
    versions; faces of another model wait for a re-encoding run
    (rescue.matching.reencode), which writes them again as new faces.
    """

    side: str
    gallery: FaceGallery = field(default_factory=FaceGallery)
    last_face_id: int = 0
    last_deletion_id: int = 0
    #: Face ids not visible when a larger one was loaded → first seen (rescue.clock.monotonic).
    gaps: dict[int, float] = field(default_factory=dict)
    #: Deletion-log ids not visible when a larger one was read → first seen (the same).
    deletion_gaps: dict[int, float] = field(default_factory=dict)
    lock: asyncio.Lock | None = None

    @property
    def owner_column(self) -> Any:
        return Face.case if self.side == "case" else Face.notice

    def _add_rows(self, rows: list[dict[str, Any]]) -> None:
        mine = [r for r in rows if r[self.side] is not None and not r["retake"]]
        if mine:
            self.gallery.add(
                np.array([r["id"] for r in mine]),
                np.array([r[self.side] for r in mine]),
                np.array([r["photo"] for r in mine]),
                np.stack([np.frombuffer(r["encoding"], dtype="<f8") for r in mine]),
            )

    async def _load_since(self, face_id: int) -> None:
        """Add faces with id > ``face_id``, ``_LOAD_BATCH`` rows per query (bounded memory)."""
        owner = self.owner_column
        start = face_id
        while True:
            rows = (
                await Face.select(Face.id, owner, Face.photo, Face.encoding, Face.retake)
                .where(owner.is_not_null() & (Face.id > face_id) & (Face.model == MODEL_NAME))
                .order_by(Face.id)
                .limit(_LOAD_BATCH)
            )
            if rows:
                self._add_rows(rows)
                face_id = int(rows[-1]["id"])
                self.last_face_id = max(self.last_face_id, face_id)
            if len(rows) < _LOAD_BATCH:
                break
        if self.last_face_id > start:
            await self._note_gaps(start, self.last_face_id)

    async def _note_gaps(self, after: int, upto: int) -> None:
        """Remember ids in (``after``, ``upto``] that no face has (on either side) now
        (:func:`_note_skipped`)."""
        after = max(after, upto - GAP_WINDOW)
        present = [
            int(r["id"])
            for r in await Face.select(Face.id).where((Face.id > after) & (Face.id <= upto))
        ]
        _note_skipped(self.gaps, after, upto, present)

    async def _fill_gaps(self) -> None:
        """Load faces that appeared under ids noted as gaps; forget old gaps."""
        if not self.gaps:
            return
        rows = await Face.select(
            Face.id, self.owner_column, Face.photo, Face.encoding, Face.retake
        ).where(Face.id.is_in(list(self.gaps)) & (Face.model == MODEL_NAME))
        self._add_rows(rows)
        for r in rows:
            self.gaps.pop(int(r["id"]), None)
        self.gaps = _recent(self.gaps)

    async def _apply_deletions(self) -> None:
        """Remove the faces of the log entries after the last one read and of those
        that appeared under ids noted as deletion gaps (one query); note the ids
        skipped under the largest read as deletion gaps, forget old ones."""
        after = self.last_deletion_id
        where: Any = FaceDeletion.id > after
        if self.deletion_gaps:
            where = where | FaceDeletion.id.is_in(list(self.deletion_gaps))
        rows = (
            await FaceDeletion.select(FaceDeletion.id, FaceDeletion.face_id)
            .where(where)
            .order_by(FaceDeletion.id)
        )
        if any(int(r["face_id"]) == RELOAD_MARKER for r in rows):
            # The faces table was truncated, or entries this gallery had not read
            # were pruned (rescue.retention): the log cannot say what went.
            log.info("%s gallery: deletion log truncated or pruned, reloading", self.side)
            await self._reload()
            return
        ids = [int(r["id"]) for r in rows]
        if rows:
            self.gallery.remove([int(r["face_id"]) for r in rows])
        for entry_id in ids:
            self.deletion_gaps.pop(entry_id, None)
        if ids and ids[-1] > after:
            self.last_deletion_id = ids[-1]
            _note_skipped(self.deletion_gaps, after, ids[-1], ids)
        self.deletion_gaps = _recent(self.deletion_gaps)

    async def _reload(self) -> None:
        """Load the whole side into a new gallery sized exactly (no growth slack)."""
        # The log position first: a deletion during the load is applied next time
        # (removing a face not held is a no-op). Ids under it not visible yet are
        # deletion gaps, except under a reload marker: a truncate waits for every
        # deletion in progress, and pruned entries are days old.
        tail = (
            await FaceDeletion.select(FaceDeletion.id, FaceDeletion.face_id)
            .order_by(FaceDeletion.id, ascending=False)
            .limit(GAP_WINDOW)
        )
        ids = [int(r["id"]) for r in tail]
        self.last_deletion_id = ids[0] if ids else 0
        markers = [int(r["id"]) for r in tail if int(r["face_id"]) == RELOAD_MARKER]
        self.deletion_gaps = {}
        _note_skipped(self.deletion_gaps, max(markers, default=0), self.last_deletion_id, ids)
        total = await Face.count().where(
            self.owner_column.is_not_null() & (Face.model == MODEL_NAME)
        )
        self.gallery, self.last_face_id, self.gaps = FaceGallery(capacity=max(1, total)), 0, {}
        await self._load_since(0)

    async def refresh(self) -> FaceGallery:
        """Bring the gallery up to date (see the class docstring); returns it.

        The first call loads everything at the exact size; later calls apply the
        deletion log, look up gaps, and add faces with a larger id than any seen.
        """
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if self.last_face_id == 0 and len(self.gallery) == 0:
                await self._reload()
            else:
                await self._apply_deletions()
                await self._fill_gaps()
                await self._load_since(self.last_face_id)
            return self.gallery


@dataclass
class GallerySet:
    """One worker process's galleries (both sides)."""

    cases: SideGallery = field(default_factory=lambda: SideGallery("case"))
    notices: SideGallery = field(default_factory=lambda: SideGallery("notice"))


async def process_photo(
    *,
    photo_id: int,
    store: ObjectStore,
    settings: Settings,
    galleries: GallerySet,
    alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> str:
    """Process a pending photo (:func:`_process`), counting attempts, and end it
    ``failed`` with a reason a person can act on when it cannot succeed.

    ``alongside``: more work on the photo once its faces are stored (the worker's
    duplicate-intake check), run while the photo is matched (:func:`_process`). It
    must be idempotent and keep its own errors (it is not run at all when the
    photo ends without being matched).

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
        .returning(*Photo.all_columns())
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
            photo_id=photo_id,
            store=store,
            settings=settings,
            galleries=galleries,
            photo=started[0],
            alongside=alongside,
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


async def process_photo_job(
    *, photo_id: int, store: ObjectStore, settings: Settings, galleries: GallerySet
) -> str:
    """The worker's whole job for a new photo (workers.actors.process_photo): detect,
    encode and match its faces (:func:`process_photo`), and compare a case photo's
    faces with the other cases (duplicate intake,
    rescue.duplicates.services.check_photo_faces), the two concurrently where the
    database allows (:func:`_process`). Idempotent.

    Returns:
        The photo's status.

    Raises:
        Exception: a failure worth retrying: of the photo's processing (see
        :func:`process_photo`), else of the duplicate check, once the photo's
        matching has ended (a retry finds the photo processed and checks again).
    """
    from rescue.duplicates.services import check_photo_faces

    checked: list[Exception | None] = []

    async def check_duplicates() -> None:
        try:
            await check_photo_faces(
                photo_id=photo_id, galleries=galleries, threshold=settings.matching.threshold
            )
        except Exception as exc:  # noqa: BLE001  (kept, raised once matching has ended)
            checked.append(exc)
        else:
            checked.append(None)

    status = await process_photo(
        photo_id=photo_id,
        store=store,
        settings=settings,
        galleries=galleries,
        alongside=check_duplicates,
    )
    if not checked:  # not matched by this call (done before, or no face): check now
        await check_duplicates()
    if checked[0] is not None:
        raise checked[0]
    return status


async def _process(
    *,
    photo_id: int,
    store: ObjectStore,
    settings: Settings,
    galleries: GallerySet,
    photo: dict[str, Any] | None = None,
    alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> str:
    """Detect and encode the faces of a photo, match them, and mark the photo done.

    Steps, each safe to repeat (Dramatiq delivers at least once):
    1. unless ``encoded_at`` is set: decode, detect, encode; store the faces and
       set ``encoded_at`` in one transaction (a concurrent duplicate loses the
       claim and stores nothing);
    2. match against the other side (candidate upserts never duplicate);
    3. set ``status`` to ``processed`` (or ``no_face``/``failed``).

    ``processed`` is therefore only visible once the candidates are (one
    transaction, :func:`match_photo`). ``photo``: its row as :func:`process_photo`
    has just claimed it (not read again).

    ``alongside`` (see :func:`process_photo`) runs with step 2 on PostgreSQL, on
    its own pooled connection: its queries then wait on the database while the
    gallery scan keeps the CPUs busy (issue 16: the duplicate-intake check took
    ~9 ms of a one-face job's ~30 ms outside detection, search and refresh). On
    SQLite, one writer at a time, it runs after step 3 (rescue.db.concurrently). A
    failure of step 2 propagates as itself, not in an exception group, so that
    :func:`process_photo` still tells a database gone away from a real failure.

    Returns:
        The photo's final status (``missing`` if the photo no longer exists).
    """
    if photo is None:  # not given as just claimed by process_photo
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

    async def processed() -> None:
        await Photo.update(
            {Photo.status: PhotoStatus.processed.value, Photo.processed_at: clock.now()}
        ).where((Photo.id == photo_id) & (Photo.status == PhotoStatus.pending.value))

    async def match() -> None:
        await match_photo(
            photo_id=photo_id, settings=settings, galleries=galleries, photo=photo, then=processed
        )

    await concurrently(match, *([alongside] if alongside is not None else []))
    return PhotoStatus.processed.value


async def _finish(photo_id: int, status: PhotoStatus, reason: str = "") -> str:
    await Photo.update(
        {
            Photo.status: status.value,
            Photo.failure_reason: reason,
            Photo.processed_at: clock.now(),
        }
    ).where((Photo.id == photo_id) & (Photo.status == PhotoStatus.pending.value))
    return status.value


def detect_faces(data: bytes, settings: Settings) -> tuple[list[DetectedFace], list[FaceQuality]]:
    """Decode an original, detect and encode its faces with the model in use, and
    measure each face's quality (blocking: run it in a thread).

    Raises:
        ImageRejected: the file cannot be decoded or is too large.
    """
    matching = settings.matching
    decoded = decode_for_detection(
        data, max_pixels=settings.upload.max_pixels, min_side=matching.detect_max_side
    )
    found = detect_and_encode(
        decoded, detect_max_side=matching.detect_max_side, upsample=matching.detect_upsample
    )
    return found, [face_quality(decoded, (f.top, f.right, f.bottom, f.left)) for f in found]


def face_rows(
    photo: dict[str, Any], faces: list[DetectedFace], qualities: list[FaceQuality]
) -> list[Face]:
    """``faces`` rows of a photo (``id``, ``case``, ``notice``), encoded by ``MODEL_NAME``."""
    return [
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
            quality=q.as_dict(),
            retake=bool(q.retake),
        )
        for f, q in zip(faces, qualities, strict=True)
    ]


async def _encode(photo: dict[str, Any], *, store: ObjectStore, settings: Settings) -> str | None:
    """Store the photo's faces. Returns a final status if there is nothing to match."""
    data = await store.aget(photo["object_key"])
    try:
        faces, qualities = await anyio.to_thread.run_sync(detect_faces, data, settings)
    except ImageRejected as exc:
        from rescue.documents import refusal_message

        log.info("photo %s refused: %s (%s)", photo["id"], exc.reason, exc.detail)
        return await _finish(
            photo["id"],
            PhotoStatus.failed,
            refusal_message(exc.reason, max_pixels=settings.upload.max_pixels),
        )
    log.info("photo %s: %d face(s) found", photo["id"], len(faces))
    async with Photo._meta.db.transaction():
        claimed = (
            await Photo.update({Photo.encoded_at: clock.now()})
            .where((Photo.id == photo["id"]) & Photo.encoded_at.is_null())
            .returning(Photo.id)
        )
        if claimed and faces:
            await Face.insert(*face_rows(photo, faces, qualities))
    if not faces:
        return await _finish(photo["id"], PhotoStatus.no_face)
    return None


async def match_photo(
    *,
    photo_id: int,
    settings: Settings,
    galleries: GallerySet,
    photo: dict[str, Any] | None = None,
    then: Callable[[], Awaitable[Any]] | None = None,
) -> list[int]:
    """Match the owner of one photo against the other side; returns candidate ids touched.

    The owner (a case, or a notice) is searched as one identity: every face of all
    its photos, so photos at several ages each get their chance and the best
    photo pair decides (the candidate names it). Steps:

    1. every person of the other side with a face within the loose bound
       (``MATCH_LOOSE_BOUND``, else the model's calibration), their best face pair;
    2. only those still eligible (open notices; cases in care), nearest
       :data:`POOL_PER_CANDIDATE` × ``MATCH_CANDIDATES`` first;
    3. filters of a sure difference (sex; docs/scoring.md) remove pairs, unless a
       reviewer relaxed the filter for the case or the notice
       (rescue.matching.filters); removed pairs are recorded for the reviewer's page;
    4. the rest ranked by the full score (rescue.matching.scoring), then distance;
       the best ``MATCH_CANDIDATES`` become (or update) candidates, each with the
       gallery's size in people for its confidence band.

    The ledger keeps one row per pair, its reviews and exclusions
    (rescue.matching.ledger.record_face_matches, all pairs of the search at once);
    a pair outside the best few is not removed if it was proposed before.

    Reads and the search run first; the writes (filtered pairs, the ledger) then in
    one short transaction, with ``then`` (e.g. marking the photo processed) at its
    end: one commit per job, not one per statement (each a WAL flush, 1-5 ms on
    this VM; issue 16), and a reader never sees the photo processed before its
    candidates.

    ``photo``: the photo's row (``id``, ``case``, ``notice``) when the caller has
    just read it (not read again). Per job, before the writes: 8-9 statements on
    PostgreSQL (owner's faces, owner, calibration id, gallery refresh 2-3, hits'
    faces, eligible rows, relaxed filters).
    """
    write = await _plan_matches(
        photo_id=photo_id, settings=settings, galleries=galleries, photo=photo
    )
    if write is None and then is None:
        return []
    async with Candidate._meta.db.transaction():
        touched = await write() if write is not None else []
        if then is not None:
            await then()
    return touched


async def _plan_matches(
    *,
    photo_id: int,
    settings: Settings,
    galleries: GallerySet,
    photo: dict[str, Any] | None,
) -> Callable[[], Awaitable[list[int]]] | None:
    """:func:`match_photo`'s reads and search; returns its writes (None: nothing to
    write)."""
    if photo is None:
        photo = (
            await Photo.select(Photo.id, Photo.case, Photo.notice)
            .where(Photo.id == photo_id)
            .first()
        )
    if photo is None:
        return None
    is_case = photo["case"] is not None
    owner_id = int(photo["case"] if is_case else photo["notice"])
    owner_column = Face.case if is_case else Face.notice
    # Every face of the owner, once: this photo's (all too poor?) and the probes.
    owner_faces = (
        await Face.select(Face.photo, Face.encoding, Face.quality, Face.retake, Face.model)
        .where(owner_column == owner_id)
        .order_by(Face.id)
    )
    own_faces = [f for f in owner_faces if f["photo"] == photo_id]
    if not own_faces:
        return None
    if all(f["retake"] for f in own_faces):
        # Too poor to match: say so instead of matching it silently.
        reasons = sorted(
            {r for f in own_faces for r in (loads(f["quality"]) or {}).get("retake", [])}
        )
        await Photo.update({Photo.failure_reason: "retake: " + ", ".join(reasons)}).where(
            Photo.id == photo_id
        )
        log.info("photo %s: every face too poor to match (%s)", photo_id, reasons)
        return None
    matching = settings.matching
    if is_case:
        own = await Case.select().where(Case.id == owner_id).first()
        if own is None or own["status"] not in {s.value for s in IN_CARE_STATUSES}:
            return None
        side = galleries.notices
    else:
        own = await Notice.select().where(Notice.id == owner_id).first()
        if own is None or own["status"] != NoticeStatus.open.value:
            return None
        side = galleries.cases
    faces = [f for f in owner_faces if not f["retake"] and f["model"] == MODEL_NAME]
    if not faces:
        log.info("photo %s: no face of its owner encoded by %s yet", photo_id, MODEL_NAME)
        return None
    probes = np.stack([np.frombuffer(f["encoding"], dtype="<f8") for f in faces])
    probe_photos = [int(f["photo"]) for f in faces]
    probe_quality = [loads(f["quality"]) or {} for f in faces]
    calibration = await calibration_for(MODEL_NAME)
    bound = matching.loose_bound or (calibration.loose_bound if calibration else matching.threshold)
    gallery = await side.refresh()
    hits = await anyio.to_thread.run_sync(gallery.search, probes, bound)
    hits, qualities = await hits_on_current_faces(hits[: POOL_PER_CANDIDATE * matching.candidates])
    others = await _eligible_rows(is_case=is_case, ids=[h.owner_id for h in hits])
    own_side, other_side = ("case", "notice") if is_case else ("notice", "case")
    relaxed = await relaxed_filters_of(
        {own_side: [owner_id], other_side: list(others)} if others else {own_side: [owner_id]}
    )
    own_relaxed = relaxed[own_side].get(owner_id, set())
    other_relaxed = relaxed[other_side]
    ranked: list[tuple[float, float, GalleryHit]] = []
    removed: dict[int, tuple[str, float]] = {}
    for hit in hits:
        other = others.get(hit.owner_id)
        if other is None:
            continue
        case_row, notice_row = (own, other) if is_case else (other, own)
        exclusions = excluded_by(
            case_row,
            notice_row,
            filter_sex=matching.filter_sex,
            relaxed=own_relaxed | other_relaxed.get(hit.owner_id, set()),
        )
        if exclusions:
            removed[hit.owner_id] = (exclusions[0], hit.distance)
            continue
        score = compute_score(
            case=case_row,
            notice=notice_row,
            evidence=[
                EvidenceInput(
                    kind="face", values={}, distance=hit.distance, threshold=matching.threshold
                )
            ],
        ).score
        ranked.append((-score, hit.distance, hit))
    ranked.sort(key=lambda r: (r[0], r[1], r[2].owner_id))
    filtered = len(removed)
    chosen = [hit for _score, _distance, hit in ranked[: matching.candidates]]
    people = gallery.owner_count
    log.info(
        "photo %s: %d face(s) of its owner vs %d people (%d faces); %d within %.2f, "
        "%d eligible, %d filtered, %d kept",
        photo_id,
        len(probes),
        people,
        len(gallery),
        len(hits),
        bound,
        len(others),
        filtered,
        len(chosen),
    )
    matches = []
    for hit in chosen:
        own_photo = probe_photos[hit.probe_index]
        own_q, other_q = probe_quality[hit.probe_index], qualities.get(hit.face_id, {})
        matches.append(
            FaceMatch(
                case_id=owner_id if is_case else hit.owner_id,
                notice_id=hit.owner_id if is_case else owner_id,
                distance=hit.distance,
                case_photo_id=own_photo if is_case else hit.photo_id,
                notice_photo_id=hit.photo_id if is_case else own_photo,
                face_quality={
                    "case": own_q if is_case else other_q,
                    "notice": other_q if is_case else own_q,
                },
            )
        )
    chosen_rows = {hit.owner_id: others[hit.owner_id] for hit in chosen}
    assert own is not None

    async def write() -> list[int]:
        await _record_filtered(
            is_case=is_case, owner_id=owner_id, removed=removed, kept=[h for *_r, h in ranked]
        )
        return await record_face_matches(
            matches,
            threshold=matching.threshold,
            model=MODEL_NAME,
            gallery_size=people,
            cases={owner_id: own} if is_case else chosen_rows,
            notices=chosen_rows if is_case else {owner_id: own},
            calibration=calibration,
        )

    return write


async def hits_on_current_faces(
    hits: list[GalleryHit],
) -> tuple[list[GalleryHit], dict[int, dict[str, Any]]]:
    """Drop hits on faces no longer encoded by the model in use: a worker started
    before the faces' model was changed may still hold them (its gallery drops them
    when a re-encoding run replaces them); and on faces deleted that a gallery
    still holds (a deletion not read yet). Also returns the kept faces' quality by
    face id (read in the same statement). Used by the duplicate-intake search too
    (rescue.matching.duplicates)."""
    if not hits:
        return hits, {}
    current = {
        int(r["id"]): loads(r["quality"]) or {}
        for r in await Face.select(Face.id, Face.quality).where(
            Face.id.is_in([h.face_id for h in hits]) & (Face.model == MODEL_NAME)
        )
    }
    return [h for h in hits if h.face_id in current], current


async def _record_filtered(
    *,
    is_case: bool,
    owner_id: int,
    removed: dict[int, tuple[str, float]],
    kept: list[GalleryHit],
) -> None:
    """Keep ``match_filtered_pairs`` in step with this search: pairs a filter removed
    are (re)written, pairs it kept are no longer removed (rescue.matching.filters)."""

    def ids(other: int) -> tuple[int, int]:
        return (owner_id, other) if is_case else (other, owner_id)

    kept_keys = [pair_key(*ids(h.owner_id)) for h in kept]
    if kept_keys:
        await MatchFilteredPair.delete().where(MatchFilteredPair.pair_key.is_in(kept_keys))
    now = clock.now()
    for other, (name, distance) in removed.items():
        case_id, notice_id = ids(other)
        key = pair_key(case_id, notice_id)
        await MatchFilteredPair.insert(
            MatchFilteredPair(
                pair_key=key,
                case=case_id,
                notice=notice_id,
                filter=name,
                distance=distance,
                updated_at=now,
            )
        ).on_conflict(
            target=MatchFilteredPair.pair_key,
            action="DO UPDATE",
            values=[
                MatchFilteredPair.filter,
                MatchFilteredPair.distance,
                MatchFilteredPair.updated_at,
            ],
        )


async def _eligible_rows(*, is_case: bool, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Rows of the other side still matchable: open notices (for a case's photo) or
    cases in care (for a notice's photo), by id."""
    if not ids:
        return {}
    if is_case:
        rows = await Notice.select().where(
            Notice.id.is_in(ids) & (Notice.status == NoticeStatus.open.value)
        )
    else:
        rows = await Case.select().where(
            Case.id.is_in(ids) & Case.status.is_in([s.value for s in IN_CARE_STATUSES])
        )
    return {int(r["id"]): r for r in rows}


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
    smallest face distance); only those whose case belongs to ``stations`` (None: all)
    and, for a notice registered by one of ``stations``, its candidates (not
    rejected) at other stations too (rescue.stations: the notice's station).

    Raises:
        NotFound: the case or notice does not exist.
    """
    if case_id is not None:
        if not await Case.exists().where(Case.id == case_id):
            raise NotFound(_("case {case_id} does not exist", case_id=case_id))
        where = Candidate.case == case_id
    else:
        if not await Notice.exists().where(Notice.id == notice_id):
            raise NotFound(_("notice {notice_id} does not exist", notice_id=notice_id))
        where = Candidate.notice == notice_id
    if stations is not None:
        scope = Candidate.case.station.is_in(stations or [""])
        if notice_id is not None:  # our notice's candidates at other stations (登记站)
            scope = scope | (  # type: ignore[assignment]
                Candidate.notice.station.is_in(stations or [""])
                & (Candidate.status != CandidateStatus.rejected.value)
            )
        where = where & scope  # type: ignore[assignment]
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


__all__ += ["GalleryHit"]
