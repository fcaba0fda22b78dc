"""Online search requests (网上寻亲登记), their photos, and rate counters."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    BigInt,
    Boolean,
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

from rescue.cases.tables import Sex
from rescue.notices.tables import Notice


class RequestStatus(StrEnum):
    """What the family sees on the status page (and nothing else)."""

    received = "received"  # 已收到
    under_review = "under_review"  # 审核中
    more_info = "more_info"  # 需要补充信息
    registered = "registered"  # 已登记为寻人信息 (a notice, matched)
    closed = "closed"  # 已结束 (rejected with a reason)


class SearchRequest(Table, tablename="search_requests"):
    """One online search request from a family (or a person asking for help).

    Nothing of it is matched or shown outside the moderating staff until it is
    accepted (``status = registered``, ``notice`` set). The tracking code is
    kept only as its SHA-256 digest (``code_hash``). ``contact_key`` is the
    SHA-256 of the normalised contact (rate limits and duplicates), so the
    contact itself is never compared or indexed.
    """

    id: Serial
    code_hash = Varchar(length=64, unique=True)
    status = Varchar(length=16, choices=RequestStatus, default=RequestStatus.received)
    #: Station responsible by place (PUBLIC_REGIONS); "" = the shared queue.
    station = Varchar(length=100, default="", index=True)
    region = Varchar(length=100, default="")
    missing_name = Varchar(length=100)
    sex = Varchar(length=10, choices=Sex, default=Sex.unknown)
    date_of_birth = Date(null=True, default=None)
    age_when_missing = Integer(null=True, default=None)
    missing_since = Date(null=True, default=None)
    last_seen_place = Varchar(length=300, default="")
    description = Text(default="")
    dialect = Varchar(length=100, default="")
    relation = Varchar(length=50, default="")
    reporter_name = Varchar(length=100, default="")
    reporter_contact = Varchar(length=200, default="")
    contact_key = Varchar(length=64, default="", index=True)
    person_key = Varchar(length=64, default="", index=True)
    consent_personal = Boolean(default=False)
    consent_face = Boolean(default=False)
    consent_version = Varchar(length=20, default="")
    consented_at = Timestamptz(null=True, default=None)
    #: The earlier request about the same person (same photo or same person):
    #: linked, not a second queue item.
    duplicate_of = Integer(null=True, default=None, index=True)
    notice = ForeignKey(references=Notice, null=True, default=None)
    #: What staff told the family (more information needed, reason of rejection).
    staff_message = Text(default="")
    decided_by = Integer(null=True, default=None)  # users.id
    decided_at = Timestamptz(null=True, default=None)
    #: When retention (rescue.retention) deleted the request's photos, contact
    #: and details; status, dates and ``staff_message`` stay for the tracking code.
    purged_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class SearchRequestPhoto(Table, tablename="search_request_photos"):
    """A photo sent with a request (checked like every upload), in the object store
    under a random key. ``photo_id`` is the notice photo it became on acceptance
    (the request's own object is then removed)."""

    id: Serial
    request = ForeignKey(references=SearchRequest, index=True)
    object_key = Varchar(length=200, default="")
    sha256 = Varchar(length=64, index=True)
    media_type = Varchar(length=40)
    size_bytes = Integer()
    width = Integer()
    height = Integer()
    taken_on = Date(null=True, default=None)
    photo_id = Integer(null=True, default=None)
    #: The family's answer it came with (search_request_messages.id); None: sent
    #: with the request itself.
    message = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class MessageAuthor(StrEnum):
    staff = "staff"  # 工作人员
    family = "family"  # 家属


class SearchRequestMessage(Table, tablename="search_request_messages"):
    """The exchange about one request: what staff asked (more information needed,
    reason of rejection) and the family's answers sent with the tracking code."""

    id: Serial
    request = ForeignKey(references=SearchRequest, index=True)
    author = Varchar(length=10, choices=MessageAuthor)
    body = Text(default="")
    user_id = Integer(null=True, default=None)  # users.id of the staff member
    #: The answer carried photos sent with a (new) consent to face processing.
    consent_face = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())


class RateCounter(Table, tablename="rate_counters"):
    """Hits of one key in one fixed window (``key`` names scope, who and window).

    Incremented with one atomic upsert, so limits hold across API processes on
    PostgreSQL and SQLite alike. ``expires_at``: epoch seconds (rescue.clock)."""

    id: Serial
    key = Varchar(length=200, unique=True)
    hits = Integer(default=0)
    expires_at = BigInt(index=True)
