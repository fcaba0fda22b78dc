"""Request and response bodies for cases (受助人员)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from rescue.cases.tables import CaseStatus, Sex
from rescue.photos.schemas import PhotoSummary

Age = Annotated[int, msgspec.Meta(ge=0, le=120, description="years")]
ShortText = Annotated[str, msgspec.Meta(max_length=300)]
LongText = Annotated[str, msgspec.Meta(max_length=10_000)]


class CaseCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A person taken in. Give ``estimated_age`` or ``age_low``/``age_high`` (or both)."""

    reported_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    sex: Sex = Sex.unknown
    estimated_age: Age | None = None
    age_low: Age | None = None
    age_high: Age | None = None
    found_at: datetime | None = None
    found_place: ShortText = ""
    brought_by: ShortText = ""
    description: LongText = ""
    dialect: Annotated[str, msgspec.Meta(max_length=100)] = ""
    belongings: LongText = ""
    station: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class CaseOut(msgspec.Struct):
    id: int
    reference: str
    display_name: str
    reported_name: str | None
    placeholder_name: str
    sex: Sex
    estimated_age: int | None
    age_low: int | None
    age_high: int | None
    found_at: datetime | None
    found_place: str
    brought_by: str
    description: str
    dialect: str
    belongings: str
    station: str
    status: CaseStatus
    admitted_at: datetime
    created_at: datetime
    updated_at: datetime
    photos: list[PhotoSummary] = msgspec.field(default_factory=list)
