"""Placements (安置去向 / 托养): where a person in care physically is, and who is responsible."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import Boolean, Date, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case


class PlacementKind(StrEnum):
    in_station = "in_station"  # 站内照料
    general_hospital = "general_hospital"  # 医院 (定点医院)
    psychiatric_hospital = "psychiatric_hospital"  # 精神病院
    outsourced_care = "outsourced_care"  # 站外托养 (contract reference required)
    welfare_home = "welfare_home"  # 福利院


class Placement(Table, tablename="placements"):
    """One period ``[started_at, ended_at)`` at one facility; ``ended_at`` None = current.

    Periods of one case never overlap (checked in services, under a row lock).
    """

    id: Serial
    case = ForeignKey(references=Case)
    kind = Varchar(length=32, choices=PlacementKind)
    facility = Varchar(length=300)
    reason = Text(default="")
    responsible_contact = Varchar(length=300, default="")
    contract_reference = Varchar(length=100, default="")  # 托养协议编号 (outsourced care)
    started_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    created_by = Integer(null=True, default=None)  # users.id; None = the system
    created_at = Timestamptz(default=TimestamptzNow())
    #: Recorded later from the station's files (历史补录) by ``created_by`` at
    #: ``created_at``; the period itself lies in the past.
    entered_later = Boolean(default=False)


class PlacementDocument(Table, tablename="placement_documents"):
    """A document of a placement (e.g. discharge certificate 出院证明), original in the
    object store under an unguessable key."""

    id: Serial
    placement = ForeignKey(references=Placement)
    title = Varchar(length=200)
    object_key = Varchar(length=200, unique=True)
    media_type = Varchar(length=40)
    size_bytes = Integer()
    sha256 = Varchar(length=64)
    uploaded_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class SettlementApproval(Table, tablename="settlement_approvals"):
    """An approval of settlement (落户安置审批) before the eligibility period is over,
    with the approving authority, its reference (文号) and the scanned document."""

    id: Serial
    case = ForeignKey(references=Case, index=True)
    authority = Varchar(length=200)  # e.g. 市民政局
    reference = Varchar(length=100)  # 文号
    approved_on = Date()
    object_key = Varchar(length=200, unique=True)
    media_type = Varchar(length=40)
    sha256 = Varchar(length=64)
    recorded_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
