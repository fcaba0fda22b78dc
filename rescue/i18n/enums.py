"""The enums whose values people see (on pages, in documents, in messages).

Each member's label is the catalogue entry ``"<Enum>.<value>"``
(:func:`rescue.i18n.label`). Add an enum here when it becomes visible;
``tests/unit/test_catalogue.py`` then requires a zh_CN and an en label for each
of its values.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["visible_enums"]


def visible_enums() -> list[type[Enum]]:
    """Every enum shown to people, imported late (tables import this package)."""
    from rescue.alerts.rules import AlertKind, Unit
    from rescue.announcements.schemas import AnnouncedField
    from rescue.cases.tables import CaseStatus, LeavingCategory, Sex
    from rescue.duplicates.tables import DuplicateStatus
    from rescue.escorts.tables import ReceivingParty, RelationshipBasis, TaskKind
    from rescue.family_requests.schemas import Decision
    from rescue.family_requests.tables import MessageAuthor, RequestStatus
    from rescue.imports.tables import RunStatus, WarningOutcome
    from rescue.imports.templates import ListKind
    from rescue.matching.tables import (
        CandidateStatus,
        ConfidenceBand,
        EvidenceKind,
        FamilyConfirmationMethod,
    )
    from rescue.notices.tables import NoticeSource, NoticeStatus
    from rescue.photos.tables import PhotoStatus
    from rescue.placements.tables import PlacementKind
    from rescue.searches.tables import AnnouncementChannel, PoliceCheckType, SearchKind
    from rescue.users.tables import Role

    return [
        AlertKind,
        AnnouncedField,
        AnnouncementChannel,
        CandidateStatus,
        CaseStatus,
        ConfidenceBand,
        Decision,
        DuplicateStatus,
        LeavingCategory,
        ListKind,
        EvidenceKind,
        MessageAuthor,
        FamilyConfirmationMethod,
        NoticeSource,
        NoticeStatus,
        PhotoStatus,
        PlacementKind,
        PoliceCheckType,
        ReceivingParty,
        RelationshipBasis,
        RequestStatus,
        Role,
        RunStatus,
        SearchKind,
        Sex,
        TaskKind,
        Unit,
        WarningOutcome,
    ]
