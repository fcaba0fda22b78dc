"""Request and response bodies of the other station: case summary, incoming
persons, notices with candidates elsewhere, 转送."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from rescue.cases.tables import CaseStatus, Sex


class CaseSummaryOut(msgspec.Struct):
    """What a station taking part in another station's case may read of it
    (minimum necessary, PIPL art. 6): enough to verify a candidate (sex, age
    estimate, height, where and when found, dialect) and to receive the person
    (status, whether they may leave only into custody). Not the description,
    belongings, who brought them, placements, search actions, photos or the
    identity found (that is ``GET …/identity``, for the destination station)."""

    id: int
    reference: str
    station: str
    status: CaseStatus
    sex: Sex
    estimated_age: int | None
    age_low: int | None
    age_high: int | None
    height_cm: int | None
    found_at: datetime | None
    found_place: str
    dialect: str
    admitted_at: datetime
    #: May leave only into custody (minor or lacking capacity, rescue.cases.flows).
    custody_only: bool
    #: Why the caller sees it: "own" (their station), "notice_station", "destination_station".
    participation: list[str]


class IncomingOut(msgspec.Struct):
    """A person another station plans to hand over to ours (接收)."""

    case_id: int
    reference: str
    from_station: str
    status: CaseStatus
    destination: str
    planned_on: date
    handover_ids: list[int]
    received: bool
    countersigned: bool


class NoticeElsewhereOut(msgspec.Struct):
    """A candidate on another station's case for a notice our station registered."""

    candidate_id: int
    notice_id: int
    notice_name: str
    case_id: int
    case_reference: str
    case_station: str
    status: str
    score: float | None


class TransferCreate(msgspec.Struct, forbid_unknown_fields=True):
    """转送 of a person in care to another station using this service."""

    to_station: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    transferred_on: date


class TransferOut(msgspec.Struct):
    id: int
    case_id: int
    from_station: str
    to_station: str
    reason: str
    transferred_on: date
    recorded_by: int | None
    created_at: datetime
