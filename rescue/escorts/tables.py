"""Escort home (护送返乡): return plans, handover records (交接), police-liaison tasks."""

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


class ReturnPlan(Table, tablename="return_plans"):
    """How an identified person goes home (one per case). A revision updates the
    row (``return_plan_revised`` on the timeline keeps the earlier values);
    ``created_at`` stays the time the plan was first made."""

    id: Serial
    case = ForeignKey(references=Case, unique=True)
    destination = Varchar(length=300)
    #: The station using this service that receives the person (接收站), when the
    #: destination is one: it then sees the case summary, the plan and the
    #: handover, records the reception and countersigns (rescue.stations).
    destination_station = Varchar(length=100, null=True, default=None)
    transport = Varchar(length=200)
    escort_staff = JSON(default="[]")  # list of names
    planned_on = Date()
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    #: Who is expected to receive the person (a ReceivingParty value) and who
    #: they are (name, relationship or institution); None/"" if not known yet.
    receiving_party = Varchar(length=32, null=True, default=None)
    receiver = Varchar(length=300, default="")
    revised_at = Timestamptz(null=True, default=None)


class ReceivingParty(StrEnum):
    family = "family"  # 亲属
    origin_station = "origin_station"  # 流出地救助管理站 / 政府
    police = "police"  # 公安机关护送
    minors_institution = "minors_institution"  # 未成年人救助保护机构


class RelationshipBasis(StrEnum):
    """How the receiver's relationship to the person was established (亲属关系证明)."""

    confirmed_candidate = "confirmed_candidate"  # 比对确认 (a confirmed match candidate)
    household_register = "household_register"  # 户口簿
    police_certificate = "police_certificate"  # 派出所证明
    dna_result = "dna_result"  # DNA 亲缘鉴定


class Handover(Table, tablename="handovers"):
    """The handover (交接) of a person, with the signed sheet in the object store."""

    id: Serial
    case = ForeignKey(references=Case)
    receiving_party = Varchar(length=32, choices=ReceivingParty)
    receiver_name = Varchar(length=200)
    relationship = Varchar(length=100, default="")
    id_document_type = Varchar(length=50)  # e.g. 居民身份证
    id_document_number = Varchar(length=50)
    id_document_checked = Boolean(default=False)
    handed_over_at = Timestamptz()
    place = Varchar(length=300)
    sheet_object_key = Varchar(length=200, unique=True)
    sheet_media_type = Varchar(length=40)
    sheet_sha256 = Varchar(length=64)
    recorded_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    #: How the relationship was established (family only); required for a person
    #: who may leave only into custody (rescue.cases.flows).
    relationship_basis = Varchar(length=32, null=True, default=None, choices=RelationshipBasis)
    #: The proof document (户口簿, 派出所证明, DNA result) in the object store.
    proof_object_key = Varchar(length=200, null=True, default=None)
    proof_media_type = Varchar(length=40, null=True, default=None)
    proof_sha256 = Varchar(length=64, null=True, default=None)
    #: A second staff member's approval (custody: handover to family).
    approved_by = Integer(null=True, default=None)
    approved_at = Timestamptz(null=True, default=None)
    #: The reception (接收) recorded by the destination station's staff.
    received_at = Timestamptz(null=True, default=None)
    received_by_name = Varchar(length=200, null=True, default=None)
    reception_notes = Text(default="")
    reception_recorded_by = Integer(null=True, default=None)
    #: The destination station's countersignature (会签): a second signature
    #: record by its staff member; required to close when the destination is a
    #: station using this service (rescue.cases.flows).
    countersigned_by = Integer(null=True, default=None)
    countersigned_at = Timestamptz(null=True, default=None)
    countersign_station = Varchar(length=100, null=True, default=None)


class TaskKind(StrEnum):
    cancel_collective_household = "cancel_collective_household"  # 集体户口注销


class LiaisonTask(Table, tablename="liaison_tasks"):
    """A task for the police liaison, e.g. cancelling the collective household
    registration of a settled person whose identity has been confirmed."""

    id: Serial
    case = ForeignKey(references=Case)
    kind = Varchar(length=48, choices=TaskKind)
    assigned_role = Varchar(length=32, default="police_liaison")
    note = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    done_at = Timestamptz(null=True, default=None)
    done_by = Integer(null=True, default=None)
