"""Identity-search actions (身份查询): structured records that feed the deadlines."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSON,
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

from rescue.cases.tables import Case


class SearchKind(StrEnum):
    announcement = "announcement"  # 寻亲公告
    dna_request = "dna_request"  # 报请公安机关采集DNA
    police_check = "police_check"  # 指纹 / 人像比对
    interview = "interview"  # 甄别问话
    care_decision = "care_decision"  # 滞留人员照料安置决定
    extension_filing = "extension_filing"  # 延长救助期限备案


class AnnouncementChannel(StrEnum):
    this_service = "本站寻亲公告"  # published here (rescue.announcements), recorded by it
    national_site = "全国救助寻亲网"
    toutiao = "头条"
    newspaper = "newspaper"
    tv = "tv"
    other = "other"


class PoliceCheckType(StrEnum):
    fingerprint = "fingerprint"
    face_comparison = "face_comparison"


class SearchAction(Table, tablename="search_actions"):
    """One action. Columns used depend on ``kind``:

    - announcement: ``on_date`` (published), ``channel``, ``reference``
    - dna_request: ``on_date`` (requested), ``police_unit``, ``sample_id``,
      later ``result_on`` and ``result``
    - police_check: ``on_date``, ``check_type``, ``police_unit``, ``result``
    - interview: ``on_date``, ``clues`` ({dialect, place_names, relatives_names}), ``notes``
    - care_decision / extension_filing: ``on_date``, ``reference``, ``notes``
    """

    id: Serial
    case = ForeignKey(references=Case)
    kind = Varchar(length=32, choices=SearchKind)
    on_date = Date()
    channel = Varchar(length=32, null=True, default=None)
    reference = Varchar(length=300, default="")
    police_unit = Varchar(length=200, default="")
    sample_id = Varchar(length=100, default="")
    check_type = Varchar(length=32, null=True, default=None)
    result_on = Date(null=True, default=None)
    result = Text(default="")
    clues = JSON(default="{}")
    notes = Text(default="")
    recorded_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    #: Voided (作废) with a reason: kept, shown, but it satisfies no deadline.
    #: Records stay append-only; the right entry is recorded anew.
    voided_at = Timestamptz(null=True, default=None)
    voided_by = Integer(null=True, default=None)
    void_reason = Text(default="")
    #: The entry that replaces it, if one was named.
    replaced_by = Integer(null=True, default=None)
    #: announcements.id: the case's 寻亲公告 this publication belongs to (one
    #: announcement, published here and on other channels).
    announcement = Integer(null=True, default=None)
    #: Recorded later from the station's files (历史补录) by ``recorded_by`` at
    #: ``created_at``; ``on_date`` is when it happened.
    entered_later = Boolean(default=False)
