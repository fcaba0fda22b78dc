"""A case: one person's stay at the station, from admission (入站) to leaving (离站)."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    Boolean,
    Date,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Sex(StrEnum):
    male = "male"
    female = "female"
    unknown = "unknown"


class CaseStatus(StrEnum):
    """Case statuses (救助管理机构工作规程 2014; 民发〔2020〕14号). See docs/workflow.md."""

    admitted = "admitted"  # 入站
    searching = "searching"  # 寻亲中
    stranded = "stranded"  # 滞留
    settlement_pending = "settlement_pending"  # 待落户安置
    settled = "settled"  # 落户安置
    identified = "identified"  # 身份查明
    return_planned = "return_planned"  # 返乡计划已定
    # Leaving outcomes (离站方式), terminal:
    left_self = "left_self"  # 自行离站
    handed_to_family = "handed_to_family"  # 亲属接领
    escorted_home = "escorted_home"  # 护送返乡
    collected_by_origin = "collected_by_origin"  # 流出地接回
    placed = "placed"  # 安置
    transferred_minor = "transferred_minor"  # 转未成年人救助保护机构
    left_unauthorised = "left_unauthorised"  # 擅自离站
    terminated = "terminated"  # 终止救助
    deceased = "deceased"  # 死亡


class LeavingCategory(StrEnum):
    """民政部救助管理统计 离站方式 (the categories monthly reports count)."""

    placement = "placement"  # 安置
    ticket_self_return = "ticket_self_return"  # 提供乘车凭证/自行返乡
    terminated = "terminated"  # 终止救助
    left_unauthorised = "left_unauthorised"  # 擅自离站
    escorted_return = "escorted_return"  # 护送返乡 (跨省)
    collected_return = "collected_return"  # 接领返乡 (跨省)
    deceased = "deceased"  # 死亡
    other = "other"  # 其他


TERMINAL_STATUSES: frozenset[CaseStatus] = frozenset(
    {
        CaseStatus.left_self,
        CaseStatus.handed_to_family,
        CaseStatus.escorted_home,
        CaseStatus.collected_by_origin,
        CaseStatus.placed,
        CaseStatus.transferred_minor,
        CaseStatus.left_unauthorised,
        CaseStatus.terminated,
        CaseStatus.deceased,
    }
)
#: Statuses of a person still in the station's care (matching pool for new notices).
IN_CARE_STATUSES: frozenset[CaseStatus] = frozenset(CaseStatus) - TERMINAL_STATUSES


class Case(Table, tablename="cases"):
    """受助人员 (a person in care) and their case file."""

    id: Serial
    reference = Varchar(length=40, unique=True)  # station number, e.g. 2026-0012
    reported_name = Varchar(length=100, null=True, default=None)  # self-reported
    placeholder_name = Varchar(length=40)  # 无名氏-0012, always set
    sex = Varchar(length=10, choices=Sex, default=Sex.unknown)
    estimated_age = Integer(null=True, default=None)
    age_low = Integer(null=True, default=None)
    age_high = Integer(null=True, default=None)
    found_at = Timestamptz(null=True, default=None)
    found_place = Varchar(length=300, default="")
    brought_by = Varchar(length=300, default="")
    description = Text(default="")
    dialect = Varchar(length=100, default="")
    belongings = Text(default="")
    station = Varchar(length=100, default="")
    #: Estimated date of birth (出生日期, estimated when unknown); decides "under 16".
    birth_date_estimate = Date(null=True, default=None)
    #: Flagged as lacking capacity (mental or intellectual disability, 精神/智力障碍):
    #: may leave only into someone's custody, like a minor.
    lacks_capacity = Boolean(default=False)
    height_cm = Integer(null=True, default=None)
    status = Varchar(length=32, choices=CaseStatus, default=CaseStatus.admitted)
    admitted_at = Timestamptz(default=TimestamptzNow())
    #: When the case was entered into this service, if later than the admission
    #: (历史补录: a long-term resident admitted years ago). None: entered at
    #: ``created_at``. Deadlines due before it are ``historic`` (rescue.alerts).
    entered_at = Timestamptz(null=True, default=None)
    #: The station's own key of a case loaded from a backlog file (``station:编号``);
    #: unique (the index ``cases_backlog_key_unique``, made by a migration because
    #: SQLite cannot add a UNIQUE column), so loading the same row again creates
    #: nothing (rescue.backlog).
    backlog_key = Varchar(length=160, null=True, default=None)
    created_by = Integer(null=True, default=None)  # users.id
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # The identity found (身份查明): filled from the confirmed notice, edited by
    # staff; every change is an ``identity_updated`` event. ``id_number`` is
    # sensitive (PIPL art. 28): shown only by GET /api/cases/{id}/identity
    # (audited) to the roles that need it.
    confirmed_name = Varchar(length=100, null=True, default=None)
    id_number = Varchar(length=18, null=True, default=None)  # 公民身份号码
    household_registration = Varchar(length=300, default="")  # 户籍地
    relatives_contact = Varchar(length=300, default="")  # 亲属联系方式
    identity_notice = Integer(null=True, default=None)  # notices.id it came from
