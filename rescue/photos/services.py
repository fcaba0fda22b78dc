"""Photo upload (original to the object store, record to the database) and lookup.

Upload is all-or-nothing: the bytes are validated first (media type sniffed
from the bytes, full decode, size and pixel limits), then stored, then
recorded. What exists afterwards is decided from the database, not from the
exception: if recording raised, the photo row is looked up by its object key
(the INSERT may have committed before the connection dropped); the object is
removed only when no row refers to it. If even that cannot be decided, the
object is left for the recovery sweep (rescue.recovery), which removes objects
no row refers to once they are ``ORPHAN_GRACE_SECONDS`` old.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import anyio
import anyio.to_thread

from media.images import ACCEPTED_MEDIA_TYPES, ImageRejected, inspect_image
from media.storage import ObjectStore, StorageUnavailable, new_object_key
from rescue import clock
from rescue.audit import unit
from rescue.cases.tables import Case
from rescue.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMedia,
    is_unavailable,
)
from rescue.i18n import _
from rescue.notices.tables import Notice
from rescue.photos.schemas import FaceBox, PhotoOut, PhotoSummary
from rescue.photos.tables import Face, Photo, PhotoStatus
from rescue.settings import UploadSettings, get_settings
from rescue.users.services import Principal

__all__ = [
    "Backlog",
    "get_photo",
    "pending_backlog",
    "pending_photo_ids",
    "photo_summaries",
    "queue_photos",
    "upload_photo",
]

#: Waits (seconds) between looking a photo row up again after its INSERT failed.
_DECIDE_WAITS = (0.0, 0.2, 0.5, 1.0, 2.0)

log = logging.getLogger(__name__)

ACCEPTED = {
    "media_types": sorted({media for media, _ in ACCEPTED_MEDIA_TYPES.values()}),
}


def _owner(owner: str) -> str:
    """ "case" or "notice" in the page's language (for messages)."""
    return _("case") if owner == "case" else _("notice")


def _reject(exc: ImageRejected, limits: UploadSettings) -> InvalidInput:
    from rescue.documents import refusal_message

    accepted = {**ACCEPTED, "max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels}
    detail = refusal_message(exc.reason, max_pixels=limits.max_pixels)
    if exc.reason in {"not_an_image", "unsupported_format"}:
        return UnsupportedMedia(detail, accepted=accepted, reason=exc.reason)
    if exc.reason == "too_many_pixels":
        return PayloadTooLarge(detail, accepted=accepted, reason=exc.reason)
    return InvalidInput(detail, accepted=accepted, reason=exc.reason)


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
        The photo with ``status="pending"`` and ``queue``: ``"queued"``, or
        ``"deferred"`` when the broker could not be reached (the photo is stored
        and the recovery sweep queues it once the broker answers).

    Raises:
        ServiceUnavailable: the object store or the database failed (503); the
            photo is not stored, or (``stored: "unknown"``) it could not be
            confirmed either way: sending the same file again is safe (a stored
            copy answers 409 with its id).
        NotFound: the case or notice does not exist.
        InvalidInput: empty or corrupt/truncated file (400).
        UnsupportedMedia: not an image, or not JPEG/PNG/WebP (415).
        PayloadTooLarge: over the byte or pixel limit (413).
        Conflict: the same bytes are already a photo of this owner (409).
    """
    table = Case if owner == "case" else Notice
    if not await table.exists().where(table.id == owner_id):
        raise NotFound(
            _("{owner} {owner_id} does not exist", owner=_owner(owner), owner_id=owner_id)
        )
    if not data:
        raise InvalidInput(_("the file is empty"), accepted=ACCEPTED)
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            _(
                "the file is {size} bytes; the limit is {max_bytes}",
                size=len(data),
                max_bytes=limits.max_bytes,
            ),
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
            _(
                "this file is already photo {photo_id} of {owner} {owner_id}",
                photo_id=existing["id"],
                owner=_owner(owner),
                owner_id=owner_id,
            ),
            photo_id=existing["id"],
        )
    key = new_object_key("photos", info.extension)
    retry_after = get_settings().recovery.retry_after_seconds
    try:
        await store.aput(key, data, info.media_type)
    except StorageUnavailable as exc:
        # The store may still finish the write it did not confirm: remove the key
        # now if we can, else the recovery sweep does once it is old enough.
        await store.adiscard(key)
        raise ServiceUnavailable(
            _("the object store did not store the photo in time; nothing was saved; try again"),
            retry_after=retry_after,
            stored=False,
        ) from exc
    row = Photo(
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
        queued_at=clock.now(),
    )
    if unit.active():
        photo_id, created_at = await _insert_in_unit(store, key, row)
    else:
        photo_id, created_at = await _insert_alone(store, key, row, retry_after)
    # The photo is stored: from here on nothing may turn the answer into a failure.
    return PhotoOut(
        id=photo_id,
        status=PhotoStatus.pending.value,
        case_id=owner_id if owner == "case" else None,
        notice_id=owner_id if owner == "notice" else None,
        media_type=info.media_type,
        size_bytes=len(data),
        sha256=digest,
        width=info.width,
        height=info.height,
        taken_on=taken_on.isoformat() if taken_on else None,
        created_at=created_at,
        queue=await _enqueue(photo_id, enqueue),
    )


async def _insert_in_unit(store: ObjectStore, key: str, row: Photo) -> tuple[int, datetime]:
    """Record the stored object inside the request's transaction (a savepoint):
    the row exists only if the request commits, so the object is removed if the
    INSERT fails or the request is rolled back (rescue.audit.unit)."""
    unit.after_rollback(lambda: store.adiscard(key))
    try:
        async with Photo._meta.db.transaction():
            rows = await Photo.insert(row).returning(Photo.id, Photo.created_at)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await store.adiscard(key)
        if isinstance(exc, Exception) and is_unavailable(exc):
            raise ServiceUnavailable(
                _("the database is unavailable; the photo was not stored; try again"),
                retry_after=get_settings().recovery.retry_after_seconds,
                stored=False,
            ) from exc
        raise
    return int(rows[0]["id"]), rows[0]["created_at"]


async def _insert_alone(
    store: ObjectStore, key: str, row: Photo, retry_after: int
) -> tuple[int, datetime]:
    """Record the stored object in its own statement (outside a request: a
    backlog run). If the INSERT raises, what exists is decided from the
    database, not from the exception: the object is removed only when no row
    refers to it."""
    try:
        rows = await Photo.insert(row).returning(Photo.id, Photo.created_at)
        return int(rows[0]["id"]), rows[0]["created_at"]
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            found = await _photo_with_key(key)
            if found is False:
                await store.adiscard(key)
        if not isinstance(exc, Exception):
            raise  # cancelled: the decision above is done, the caller is gone
        if found is None:
            raise ServiceUnavailable(
                _(
                    "the database could not confirm whether the photo was stored; "
                    "look at the photo list, or send the same file again "
                    "(a stored copy answers 409 with its id)"
                ),
                retry_after=retry_after,
                stored="unknown",
            ) from exc
        if found is False:
            if is_unavailable(exc):
                raise ServiceUnavailable(
                    _("the database is unavailable; the photo was not stored; try again"),
                    retry_after=retry_after,
                    stored=False,
                ) from exc
            raise
        log.warning("photo %s was stored although recording it raised %r", found[0], exc)
        return found


async def _photo_with_key(key: str) -> tuple[int, datetime] | Literal[False] | None:
    """(id, created_at) of the photo row whose object is ``key``; False if there is
    none; None if the database could not be asked (after a few tries over ~4 s)."""
    for wait in _DECIDE_WAITS:
        await anyio.sleep(wait)
        try:
            row = (
                await Photo.select(Photo.id, Photo.created_at)
                .where(Photo.object_key == key)
                .first()
            )
        except Exception as exc:  # noqa: BLE001 - any failure: ask again
            log.warning("cannot look up the photo of a stored object yet: %r", exc)
            continue
        return (int(row["id"]), row["created_at"]) if row is not None else False
    return None


async def _enqueue(photo_id: int, enqueue: Callable[[int], Awaitable[None]]) -> str:
    """Hand the photo to the broker: ``"queued"``, or ``"deferred"`` if the broker
    failed (then ``queued_at`` is cleared so the next sweep queues it)."""
    try:
        await enqueue(photo_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the sweep queues it
        log.warning("could not queue photo %s (%r); the recovery sweep will", photo_id, exc)
        try:
            await Photo.update({Photo.queued_at: None}).where(Photo.id == photo_id)
        except Exception:  # noqa: BLE001 - then it is queued after PHOTO_REQUEUE_AFTER_SECONDS
            log.warning("could not mark photo %s as not queued", photo_id)
        return "deferred"
    return "queued"


async def queue_photos(*, photo_ids: list[int], send: Callable[[int], Awaitable[None]]) -> int:
    """Send each photo to the broker and record when (``queued_at``).

    Returns:
        How many were sent. Stops at the first broker failure (the rest are
        queued by the next sweep).
    """
    sent = 0
    for photo_id in photo_ids:
        await send(photo_id)
        await Photo.update({Photo.queued_at: clock.now()}).where(Photo.id == photo_id)
        sent += 1
    return sent


async def get_photo(*, photo_id: int, store: ObjectStore | None = None) -> PhotoOut:
    """A photo's record, face boxes and (with ``store``) a presigned URL.

    Raises:
        NotFound: no such photo.
    """
    row = await Photo.select().where(Photo.id == photo_id).first()
    if row is None:
        raise NotFound(_("photo {photo_id} does not exist", photo_id=photo_id))
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
        queue=_queue_state(row),
        faces=[FaceBox(**f) for f in faces],
        url=url,
        url_expires_in=store.presign_seconds if store is not None else None,
    )


def _queue_state(row: dict[str, Any]) -> str | None:
    if row["status"] != PhotoStatus.pending.value:
        return None
    return "queued" if row.get("queued_at") is not None else "deferred"


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


async def pending_photo_ids(*, queued_before: datetime | None = None) -> list[int]:
    """Photos still waiting for face processing, oldest first. With
    ``queued_before``: only those never queued, or last queued before it."""
    where: Any = Photo.status == PhotoStatus.pending.value
    if queued_before is not None:
        where = where & (Photo.queued_at.is_null() | (Photo.queued_at < queued_before))
    rows = await Photo.select(Photo.id).where(where).order_by(Photo.id)
    return [int(r["id"]) for r in rows]


@dataclass(frozen=True)
class Backlog:
    """Photos waiting for face processing (for readiness checks and metrics).

    ``oldest_age_seconds`` is measured from the oldest pending photo's upload
    (0 when there is none); ``unqueued`` counts those the broker has not taken.
    """

    pending: int
    unqueued: int
    oldest_created_at: datetime | None
    oldest_age_seconds: float


async def pending_backlog() -> Backlog:
    """The pending-photo backlog now (two small queries on the ``photos`` table)."""
    pending = Photo.status == PhotoStatus.pending.value
    count = await Photo.count().where(pending)
    unqueued = await Photo.count().where(pending & Photo.queued_at.is_null())
    oldest = (
        await Photo.select(Photo.created_at).where(pending).order_by(Photo.id).first()
        if count
        else None
    )
    created = oldest["created_at"] if oldest else None
    age = max(0.0, (clock.now() - created).total_seconds()) if created else 0.0
    return Backlog(
        pending=count, unqueued=unqueued, oldest_created_at=created, oldest_age_seconds=age
    )
