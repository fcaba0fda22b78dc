"""Response bodies for photos."""

from __future__ import annotations

from datetime import datetime

import msgspec

from rescue.duplicates.schemas import DuplicateWarningOut


class PhotoSummary(msgspec.Struct):
    id: int
    status: str
    taken_on: str | None
    created_at: datetime


class FaceBox(msgspec.Struct):
    """A face's box in pixels of the upright image (never its encoding)."""

    id: int
    top: int
    right: int
    bottom: int
    left: int


class PhotoOut(msgspec.Struct):
    id: int
    status: str
    case_id: int | None
    notice_id: int | None
    media_type: str
    size_bytes: int
    sha256: str
    width: int
    height: int
    taken_on: str | None
    created_at: datetime
    processed_at: datetime | None = None
    failure_reason: str | None = None
    faces: list[FaceBox] = msgspec.field(default_factory=list)
    url: str | None = None
    url_expires_in: int | None = None
    #: While ``pending``: ``"queued"`` (handed to the workers) or ``"deferred"``
    #: (stored, but the job queue was unreachable; it is queued automatically
    #: within ``RECOVERY_SWEEP_SECONDS`` of the queue answering again). None once
    #: processed.
    queue: str | None = None
    #: Upload answer of a case photo only: the case's open duplicate-intake warnings
    #: (the same photo bytes at another case show at once; close faces once processed,
    #: at ``GET /api/cases/{id}/duplicates``).
    duplicate_warnings: list[DuplicateWarningOut] = msgspec.field(default_factory=list)
