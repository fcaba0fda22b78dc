"""Request and response bodies for duplicate-intake warnings (重复登记预警)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from rescue.duplicates.tables import DuplicateStatus


class OtherRecord(msgspec.Struct):
    """The other registration of the (possibly) same person: enough to find it."""

    case_id: int
    reference: str
    station: str
    status: str
    admitted_at: datetime
    #: API path of the other case (``GET`` it if your station may see that case).
    link: str


class DuplicateWarningOut(msgspec.Struct):
    """A warning that two cases may be one person. Advisory: intake is never blocked.

    ``reasons``: ``[{"kind": "same_photo", "photo_id", "other_photo_id"} |
    {"kind": "face", "photo_id", "other_photo_id", "distance", "threshold"} |
    {"kind": "id_number"} | {"kind": "attributes", "matched": [...]}]``.
    """

    id: int
    case_id: int
    status: DuplicateStatus
    reasons: list[dict[str, Any]]
    best_distance: float | None
    other: OtherRecord
    note: str
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None = None


class CaseDuplicates(msgspec.Struct):
    """A case's duplicate warnings, and its photos whose face check is still running."""

    warnings: list[DuplicateWarningOut]
    photos_pending_face_check: list[int]


class DuplicateDecision(msgspec.Struct, forbid_unknown_fields=True):
    """``link``: the same person (a repeat admission); ``dismiss``: not the same person."""

    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""
