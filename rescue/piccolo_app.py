"""The single Piccolo app holding every table; one migrations folder."""

import os

from piccolo.conf.apps import AppConfig

from rescue.alerts.tables import HolidaySchedule
from rescue.announcements.tables import Announcement
from rescue.audit.tables import AuditRecord
from rescue.cases.events import CaseEvent
from rescue.cases.tables import Case
from rescue.duplicates.tables import DuplicateFaceCheck, DuplicateWarning
from rescue.escorts.tables import Handover, LiaisonTask, ReturnPlan
from rescue.family_requests.tables import (
    RateCounter,
    SearchRequest,
    SearchRequestMessage,
    SearchRequestPhoto,
)
from rescue.imports.tables import ImportChunk, ImportRecord, ImportRun, ImportWarning
from rescue.matching.tables import (
    Candidate,
    CandidateEvidence,
    CandidateReview,
    FaceDeletion,
    FamilyConfirmation,
    MatchCalibration,
    MatchFilteredPair,
    MatchFilterRelaxation,
    RematchRun,
)
from rescue.notices.events import NoticeEvent
from rescue.notices.tables import Notice
from rescue.pfif.tables import PfifNoteRecord, PfifPersonRecord
from rescue.photos.tables import Face, Photo
from rescue.placements.tables import Placement, PlacementDocument, SettlementApproval
from rescue.searches.tables import SearchAction
from rescue.stations.tables import CaseTransfer
from rescue.users.tables import ApiToken, LoginThrottle, User
from rescue.web.tables import FormSubmission, WebSession

CURRENT_DIRECTORY = os.path.dirname(os.path.abspath(__file__))

APP_CONFIG = AppConfig(
    app_name="rescue",
    migrations_folder_path=os.path.join(CURRENT_DIRECTORY, "piccolo_migrations"),
    table_classes=[
        User,
        ApiToken,
        Case,
        CaseEvent,
        Notice,
        Photo,
        Face,
        Candidate,
        NoticeEvent,
        CandidateEvidence,
        CandidateReview,
        FamilyConfirmation,
        RematchRun,
        MatchCalibration,
        FaceDeletion,
        MatchFilterRelaxation,
        MatchFilteredPair,
        LoginThrottle,
        AuditRecord,
        Announcement,
        Placement,
        PlacementDocument,
        SettlementApproval,
        HolidaySchedule,
        SearchAction,
        ReturnPlan,
        Handover,
        LiaisonTask,
        WebSession,
        FormSubmission,
        SearchRequest,
        SearchRequestPhoto,
        SearchRequestMessage,
        RateCounter,
        DuplicateWarning,
        DuplicateFaceCheck,
        PfifPersonRecord,
        PfifNoteRecord,
        ImportRun,
        ImportChunk,
        ImportRecord,
        ImportWarning,
        CaseTransfer,
    ],
    migration_dependencies=[],
    commands=[],
)
