"""Request and response bodies for escort home (护送返乡) and handover (交接)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile

from rescue.escorts.tables import ReceivingParty, RelationshipBasis, TaskKind
from rescue.schemas import AwareDatetime

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ReturnPlanCreate(msgspec.Struct, forbid_unknown_fields=True):
    """How an identified person goes home; recording it moves the case to
    ``return_planned``."""

    destination: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    transport: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    escort_staff: Annotated[list[Name], msgspec.Meta(min_length=1)]
    planned_on: date
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    #: Who is expected to receive the person, if known (family, origin_station,
    #: police, minors_institution) and their name or the institution.
    receiving_party: ReceivingParty | None = None
    receiver: Annotated[str, msgspec.Meta(max_length=300)] = ""

    #: The receiving station when it uses this service (``GET /api/stations``);
    #: it then takes part and must countersign before the case closes.
    destination_station: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


class ReturnPlanRevision(msgspec.Struct, forbid_unknown_fields=True):
    """A changed return plan (all fields as when recording it) and why it changed;
    the case stays ``return_planned``; ``return_plan_revised`` on the timeline."""

    destination: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    transport: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    escort_staff: Annotated[list[Name], msgspec.Meta(min_length=1)]
    planned_on: date
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    receiving_party: ReceivingParty | None = None
    receiver: Annotated[str, msgspec.Meta(max_length=300)] = ""


class PersonOut(msgspec.Struct):
    """Who is going home: the identity found (身份查明) on the case."""

    display_name: str
    confirmed_name: str | None
    id_number: str | None
    household_registration: str
    relatives_contact: str


class ReturnPlanOut(msgspec.Struct):
    id: int
    case_id: int
    destination: str
    transport: str
    escort_staff: list[str]
    planned_on: date
    created_at: datetime
    receiving_party: ReceivingParty | None = None
    receiver: str = ""
    revised_at: datetime | None = None
    person: PersonOut | None = None
    destination_station: str | None = None


@dataclass
class HandoverForm:
    """Multipart form of a handover record (交接单).

    ``sheet``: the scanned, signed handover sheet (PDF/JPEG/PNG/WebP).
    ``receiving_party``: family, origin_station, police or minors_institution.
    ``id_document_checked`` must be true: the receiver's identity document was
    seen and checked. ``handed_over_at``: ISO 8601 with offset.
    ``relationship_basis`` and ``proof``: how the receiver's relationship was
    established (family). For a person who may leave only into custody a handover
    to family needs ``confirmed_candidate`` (a confirmed match candidate on the
    case) or ``household_register``/``police_certificate``/``dna_result`` with the
    ``proof`` document, and then a second staff member's approval
    (``POST /api/handovers/{id}/approve``).
    """

    sheet: UploadFile
    receiving_party: ReceivingParty
    receiver_name: str
    id_document_type: str
    id_document_number: str
    id_document_checked: bool
    handed_over_at: AwareDatetime
    place: str
    relationship: str = ""
    relationship_basis: RelationshipBasis | None = None
    proof: UploadFile | None = None


class HandoverApproval(msgspec.Struct, forbid_unknown_fields=True):
    """A second staff member's approval of a handover (custody)."""

    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class ReceptionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """The destination station records that it received the person (接收)."""

    received_at: AwareDatetime
    received_by_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    notes: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class Countersignature(msgspec.Struct, forbid_unknown_fields=True):
    """The destination station's staff member countersigns the handover (会签)."""

    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class HandoverOut(msgspec.Struct):
    id: int
    case_id: int
    receiving_party: ReceivingParty
    receiver_name: str
    relationship: str
    id_document_type: str
    id_document_number: str
    id_document_checked: bool
    handed_over_at: AwareDatetime
    place: str
    sheet_media_type: str
    sheet_sha256: str
    created_at: datetime
    sheet_url: str | None = None
    sheet_url_expires_in: int | None = None
    relationship_basis: RelationshipBasis | None = None
    proof_media_type: str | None = None
    proof_sha256: str | None = None
    proof_url: str | None = None
    recorded_by: int | None = None
    approved_by: int | None = None
    approved_at: datetime | None = None
    #: The person handed over (identity found; read audited).
    person: PersonOut | None = None
    #: The reception (接收) and countersignature (会签) by the destination station.
    destination_station: str | None = None
    received_at: datetime | None = None
    received_by_name: str | None = None
    reception_notes: str = ""
    reception_recorded_by: int | None = None
    countersigned_by: int | None = None
    countersigned_at: datetime | None = None


class TaskOut(msgspec.Struct):
    id: int
    case_id: int
    kind: TaskKind
    assigned_role: str
    note: str
    created_at: datetime
    done_at: datetime | None
    done_by: int | None
    #: The person concerned (name and 户籍地; the ID number: GET …/identity).
    person: PersonOut | None = None
