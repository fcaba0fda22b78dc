"""Private files on pages (documents, signed sheets, reports, family photos):
served through the app, so that they open from any PC that reaches the service
(never an object-store address) after the route's guard has checked the viewer,
with the read on the audit trail (rescue.audit: the route names what it reads)."""

from __future__ import annotations

from litestar import Response

__all__ = ["PRIVATE_FILE_HEADERS", "private_file"]

#: Never cached by a browser or proxy (personal data); never sniffed as another type.
PRIVATE_FILE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def private_file(data: bytes, media_type: str | None) -> Response[bytes]:
    """The bytes of one private file as the answer (``application/octet-stream``
    when the type is unknown)."""
    return Response(
        content=data,
        media_type=media_type or "application/octet-stream",
        headers=PRIVATE_FILE_HEADERS,
    )
