"""The case timeline: an append-only record of everything that happened to a case."""

from __future__ import annotations

import re
from datetime import date
from enum import Enum, StrEnum
from typing import Any

from piccolo.columns import JSON, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case

__all__ = ["CaseEvent", "EventKind", "event_label", "event_summary", "record_event"]


class CaseEvent(Table, tablename="case_events"):
    """One timeline entry (who, when, what, why). Never updated or deleted: a
    database trigger refuses UPDATE and DELETE (migration 2026-11-29T12:12:03)."""

    id: Serial
    case = ForeignKey(references=Case)
    at = Timestamptz(default=TimestamptzNow())
    actor_id = Integer(null=True, default=None)  # users.id; None = the system
    actor_role = Varchar(length=32, default="system")
    kind = Varchar(length=48)  # e.g. status_changed, photo_added, candidate_confirmed
    from_status = Varchar(length=32, null=True, default=None)
    to_status = Varchar(length=32, null=True, default=None)
    reason = Text(default="")
    data = JSON(default="{}")
    #: For an entry recorded later (历史补录): when it happened; ``at`` is when it
    #: was recorded. None: it happened at ``at``.
    occurred_at = Timestamptz(null=True, default=None)


async def record_event(
    *,
    case_id: int,
    kind: str,
    actor_id: int | None,
    actor_role: str,
    reason: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: Any = None,
) -> int:
    """Append an event to a case's timeline; returns its id. ``occurred_at``: an
    entry recorded later (历史补录) — when it happened (``at`` stays the moment
    it is recorded)."""
    from rescue import clock

    rows = await CaseEvent.insert(
        CaseEvent(
            case=case_id,
            at=clock.now(),
            actor_id=actor_id,
            actor_role=actor_role,
            kind=kind,
            reason=reason,
            from_status=from_status,
            to_status=to_status,
            data=data or {},
            occurred_at=occurred_at,
        )
    ).returning(CaseEvent.id)
    return int(rows[0]["id"])


class EventKind(StrEnum):
    """Every kind of timeline entry, each with a label in the catalogue
    (``EventKind.<value>``, rescue.i18n.enums). Search actions
    (rescue.searches.tables.SearchKind) are recorded under their own kinds."""

    admitted = "admitted"  # 入站
    status_changed = "status_changed"
    case_updated = "case_updated"
    identity_updated = "identity_updated"
    placement_started = "placement_started"
    placement_ended = "placement_ended"
    placement_document_added = "placement_document_added"
    settlement_approved = "settlement_approved"
    task_created = "task_created"
    task_done = "task_done"
    candidate_confirmed = "candidate_confirmed"
    candidate_rejected = "candidate_rejected"
    candidate_re_proposed = "candidate_re_proposed"
    candidate_evidence_added = "candidate_evidence_added"
    family_confirmation_recorded = "family_confirmation_recorded"
    handover_recorded = "handover_recorded"
    handover_approved = "handover_approved"
    dna_result = "dna_result"
    entry_voided = "entry_voided"
    faces_deleted = "faces_deleted"
    photos_deleted = "photos_deleted"
    duplicate_linked = "duplicate_linked"
    duplicate_dismissed = "duplicate_dismissed"
    announcement = "announcement"
    dna_request = "dna_request"
    police_check = "police_check"
    interview = "interview"
    care_decision = "care_decision"
    extension_filing = "extension_filing"


def event_label(kind: str) -> str:
    """The timeline entry's kind in the page's language (the raw kind if unknown)."""
    from rescue.i18n import label

    try:
        return label(EventKind(kind))
    except ValueError:
        return kind


def _enum_label(enum: type[Enum], value: Any) -> str:
    from rescue.i18n import label

    try:
        return label(enum(value))
    except ValueError:
        return str(value)


def _local_day(value: Any) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        return str(value)


def event_summary(kind: str, reason: str, data: dict[str, Any]) -> str:
    """What a timeline entry says, in the page's language (issue 10 item 2).

    The text is composed at render time from the entry's kind and structured
    ``data`` with catalogue templates (enum labels for placement kinds,
    confirmation methods, check types, tasks; ISO local dates). Entries written
    before the data held these values carry them only in an English ``reason``
    made by the writer (e.g. ``"moved to psychiatric_hospital at X"``); those
    known shapes are read back from the reason. A reason a person typed is shown
    as typed.
    """
    from rescue.escorts.tables import TaskKind
    from rescue.i18n import _
    from rescue.matching.tables import FamilyConfirmationMethod
    from rescue.placements.tables import PlacementKind
    from rescue.searches.tables import PoliceCheckType

    data = data or {}
    if kind == EventKind.admitted:
        who = data.get("brought_by")
        if who is None and reason.startswith("brought by "):
            who = reason.removeprefix("brought by ")
        return _("brought by {who}", who=who) if who else reason
    if kind == EventKind.placement_ended:
        moved = re.fullmatch(r"moved to (\w+) at (.*)", reason, re.S)
        if "moved_to_kind" in data or moved:
            place_kind = data.get("moved_to_kind") or (moved.group(1) if moved else "")
            facility = data.get("moved_to_facility") or (moved.group(2) if moved else "")
            return _(
                "moved to {kind} at {facility}",
                kind=_enum_label(PlacementKind, place_kind),
                facility=facility,
            )
        return reason
    if kind == EventKind.family_confirmation_recorded:
        method = data.get("method")
        relationship = data.get("relationship")
        if method is None:
            found = re.fullmatch(r"(.*) by (\w+)", reason, re.S)
            if found and found.group(2) in {m.value for m in FamilyConfirmationMethod}:
                relationship, method = found.groups()
        if method is None:
            return reason
        return _(
            "{relationship}, confirmed by {method}",
            relationship=relationship or "",
            method=_enum_label(FamilyConfirmationMethod, method),
        )
    if kind == EventKind.status_changed and "destination" in data and "planned_on" in data:
        if reason == f"return to {data['destination']} on {data['planned_on']}":
            return _(
                "return to {destination} on {date}",
                destination=data["destination"],
                date=_local_day(data["planned_on"]),
            )
        return reason
    if kind == EventKind.identity_updated and "notice_id" in data:
        return _("identity from the confirmed notice {notice_id}", notice_id=data["notice_id"])
    if kind == EventKind.task_done and reason == data.get("task"):
        return _enum_label(TaskKind, reason)
    if kind in (EventKind.faces_deleted, EventKind.photos_deleted):
        days = re.match(r"retention: (\d+) days after closing", reason)
        if days:
            return _("kept {days} days after closing, then deleted", days=days.group(1))
        return reason
    if kind == EventKind.announcement:
        return re.sub(r"^announcement on ", "", reason)
    if kind == EventKind.dna_request and reason.startswith("DNA requested from "):
        return _("requested from {unit}", unit=reason.removeprefix("DNA requested from "))
    if kind == EventKind.police_check:
        check, _sep, result = reason.partition(": ")
        if check in {c.value for c in PoliceCheckType}:
            return (
                f"{_enum_label(PoliceCheckType, check)}: {result}"
                if result
                else (_enum_label(PoliceCheckType, check))
            )
        return reason
    if kind == EventKind.interview and reason == "interview":
        return ""
    if kind in (EventKind.care_decision, EventKind.extension_filing):
        return reason.removeprefix(str(kind)).strip()
    return reason
