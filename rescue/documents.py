"""Storing scanned documents in the object store, shared by placements, escorts
and police evidence attachments.

Validation first (type sniffed from the bytes, size limit), then the object is
stored; the caller records it in the database inside :func:`stored_document` and
the object is removed again if that fails. If the database connection broke
(the commit may or may not have happened), the object is left: the recovery
sweep (rescue.recovery) removes it once no row refers to it, so a committed
row never loses its object.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread

from media.documents import ACCEPTED_DOCUMENT_TYPES, DocumentRejected, inspect_document
from media.storage import ObjectStore, StorageUnavailable, new_object_key
from rescue.audit import unit
from rescue.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia, is_unavailable
from rescue.i18n import N_, _
from rescue.settings import UploadSettings

__all__ = ["REFUSALS", "StoredDocument", "refusal_message", "stored_document"]

log = logging.getLogger(__name__)

#: What staff are told when an uploaded file is refused, by the ``reason`` of
#: media.images.ImageRejected / media.documents.DocumentRejected (the technical
#: detail of those stays in English for the log; tests/unit/test_messages_catalogued.py
#: fails on a reason without a message here).
REFUSALS: dict[str, str] = {
    "empty": N_("The file is empty."),
    "not_an_image": N_("The file is not a picture (JPEG, PNG, WebP or HEIC photos only)."),
    "unsupported_format": N_(
        "This file type is not accepted: send the photo as JPEG, PNG, WebP or HEIC (on a "
        "phone: share or export it as JPEG), or a document as PDF."
    ),
    "corrupt": N_("The file is damaged or truncated; send it again."),
    "too_many_pixels": N_(
        "The picture has too many pixels (at most {max_pixels}); send a smaller copy."
    ),
}


def refusal_message(reason: str, *, max_pixels: int) -> str:
    """The refusal of an uploaded file in the page's language (REFUSALS)."""
    text = REFUSALS.get(reason)
    if text is None:
        return _("The file was refused ({reason}).", reason=reason)
    return _(text, max_pixels=max_pixels)


@dataclass(frozen=True)
class StoredDocument:
    object_key: str
    media_type: str
    size_bytes: int
    sha256: str


@asynccontextmanager
async def stored_document(
    *, data: bytes, store: ObjectStore, limits: UploadSettings, prefix: str = "documents"
) -> AsyncIterator[StoredDocument]:
    """Validate and store ``data`` under ``prefix/``; yields its key. If the ``with``
    body raises, the object is removed and the error propagates.

    Raises:
        InvalidInput: empty or damaged file (400).
        UnsupportedMedia: not a PDF, JPEG, PNG or WebP (415).
        PayloadTooLarge: over ``limits.max_bytes`` or the pixel limit (413).
    """
    accepted = {"media_types": ACCEPTED_DOCUMENT_TYPES, "max_bytes": limits.max_bytes}
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            _(
                "the file is {size} bytes; the limit is {max_bytes}",
                size=len(data),
                max_bytes=limits.max_bytes,
            ),
            accepted=accepted,
        )
    try:
        info = await anyio.to_thread.run_sync(
            lambda: inspect_document(data, max_pixels=limits.max_pixels)
        )
    except DocumentRejected as exc:
        log.info("document refused: %s (%s)", exc.reason, exc.detail)
        detail = refusal_message(exc.reason, max_pixels=limits.max_pixels)
        if exc.reason == "unsupported_format":
            raise UnsupportedMedia(detail, accepted=accepted, reason=exc.reason) from exc
        if exc.reason == "too_many_pixels":
            raise PayloadTooLarge(detail, accepted=accepted, reason=exc.reason) from exc
        raise InvalidInput(detail, accepted=accepted, reason=exc.reason) from exc
    key = new_object_key(prefix, info.extension)
    try:
        await store.aput(key, data, info.media_type)
    except StorageUnavailable:
        await store.adiscard(key)  # the store may still finish it: else the sweep removes it
        raise
    # Its row commits with the request (rescue.audit.unit): if the request is
    # rolled back, the object goes too.
    unit.after_rollback(lambda: store.adiscard(key))
    try:
        yield StoredDocument(key, info.media_type, len(data), hashlib.sha256(data).hexdigest())
    except BaseException as exc:
        if isinstance(exc, Exception) and is_unavailable(exc):
            # The database connection broke: its commit may have happened. The
            # recovery sweep removes the object later if no row refers to it.
            log.warning("document %s left to the recovery sweep after %r", key, exc)
        else:
            await store.adiscard(key)
        raise
