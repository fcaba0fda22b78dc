"""Match candidates (one per (case, notice) pair), their evidence, reviews and
family confirmations, and on-demand re-matching runs."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSON,
    DoublePrecision,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case
from rescue.notices.tables import Notice
from rescue.photos.tables import Photo


class CandidateStatus(StrEnum):
    proposed = "proposed"
    under_review = "under_review"
    confirmed = "confirmed"
    rejected = "rejected"
    superseded = "superseded"


#: Candidates still waiting for a decision.
OPEN_CANDIDATE_STATUSES: frozenset[CandidateStatus] = frozenset(
    {CandidateStatus.proposed, CandidateStatus.under_review}
)


class ConfidenceBand(StrEnum):
    """What a face distance means at the gallery's size (rescue.matching.calibration)."""

    strong = "strong"  # a non-matching person scores this well in ≤ 1 % of searches
    possible = "possible"  # ≤ 10 %
    weak = "weak"  # more often


class EvidenceKind(StrEnum):
    face = "face"  # the service's own face matching
    police_dna = "police_dna"  # 公安 DNA 比中
    police_face = "police_face"  # 公安人像比对
    announcement_clue = "announcement_clue"  # someone answered a 寻亲公告
    staff = "staff"  # a staff member's lead


class FamilyConfirmationMethod(StrEnum):
    video_call = "video_call"
    visit = "visit"
    documents = "documents"
    dna = "dna"


class Candidate(Table, tablename="candidates"):
    """A possible identity: this person in care may be the person in this notice.

    ``pair_key`` (``"{case_id}:{notice_id}"``) is unique, so concurrent workers
    can never create two candidates for one pair. A police lead about a person
    not (yet) registered as a case has ``case = NULL``, a ``person_description``
    and ``pair_key = "lead:<random>"``; it cannot be confirmed (see
    docs/scoring.md, "Leads without a case").

    ``version`` rises with every decision: decisions are conditional updates on
    (status, version), so of two concurrent decisions only the first applies.
    """

    id: Serial
    case = ForeignKey(references=Case, null=True, default=None, index=True)
    notice = ForeignKey(references=Notice, index=True)
    pair_key = Varchar(length=40, unique=True)
    person_description = Text(default="")
    best_distance = DoublePrecision(null=True, default=None)
    case_photo = ForeignKey(references=Photo, null=True, default=None)
    notice_photo = ForeignKey(references=Photo, null=True, default=None)
    status = Varchar(length=16, choices=CandidateStatus, default=CandidateStatus.proposed)
    #: Ranking score 0..1 (docs/scoring.md), refreshed whenever evidence changes.
    score = DoublePrecision(default=0.0)
    #: Plausibility warnings (e.g. ``sex_mismatch``, ``age_impossible``): never hide.
    flags = JSON(default="[]")
    #: Times the pair came back after a rejection (new photo or new police evidence).
    re_proposed = Integer(default=0)
    #: Photo ids of both sides that had been processed when the pair was rejected:
    #: face matching from these photos alone does not re-propose it.
    rejected_photo_ids = JSON(default="[]")
    #: What the face distance means at the gallery size it was found in
    #: (rescue.matching.calibration.Calibration.confidence): band, gallery-level
    #: false-match rate, gallery size, calibration; ``{}`` without face evidence.
    confidence = JSON(default="{}")
    version = Integer(default=0)
    #: With REQUIRE_SECOND_REVIEWER: the reviewer who gave the first confirmation.
    first_confirmed_by = Integer(null=True, default=None)  # users.id
    decided_by = Integer(null=True, default=None)  # users.id
    decided_at = Timestamptz(null=True, default=None)
    decision_reason = Text(default="")
    #: Set by retention (rescue.retention) when the photos or face encodings of
    #: either side were deleted: the decision and this summary stay.
    photos_deleted_at = Timestamptz(null=True, default=None)
    #: The evidence as it stood when retention deleted biometric data of either
    #: side (rescue.retention.evidence_summary): status, best distance, score,
    #: band, model, threshold, the two photo ids as plain integers, who decided
    #: and when. ``{}`` until then.
    retained_evidence = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class CandidateEvidence(Table, tablename="candidate_evidence"):
    """One source of a candidate, with its own values and provenance.

    ``face`` evidence is one record per (candidate, model), keyed by
    ``face_key`` and refreshed by matching; police and other evidence is one
    record per submission. ``values`` holds the kind's measurements (see
    rescue.matching.schemas); face records also fill the typed columns.
    The attachment (police report, PDF or image) lives in the object store under
    ``attachment_key``; clients only get a short-lived presigned URL.
    """

    id: Serial
    candidate = ForeignKey(references=Candidate)
    kind = Varchar(length=24, choices=EvidenceKind)
    values = JSON(default="{}")
    face_key = Varchar(length=140, null=True, default=None, unique=True)
    model = Varchar(length=80, null=True, default=None)
    threshold = DoublePrecision(null=True, default=None)
    distance = DoublePrecision(null=True, default=None)
    case_photo = ForeignKey(references=Photo, null=True, default=None)
    notice_photo = ForeignKey(references=Photo, null=True, default=None)
    note = Text(default="")
    attachment_key = Varchar(length=200, null=True, default=None)
    attachment_media_type = Varchar(length=60, null=True, default=None)
    attachment_sha256 = Varchar(length=64, null=True, default=None)
    attachment_size = Integer(null=True, default=None)
    submitted_by = Integer(null=True, default=None)  # users.id; None = the matcher
    submitted_role = Varchar(length=32, default="system")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class CandidateReview(Table, tablename="candidate_reviews"):
    """One reviewer decision on a candidate (append-only)."""

    id: Serial
    candidate = ForeignKey(references=Candidate)
    reviewer_id = Integer()
    decision = Varchar(length=24)  # start_review, confirm, reject
    from_status = Varchar(length=16)
    to_status = Varchar(length=16)
    reason = Text()
    at = Timestamptz(default=TimestamptzNow())


class FamilyConfirmation(Table, tablename="family_confirmations"):
    """亲属确认: a relative confirmed the identity (who, relationship, how, when)."""

    id: Serial
    candidate = ForeignKey(references=Candidate)
    confirmer_name = Varchar(length=100)
    relationship = Varchar(length=60)
    method = Varchar(length=16, choices=FamilyConfirmationMethod)
    confirmed_at = Timestamptz()
    notes = Text(default="")
    recorded_by = Integer()  # users.id
    created_at = Timestamptz(default=TimestamptzNow())


class RematchRun(Table, tablename="rematch_runs"):
    """A re-matching of every processed photo (after a threshold or model change), or
    (``kind="reencode"``) a re-encoding of the photos whose faces were encoded by
    another model than the one in use, then their re-matching
    (rescue.matching.reencode)."""

    id: Serial
    kind = Varchar(length=16, default="rematch")  # rematch, reencode
    status = Varchar(length=16, default="queued")  # queued, running, done, failed, cancelled
    total = Integer(default=0)
    done = Integer(default=0)
    candidates_touched = Integer(default=0)
    threshold = DoublePrecision()
    model = Varchar(length=80)
    requested_by = Integer(null=True, default=None)  # users.id; None = CLI
    error = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)


class MatchCalibration(Table, tablename="match_calibrations"):
    """A calibration of face distances for one model version (rescue.matching.calibration).

    Written by ``rescue calibrate FOLDER``; the newest row of the model in use
    wins, and without one the shipped LFW default applies. ``data`` is
    :meth:`~rescue.matching.calibration.Calibration.to_dict` (distributions,
    tail fit, loose bound, pair counts); no photos or encodings.
    """

    id: Serial
    model = Varchar(length=80, index=True)
    source = Text(default="")
    data = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())


#: ``face_deletions.face_id`` of an entry that means "the log before this entry is
#: incomplete: reload the whole gallery": written by the truncate trigger (the
#: faces table was emptied) and by the retention run when it prunes old entries
#: (rescue.retention.prune_deletion_log). Face ids start at 1.
RELOAD_MARKER = 0


class FaceDeletion(Table, tablename="face_deletions"):
    """Ids of deleted faces, written by a database trigger on ``faces`` (migration
    2026-12-02T02:30): a worker's gallery drops them without counting the faces
    table per job (rescue.matching.services.SideGallery.refresh). Entries older
    than ``rescue.retention.DELETION_LOG_DAYS`` are pruned, leaving a
    :data:`RELOAD_MARKER` entry in place of the newest pruned one."""

    id: Serial
    face_id = Integer()
    #: When the face was deleted: set by the database (the column default on
    #: PostgreSQL, the trigger on SQLite; migration 2026-12-03T01:00), never by
    #: the application.
    logged_at = Timestamptz(null=True, default=None)


class MatchFilterRelaxation(Table, tablename="match_filter_relaxations"):
    """A reviewer's relaxation of a matching filter (``sex``) for one case or one
    notice (rescue.matching.filters): while ``restored_at`` is null, pairs of this
    case/notice are not removed by the filter but matched flagged (``sex_mismatch``)
    and ranked lower. Rows are never deleted: the history of who relaxed and restored
    what, why and when."""

    id: Serial
    case = ForeignKey(references=Case, null=True, default=None, index=True)
    notice = ForeignKey(references=Notice, null=True, default=None, index=True)
    filter = Varchar(length=16)  # sex
    reason = Text(default="")
    relaxed_by = Integer(null=True, default=None)  # users.id
    relaxed_at = Timestamptz(default=TimestamptzNow())
    restored_by = Integer(null=True, default=None)
    restored_at = Timestamptz(null=True, default=None)
    restore_reason = Text(default="")
    #: When the worker finished re-matching after the last change (null: queued).
    rematched_at = Timestamptz(null=True, default=None)


class MatchFilteredPair(Table, tablename="match_filtered_pairs"):
    """A (case, notice) pair a filter removed the last time a search looked at it
    (rescue.matching.services.match_photo, either direction); deleted when a later
    search keeps the pair. What the filter counts on the reviewer's page are read from."""

    id: Serial
    pair_key = Varchar(length=64, unique=True)
    case = ForeignKey(references=Case, index=True, on_delete=OnDelete.cascade)
    notice = ForeignKey(references=Notice, index=True, on_delete=OnDelete.cascade)
    filter = Varchar(length=16)
    distance = DoublePrecision()
    updated_at = Timestamptz(default=TimestamptzNow())
