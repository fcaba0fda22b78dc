"""HTTP routes for photos: upload to a case or notice, and lookup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import MultipartBody

from rescue.duplicates.services import check_photo_bytes
from rescue.permissions import Action, allow
from rescue.photos import services
from rescue.photos.schemas import PhotoOut
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings


@dataclass
class PhotoUpload:
    """Multipart form: ``file`` (JPEG, PNG or WebP, ≤ UPLOAD_MAX_BYTES) and optional
    ``taken_on`` (YYYY-MM-DD, when the photo was taken: notices hold photos at
    different ages)."""

    file: UploadFile
    taken_on: date | None = None


Form = MultipartBody[PhotoUpload]


async def enqueue_photo(photo_id: int) -> None:
    """Queue the photo's processing. Inside a request's transaction the message
    goes out after the commit (workers.broker), so the broker is asked first
    whether it answers: if not, this raises and the photo is ``deferred`` (the
    recovery sweep queues it)."""
    import anyio.to_thread

    from rescue.audit import unit
    from workers.actors import send_photo
    from workers.broker import broker_reachable

    if unit.active() and not await anyio.to_thread.run_sync(broker_reachable):
        raise ConnectionError("the broker does not answer")
    await send_photo(photo_id)


async def _upload(
    owner: str, owner_id: int, form: PhotoUpload, request: Request[Any, Any, Any]
) -> PhotoOut:
    data = await form.file.read()
    return await services.upload_photo(
        owner=owner,
        owner_id=owner_id,
        data=data,
        taken_on=form.taken_on,
        by=request.user,
        store=get_store(),
        limits=get_settings().upload,
        enqueue=enqueue_photo,
    )


class PhotoController(Controller):
    path = "/api"
    tags = ("photos",)

    @post(
        "/cases/{case_id:int}/photos",
        status_code=202,
        summary="Upload a photo of a case",
        guards=[allow(Action.photo_upload_case)],
    )
    async def upload_case_photo(
        self, case_id: PathId, data: Form, request: Request[Any, Any, Any]
    ) -> PhotoOut:
        """Store the original and queue face processing; answers 202 with ``status: pending``
        and ``queue``: ``queued``, or ``deferred`` when the job queue is unreachable
        (the photo is stored and queued automatically once the queue answers).

        Errors: 400 empty/corrupt/truncated or missing ``file``; 404 unknown case;
        409 same bytes already uploaded; 413 over the byte or pixel limit;
        415 not a JPEG/PNG/WebP image; 503 (``Retry-After``) the object store or
        database failed: ``stored`` says whether the photo was kept (false, or
        ``"unknown"``: sending the file again is safe, a stored copy answers 409).

        ``duplicate_warnings``: the same bytes are a photo of another case (still in
        care or recently left): a possible repeat registration, advisory only.
        """
        out = await _upload("case", case_id, data, request)
        out.duplicate_warnings = await check_photo_bytes(photo_id=out.id)
        return out

    @post(
        "/notices/{notice_id:int}/photos",
        status_code=202,
        summary="Upload a photo of a notice",
        guards=[allow(Action.photo_upload_notice)],
    )
    async def upload_notice_photo(
        self, notice_id: PathId, data: Form, request: Request[Any, Any, Any]
    ) -> PhotoOut:
        """As for case photos; ``taken_on`` records the age the photo shows."""
        return await _upload("notice", notice_id, data, request)

    @get(
        "/photos/{photo_id:int}",
        summary="A photo's processing status, faces and a short-lived URL",
        guards=[allow(Action.photo_read)],
    )
    async def detail(self, photo_id: PathId) -> PhotoOut:
        """``status`` is pending, processed, no_face or failed (with ``failure_reason``).
        ``url`` is presigned for ``url_expires_in`` seconds (≤ 300). 404 if unknown."""
        return await services.get_photo(photo_id=photo_id, store=get_store())
