"""Duplicate-intake warnings (重复登记预警): two cases that may be one person."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSON,
    Float,
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
from rescue.photos.tables import Photo


class DuplicateStatus(StrEnum):
    open = "open"  # raised, not yet looked at
    linked = "linked"  # staff confirmed: the same person (a repeat admission, 重复入站)
    dismissed = "dismissed"  # staff looked: not the same person


class DuplicateWarning(Table, tablename="duplicate_warnings"):
    """One pair of cases (``case`` = the later registration) and why they may be
    one person. ``reasons`` is a list of ``{"kind": same_photo|face|id_number|
    attributes, ...}``; one row per pair (``pair_key`` "low-high" case ids)."""

    id: Serial
    case = ForeignKey(references=Case, index=True)
    other_case = ForeignKey(references=Case, index=True)
    pair_key = Varchar(length=40, unique=True)
    reasons = JSON(default="[]")
    best_distance = Float(null=True, default=None)
    status = Varchar(length=16, choices=DuplicateStatus, default=DuplicateStatus.open)
    note = Text(default="")
    decided_by = Integer(null=True, default=None)  # users.id
    decided_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class DuplicateFaceCheck(Table, tablename="duplicate_face_checks"):
    """A case photo whose faces were compared with the other cases (done once)."""

    id: Serial
    photo = ForeignKey(references=Photo, unique=True)
    hits = Integer(default=0)
    checked_at = Timestamptz(default=TimestamptzNow())
