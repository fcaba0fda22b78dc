"""Scanned documents (discharge certificates, signed handover sheets): PDF or image.

The type is sniffed from the bytes, never taken from the client's file name or
header. Images are fully decoded (media.images.inspect_image); PDFs must start
with the ``%PDF-`` signature and contain an ``%%EOF`` marker near the end
(ISO 32000-1 §7.5.2 and §7.5.5), which catches truncated uploads.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.images import ACCEPTED_MEDIA_TYPES, ImageRejected, inspect_image

__all__ = ["ACCEPTED_DOCUMENT_TYPES", "DocumentInfo", "DocumentRejected", "inspect_document"]

ACCEPTED_DOCUMENT_TYPES: list[str] = sorted(
    {"application/pdf", *(media for media, _ in ACCEPTED_MEDIA_TYPES.values())}
)


class DocumentRejected(ValueError):
    """Not an accepted document. ``reason``: ``empty``, ``unsupported_format``,
    ``corrupt`` or ``too_many_pixels``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DocumentInfo:
    media_type: str
    extension: str


def inspect_document(data: bytes, *, max_pixels: int) -> DocumentInfo:
    """Identify ``data`` as a PDF or a JPEG/PNG/WebP image.

    Raises:
        DocumentRejected: empty, another format, a truncated PDF, or a damaged or
            oversized image.
    """
    if not data:
        raise DocumentRejected("empty", "the file is empty")
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-1024:]:
            raise DocumentRejected("corrupt", "the PDF is truncated (no %%EOF marker at its end)")
        return DocumentInfo("application/pdf", "pdf")
    try:
        info = inspect_image(data, max_pixels=max_pixels)
    except ImageRejected as exc:
        if exc.reason in {"not_an_image", "unsupported_format"}:
            raise DocumentRejected(
                "unsupported_format", "the file is neither a PDF nor a JPEG, PNG or WebP image"
            ) from exc
        raise DocumentRejected(exc.reason, exc.detail) from exc
    return DocumentInfo(info.media_type, info.extension)
