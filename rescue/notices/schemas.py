"""Request and response bodies for missing-person notices (寻人启事)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from rescue.cases.tables import Sex
from rescue.notices.tables import NoticeSource, NoticeStatus
from rescue.photos.schemas import PhotoSummary


class NoticeCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A missing-person notice from a family, the police or another station."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    source: NoticeSource
    sex: Sex = Sex.unknown
    date_of_birth: date | None = None
    age_when_missing: Annotated[int, msgspec.Meta(ge=0, le=120)] | None = None
    missing_since: date | None = None
    last_seen_place: Annotated[str, msgspec.Meta(max_length=300)] = ""
    reporter_name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    reporter_contact: Annotated[str, msgspec.Meta(max_length=200)] = ""
    description: Annotated[str, msgspec.Meta(max_length=10_000)] = ""


class NoticeOut(msgspec.Struct):
    id: int
    name: str
    sex: Sex
    date_of_birth: date | None
    age_when_missing: int | None
    missing_since: date | None
    last_seen_place: str
    source: NoticeSource
    reporter_name: str
    reporter_contact: str
    description: str
    status: NoticeStatus
    created_at: datetime
    updated_at: datetime
    photos: list[PhotoSummary] = msgspec.field(default_factory=list)
    #: The registering station (登记站), empty for none (admin, external lists).
    station: str = ""
