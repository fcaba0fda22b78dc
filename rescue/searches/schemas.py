"""Request and response bodies for identity-search actions (身份查询)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec

from rescue.searches.tables import AnnouncementChannel, PoliceCheckType, SearchKind

Text300 = Annotated[str, msgspec.Meta(max_length=300)]
Notes = Annotated[str, msgspec.Meta(max_length=5000)]


class AnnouncementCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A family-search announcement (寻亲公告) published on ``published_on``."""

    channel: AnnouncementChannel
    published_on: date
    reference: Text300 = ""  # URL, issue number, programme …
    notes: Notes = ""


class DnaRequestCreate(msgspec.Struct, forbid_unknown_fields=True):
    """DNA collection requested from the police (报请公安机关采集DNA)."""

    requested_on: date
    police_unit: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    sample_id: Annotated[str, msgspec.Meta(max_length=100)] = ""
    notes: Notes = ""


class DnaResultCreate(msgspec.Struct, forbid_unknown_fields=True):
    """The police's DNA comparison result for a request."""

    result_on: date
    result: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
    sample_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class PoliceCheckCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A police check: fingerprint or face comparison (指纹 / 人像比对)."""

    check_type: PoliceCheckType
    checked_on: date
    police_unit: Annotated[str, msgspec.Meta(max_length=200)] = ""
    result: Notes = ""


class Clues(msgspec.Struct, forbid_unknown_fields=True):
    dialect: Annotated[str, msgspec.Meta(max_length=100)] = ""
    place_names: list[Annotated[str, msgspec.Meta(max_length=100)]] = []
    relatives_names: list[Annotated[str, msgspec.Meta(max_length=100)]] = []


class InterviewCreate(msgspec.Struct, forbid_unknown_fields=True):
    """An interview (甄别问话) and the clues it gave."""

    held_on: date
    clues: Clues = msgspec.field(default_factory=Clues)
    notes: Notes = ""


class FilingCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A stranded person's care decision or the extension filing (延期备案)."""

    kind: Annotated[SearchKind, msgspec.Meta(description="care_decision or extension_filing")]
    on_date: date
    reference: Text300 = ""
    notes: Notes = ""


class SearchActionOut(msgspec.Struct):
    """One recorded action; fields not used by its ``kind`` are empty."""

    id: int
    case_id: int
    kind: SearchKind
    on_date: date
    channel: str | None
    reference: str
    police_unit: str
    sample_id: str
    check_type: str | None
    result_on: date | None
    result: str
    clues: dict[str, Any]
    notes: str
    recorded_by: int | None
    created_at: datetime
    voided_at: datetime | None = None
    voided_by: int | None = None
    void_reason: str = ""
    replaced_by: int | None = None
    announcement_id: int | None = None
    #: Recorded later (历史补录) by ``recorded_by`` at ``created_at``.
    entered_later: bool = False


class VoidRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Void a wrong entry: ``reason`` required; ``replaced_by`` names the right
    entry of the same case and kind if already recorded."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    replaced_by: int | None = None
