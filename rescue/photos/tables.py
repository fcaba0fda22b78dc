"""Photos (originals in the object store) and the faces found in them."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSON,
    Boolean,
    Bytea,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case
from rescue.notices.tables import Notice


class PhotoStatus(StrEnum):
    pending = "pending"
    processed = "processed"
    no_face = "no_face"
    failed = "failed"


class Photo(Table, tablename="photos"):
    """A photo of a case or of a notice (exactly one of the two is set)."""

    id: Serial
    case = ForeignKey(references=Case, null=True, default=None, index=True)
    notice = ForeignKey(references=Notice, null=True, default=None, index=True)
    object_key = Varchar(length=200, unique=True)
    sha256 = Varchar(length=64)
    size_bytes = Integer()
    media_type = Varchar(length=40)
    width = Integer()
    height = Integer()
    taken_on = Date(null=True, default=None)
    status = Varchar(length=16, choices=PhotoStatus, default=PhotoStatus.pending)
    failure_reason = Text(default="")
    uploaded_by = Integer(null=True, default=None)  # users.id
    created_at = Timestamptz(default=TimestamptzNow())
    #: Set when faces were detected and stored (before matching); ``status``
    #: becomes ``processed`` only after matching, so a client that sees
    #: ``processed`` also sees the candidates.
    encoded_at = Timestamptz(null=True, default=None)
    processed_at = Timestamptz(null=True, default=None)
    #: When face processing was last handed to the broker; None while the broker
    #: could not be reached (the recovery sweep queues it as soon as it can, and
    #: again when it stays ``pending`` past ``PHOTO_REQUEUE_AFTER_SECONDS``).
    queued_at = Timestamptz(null=True, default=None)
    #: Processing attempts started and not ended by a transient failure (a killed
    #: worker's attempt counts); past ``PHOTO_MAX_ATTEMPTS`` the photo ends ``failed``.
    attempts = Integer(default=0)
    #: The last error of an attempt (a class name and message, no personal data).
    last_error = Text(default="")


class Face(Table, tablename="faces"):
    """One face found in a photo: its box (pixels of the EXIF-oriented original)
    and its 128-d encoding (float64 little-endian, 1024 bytes).

    The encoding is biometric data (PIPL art. 28): it never leaves the service.
    ``case``/``notice`` repeat the photo's owner so the matching gallery loads
    with one query.
    """

    id: Serial
    photo = ForeignKey(references=Photo, index=True)
    case = ForeignKey(references=Case, null=True, default=None, index=True)
    notice = ForeignKey(references=Notice, null=True, default=None, index=True)
    top = Integer()
    right = Integer()
    bottom = Integer()
    left = Integer()
    encoding = Bytea()
    model = Varchar(length=80)
    #: Size, sharpness and pose (rescue.matching.quality.FaceQuality); ``{}`` for
    #: faces stored before quality was measured.
    quality = JSON(default="{}")
    #: Too poor to match (quality ``retake`` reasons): left out of matching both ways.
    retake = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
