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

from media.images import ImageRejected, decode_rgb
from media.storage import ObjectStore
from rescue.cases.tables import IN_CARE_STATUSES, Case
from rescue.errors import NotFound
from rescue.matching.embedding import MODEL_NAME, detect_and_encode
from rescue.matching.gallery import FaceGallery, GalleryHit
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
    """Detect and encode the faces of a photo, then match it. Returns the photo's status.

    A photo already past ``pending`` is not re-encoded (idempotent); matching is
    re-run, which changes nothing when nothing changed.
    """
    photo = await Photo.select().where(Photo.id == photo_id).first()
    if photo is None:
        log.warning("photo %s no longer exists; nothing to do", photo_id)
        return "missing"
    status = photo["status"]
    if status == PhotoStatus.pending.value:
        status = await _encode(photo, store=store, settings=settings)
    if status == PhotoStatus.processed.value:
        await match_photo(photo_id=photo_id, settings=settings, galleries=galleries)
    return status


async def _encode(photo: dict[str, Any], *, store: ObjectStore, settings: Settings) -> str:
    data = await store.aget(photo["object_key"])
    matching = settings.matching
    try:
        rgb = await anyio.to_thread.run_sync(
            lambda: decode_rgb(data, max_pixels=settings.upload.max_pixels)
        )
    except ImageRejected as exc:
        await Photo.update(
            {
                Photo.status: PhotoStatus.failed.value,
                Photo.failure_reason: exc.detail,
                Photo.processed_at: datetime.now(UTC),
            }
        ).where(Photo.id == photo["id"])
        return PhotoStatus.failed.value
    faces = await anyio.to_thread.run_sync(
        lambda: detect_and_encode(
            rgb, detect_max_side=matching.detect_max_side, upsample=matching.detect_upsample
        )
    )
    status = PhotoStatus.processed if faces else PhotoStatus.no_face
    async with Photo._meta.db.transaction():
        # Guard against a concurrent duplicate delivery: only one run moves it on.
        claimed = (
            await Photo.update({Photo.status: status.value, Photo.processed_at: datetime.now(UTC)})
            .where((Photo.id == photo["id"]) & (Photo.status == PhotoStatus.pending.value))
            .returning(Photo.id)
        )
        if not claimed:
            current = await Photo.select(Photo.status).where(Photo.id == photo["id"]).first()
            return str(current["status"]) if current else "missing"
        if faces:
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
    return status.value


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
    touched = []
    for case_id, notice_id, case_photo, notice_photo, hit in pairs:
        touched.append(
            await upsert_face_candidate(
                case_id=case_id,
                notice_id=notice_id,
                distance=hit.distance,
                case_photo_id=case_photo,
                notice_photo_id=notice_photo,
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
) -> int:
    """Create the pair's candidate, or lower its best distance. Returns its id.

    Safe under concurrent workers: ``pair_key`` is unique and the update only
    applies when the new distance is smaller.
    """
    pair_key = f"{case_id}:{notice_id}"
    now = datetime.now(UTC)
    await Candidate.insert(
        Candidate(
            case=case_id,
            notice=notice_id,
            pair_key=pair_key,
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
        (Candidate.pair_key == pair_key)
        & (Candidate.best_distance.is_null() | (Candidate.best_distance > distance))
    )
    row = await Candidate.select(Candidate.id).where(Candidate.pair_key == pair_key).first()
    assert row is not None  # inserted above, and candidates are never deleted
    return int(row["id"])


def _explain(distance: float | None, threshold: float) -> str:
    if distance is None:
        return "no face comparison"
    margin = threshold - distance
    return (
        f"closest faces are {distance:.3f} apart (Euclidean, dlib 128-d); "
        f"threshold {threshold:.2f}, margin {margin:+.3f}"
    )


async def list_candidates(
    *,
    settings: Settings,
    case_id: int | None = None,
    notice_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[CandidateOut]:
    """Candidates of one case or one notice, best (smallest distance) first.

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
    rows = (
        await Candidate.select()
        .where(where)
        .order_by(Candidate.best_distance)
        .order_by(Candidate.id)
        .limit(limit)
        .offset(offset)
    )
    threshold = settings.matching.threshold
    items = [
        CandidateOut(
            id=r["id"],
            case_id=r["case"],
            notice_id=r["notice"],
            status=r["status"],
            best_distance=r["best_distance"],
            threshold=threshold,
            case_photo_id=r["case_photo"],
            notice_photo_id=r["notice_photo"],
            explanation=_explain(r["best_distance"], threshold),
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]
    return Page(items=items, total=await Candidate.count().where(where), limit=limit, offset=offset)


__all__ += ["GalleryHit", "upsert_face_candidate"]
