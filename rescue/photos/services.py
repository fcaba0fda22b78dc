"""Photo upload (original to the object store, record to the database) and lookup.

Upload is all-or-nothing: the bytes are validated first (media type sniffed
from the bytes, full decode, size and pixel limits), then stored, then
recorded; if recording fails the stored object is removed again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import anyio.to_thread

from media.images import ACCEPTED_MEDIA_TYPES, ImageRejected, inspect_image
from media.storage import ObjectStore, new_object_key
from rescue.cases.tables import Case
from rescue.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMedia,
)
from rescue.notices.tables import Notice
from rescue.photos.schemas import FaceBox, PhotoOut, PhotoSummary
from rescue.photos.tables import Face, Photo, PhotoStatus
from rescue.settings import UploadSettings
from rescue.users.services import Principal

__all__ = ["get_photo", "photo_summaries", "upload_photo"]

log = logging.getLogger(__name__)

ACCEPTED = {
    "media_types": sorted({media for media, _ in ACCEPTED_MEDIA_TYPES.values()}),
}


def _reject(exc: ImageRejected, limits: UploadSettings) -> InvalidInput:
    accepted = {**ACCEPTED, "max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels}
    if exc.reason in {"not_an_image", "unsupported_format"}:
        return UnsupportedMedia(exc.detail, accepted=accepted, reason=exc.reason)
    if exc.reason == "too_many_pixels":
        return PayloadTooLarge(exc.detail, accepted=accepted, reason=exc.reason)
    return InvalidInput(exc.detail, accepted=accepted, reason=exc.reason)


async def upload_photo(
    *,
    owner: str,
    owner_id: int,
    data: bytes,
    taken_on: date | None,
    by: Principal,
    store: ObjectStore,
    limits: UploadSettings,
    enqueue: Callable[[int], Awaitable[None]],
) -> PhotoOut:
    """Store a photo of a case (``owner="case"``) or notice (``owner="notice"``).

    Args:
        data: the uploaded bytes (at most ``limits.max_bytes``).
        enqueue: schedules face processing for the new photo id.

    Returns:
        The photo with ``status="pending"``.

    Raises:
        NotFound: the case or notice does not exist.
        InvalidInput: empty or corrupt/truncated file (400).
        UnsupportedMedia: not an image, or not JPEG/PNG/WebP (415).
        PayloadTooLarge: over the byte or pixel limit (413).
        Conflict: the same bytes are already a photo of this owner (409).
    """
    table = Case if owner == "case" else Notice
    if not await table.exists().where(table.id == owner_id):
        raise NotFound(f"{owner} {owner_id} does not exist")
    if not data:
        raise InvalidInput("the file is empty", accepted=ACCEPTED)
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"the file is {len(data)} bytes; the limit is {limits.max_bytes}",
            accepted={**ACCEPTED, "max_bytes": limits.max_bytes},
        )
    try:
        info = await anyio.to_thread.run_sync(
            lambda: inspect_image(data, max_pixels=limits.max_pixels)
        )
    except ImageRejected as exc:
        raise _reject(exc, limits) from exc
    digest = hashlib.sha256(data).hexdigest()
    owner_column = Photo.case if owner == "case" else Photo.notice
    existing = (
        await Photo.select(Photo.id)
        .where((owner_column == owner_id) & (Photo.sha256 == digest))
        .first()
    )
    if existing is not None:
        raise Conflict(
            f"this file is already photo {existing['id']} of {owner} {owner_id}",
            photo_id=existing["id"],
        )
    key = new_object_key("photos", info.extension)
    await store.aput(key, data, info.media_type)
    try:
        rows = await Photo.insert(
            Photo(
                case=owner_id if owner == "case" else None,
                notice=owner_id if owner == "notice" else None,
                object_key=key,
                sha256=digest,
                size_bytes=len(data),
                media_type=info.media_type,
                width=info.width,
                height=info.height,
                taken_on=taken_on,
                status=PhotoStatus.pending.value,
                uploaded_by=by.user_id,
            )
        ).returning(Photo.id)
    except BaseException:
        # Never leave an object the database does not know about.
        await store.aremove(key)
        raise
    photo_id = int(rows[0]["id"])
    try:
        await enqueue(photo_id)
    except Exception:  # the photo stays pending; `rescue photos requeue` picks it up
        log.exception("could not enqueue photo %s; it stays pending", photo_id)
    return await get_photo(photo_id=photo_id)


async def get_photo(*, photo_id: int, store: ObjectStore | None = None) -> PhotoOut:
    """A photo's record, face boxes and (with ``store``) a presigned URL.

    Raises:
        NotFound: no such photo.
    """
    row = await Photo.select().where(Photo.id == photo_id).first()
    if row is None:
        raise NotFound(f"photo {photo_id} does not exist")
    faces = (
        await Face.select(Face.id, Face.top, Face.right, Face.bottom, Face.left)
        .where(Face.photo == photo_id)
        .order_by(Face.id)
    )
    url = None
    if store is not None:
        url = await store.apresigned_url(row["object_key"])
    return PhotoOut(
        id=row["id"],
        status=row["status"],
        case_id=row["case"],
        notice_id=row["notice"],
        media_type=row["media_type"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        width=row["width"],
        height=row["height"],
        taken_on=row["taken_on"].isoformat() if row["taken_on"] else None,
        created_at=row["created_at"],
        processed_at=row["processed_at"],
        failure_reason=row["failure_reason"] or None,
        faces=[FaceBox(**f) for f in faces],
        url=url,
        url_expires_in=store.presign_seconds if store is not None else None,
    )


async def photo_summaries(
    *, case_id: int | None = None, notice_id: int | None = None
) -> list[PhotoSummary]:
    """Photos of one case or one notice, oldest first."""
    column = Photo.case if case_id is not None else Photo.notice
    rows: list[dict[str, Any]] = (
        await Photo.select(Photo.id, Photo.status, Photo.taken_on, Photo.created_at)
        .where(column == (case_id if case_id is not None else notice_id))
        .order_by(Photo.id)
    )
    return [
        PhotoSummary(
            id=p["id"],
            status=p["status"],
            taken_on=p["taken_on"].isoformat() if p["taken_on"] else None,
            created_at=p["created_at"],
        )
        for p in rows
    ]


async def pending_photo_ids() -> list[int]:
    """Photos still waiting for face processing (e.g. after a broker outage)."""
    rows = await Photo.select(Photo.id).where(Photo.status == PhotoStatus.pending.value)
    return [int(r["id"]) for r in rows]
