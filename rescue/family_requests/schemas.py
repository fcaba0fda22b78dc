"""Bodies of online search requests (网上寻亲登记) and their moderation."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from rescue.cases.tables import Sex
from rescue.family_requests.tables import MessageAuthor, RequestStatus

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Short = Annotated[str, msgspec.Meta(max_length=300)]
Long = Annotated[str, msgspec.Meta(max_length=5000)]


class SearchRequestIn(msgspec.Struct, forbid_unknown_fields=True):
    """What a family fills in. ``reporter_contact`` (a phone number or other way to
    reach them) is required and never public. ``consent_personal`` (processing of
    this information for the search) must be true; ``consent_face`` (separate
    consent to processing the photos' facial features, PIPL arts. 28–29) must be
    true when photos are sent."""

    missing_name: Name
    reporter_contact: Annotated[str, msgspec.Meta(min_length=5, max_length=200)]
    sex: Sex = Sex.unknown
    date_of_birth: date | None = None
    age_when_missing: Annotated[int, msgspec.Meta(ge=0, le=120)] | None = None
    missing_since: date | None = None
    region: Annotated[str, msgspec.Meta(max_length=100)] = ""
    last_seen_place: Short = ""
    description: Long = ""
    dialect: Annotated[str, msgspec.Meta(max_length=100)] = ""
    relation: Annotated[str, msgspec.Meta(max_length=50)] = ""
    reporter_name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    consent_personal: bool = False
    consent_face: bool = False


class Submitted(msgspec.Struct):
    """The answer to a submission: the tracking code is shown once, never stored."""

    id: int
    code: str
    status: RequestStatus
    duplicate_of: int | None


class PublicStatus(msgspec.Struct):
    """All a tracking code reveals: the status and what staff wrote to the family."""

    status: RequestStatus
    message: str
    updated_at: datetime


class ReplyIn(msgspec.Struct, forbid_unknown_fields=True):
    """A family's answer to "more information needed", sent with the tracking
    code (the status page). ``message`` and/or photos (sent beside it) are
    required; photos need ``consent_face`` again, as on the request."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    message: Long = ""
    consent_face: bool = False


class Decision(StrEnum):
    review = "review"  # 开始审核
    more_info = "more_info"  # 要求补充信息
    reject = "reject"  # 不予登记 (with a reason)
    accept = "accept"  # 登记为寻人信息: creates the notice, matching starts


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    """A moderation step. ``message`` (to the family) is required for
    ``more_info`` and ``reject``."""

    decision: Decision
    message: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class RequestPhotoOut(msgspec.Struct):
    id: int
    sha256: str
    media_type: str
    width: int
    height: int
    taken_on: date | None
    photo_id: int | None
    #: The family's answer it came with; None: sent with the request.
    message_id: int | None = None


class MessageOut(msgspec.Struct):
    """One step of the exchange with the family: what staff asked or the family
    answered (``photos``: ids of the request photos sent with it)."""

    id: int
    request_id: int
    author: MessageAuthor
    body: str
    created_at: datetime
    consent_face: bool = False
    photos: list[int] = msgspec.field(default_factory=list)


class SearchRequestSummary(msgspec.Struct):
    """A request in the queue: what staff need to pick one, no description or
    contact (those are read, and audited, on the request itself).
    ``answered``: the family answered the last request for more information."""

    id: int
    status: RequestStatus
    station: str
    region: str
    missing_name: str
    sex: Sex
    missing_since: date | None
    last_seen_place: str
    photo_count: int
    answered: bool
    created_at: datetime
    updated_at: datetime
    duplicates: list[int] = msgspec.field(default_factory=list)


class SearchRequestOut(msgspec.Struct):
    """Staff view of a request (contact included: staff call the family back)."""

    id: int
    status: RequestStatus
    station: str
    region: str
    missing_name: str
    sex: Sex
    date_of_birth: date | None
    age_when_missing: int | None
    missing_since: date | None
    last_seen_place: str
    description: str
    dialect: str
    relation: str
    reporter_name: str
    reporter_contact: str
    consent_face: bool
    consented_at: datetime | None
    duplicate_of: int | None
    notice_id: int | None
    staff_message: str
    created_at: datetime
    updated_at: datetime
    photos: list[RequestPhotoOut] = msgspec.field(default_factory=list)
    duplicates: list[int] = msgspec.field(default_factory=list)
    #: The exchange with the family, oldest first (of linked duplicates too).
    thread: list[MessageOut] = msgspec.field(default_factory=list)
    #: When retention deleted the photos, contact and details (rescue.retention;
    #: ``FAMILY_REQUEST_RETENTION_DAYS`` after closing); then those fields are empty.
    purged_at: datetime | None = None
