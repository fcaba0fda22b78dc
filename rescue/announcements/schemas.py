"""Bodies of the family-search announcement (寻亲公告).

The announced fields follow the usual content of a 寻亲公告 of a rescue station
(民政部《全国救助管理机构寻亲公告》 practice; 救助管理机构工作规程 2014 art. 18,
announcement within 24 h of admission when identity is unknown): photo, name or
placeholder, sex, estimated age, height, physical features, clothing when found,
date and place found, and the station's contact.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from rescue.cases.tables import Sex
from rescue.schemas import Id

Short = Annotated[str, msgspec.Meta(max_length=300)]
Long = Annotated[str, msgspec.Meta(max_length=2000)]


class AnnouncedField(StrEnum):
    """Fields an announcement may carry; any of them can be marked internal."""

    photo = "photo"
    name = "name"
    sex = "sex"
    estimated_age = "estimated_age"
    height_cm = "height_cm"
    physical_features = "physical_features"
    mental_state = "mental_state"
    clothing = "clothing"
    found_date = "found_date"
    found_place = "found_place"
    station_contact = "station_contact"


class AnnouncementIn(msgspec.Struct, forbid_unknown_fields=True):
    """What staff publish. ``name``, ``sex``, ``estimated_age`` and ``found_date``
    default to the case file's values (the name to its placeholder 无名氏-NNNN when
    none was reported). ``found_place`` must be entered: give the district or road,
    never an exact address. ``internal`` lists fields kept off the public view."""

    photo_id: Id | None = None
    name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    sex: Sex | None = None
    estimated_age: Annotated[int, msgspec.Meta(ge=0, le=120)] | None = None
    height_cm: Annotated[int, msgspec.Meta(ge=30, le=250)] | None = None
    physical_features: Long = ""
    mental_state: Short = ""
    clothing: Long = ""
    found_date: date | None = None
    found_place: Short = ""
    station_contact: Short = ""
    internal: list[AnnouncedField] = msgspec.field(default_factory=list)


class AnnouncementOut(msgspec.Struct):
    """Staff view: every field entered, which are internal, and the public address."""

    id: int
    case_id: int
    published: bool
    published_at: datetime | None
    unpublished_at: datetime | None
    unpublish_reason: str
    fields: dict[str, Any]
    internal: list[str]
    public_url: str | None
