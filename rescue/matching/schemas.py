"""Request and response bodies for match candidates, evidence, reviews and re-matching."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from rescue.matching.tables import ConfidenceBand, EvidenceKind, FamilyConfirmationMethod
from rescue.schemas import MAX_ID, AwareDatetime

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Label = Annotated[str, msgspec.Meta(max_length=200)]


# --- evidence values, one Struct per kind (validated on POST /api/candidates) ---
class PoliceDnaValues(msgspec.Struct, forbid_unknown_fields=True):
    """公安 DNA 比中. ``likelihood_ratio``: LR of the kinship/identity hypothesis (> 0)."""

    likelihood_ratio: Annotated[float, msgspec.Meta(gt=0)]
    relationship_tested: Label = ""  # e.g. "parent-child", "full siblings", "identity"
    lab: Label = ""
    report_number: Label = ""


class PoliceFaceValues(msgspec.Struct, forbid_unknown_fields=True):
    """公安人像比对. ``score``: the police system's similarity, 0..1 (higher is closer)."""

    score: Annotated[float, msgspec.Meta(ge=0, le=1)]
    system: Label = ""
    report_number: Label = ""


class LeadValues(msgspec.Struct, forbid_unknown_fields=True):
    """An announcement answer or a staff lead: what was said, and by whom."""

    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
    source_contact: Label = ""


VALUE_TYPES: dict[EvidenceKind, type[msgspec.Struct]] = {
    EvidenceKind.police_dna: PoliceDnaValues,
    EvidenceKind.police_face: PoliceFaceValues,
    EvidenceKind.announcement_clue: LeadValues,
    EvidenceKind.staff: LeadValues,
}


class EvidenceOut(msgspec.Struct):
    """One evidence record. Face records carry model, threshold, distance and the two
    photo ids (never encodings); police records may carry an attachment URL
    (presigned, ``attachment_url_expires_in`` seconds)."""

    id: int
    kind: EvidenceKind
    values: dict[str, Any]
    submitted_by: int | None
    submitted_role: str
    created_at: datetime
    updated_at: datetime
    note: str = ""
    model: str | None = None
    threshold: float | None = None
    distance: float | None = None
    case_photo_id: int | None = None
    notice_photo_id: int | None = None
    attachment_media_type: str | None = None
    attachment_sha256: str | None = None
    attachment_url: str | None = None
    attachment_url_expires_in: int | None = None


class ConfidenceOut(msgspec.Struct):
    """What the candidate's face distance means at the size of the gallery it was
    found in (rescue.matching.calibration).

    ``false_match_rate``: the chance (0..1) that at least one of ``gallery_size``
    people who are not this person scores this well (``1 − (1 − pair_rate)ⁿ``);
    ``band``: ``strong`` (≤ 1 %), ``possible`` (≤ 10 %) or ``weak``; ``label`` and
    ``summary``: the same in the reader's language; ``calibration``: where the
    distributions were measured, ``warning``: the calibration's known limits (the
    shipped LFW default understates false matches on East Asian faces).
    """

    band: ConfidenceBand
    label: str
    summary: str
    false_match_rate: float
    pair_rate: float
    gallery_size: int
    model: str
    calibration: str
    warning: str = ""
    #: Quality of the two faces that gave the distance (``case``, ``notice``:
    #: ``width_px``, ``sharpness``, ``yaw``, ``retake``; rescue.matching.quality).
    face_quality: dict[str, Any] = {}


class CandidateOut(msgspec.Struct):
    """A (case, notice) pair that may be the same person.

    ``best_distance`` is the smallest Euclidean distance between any face of
    the case's photos and any face of the notice's photos (dlib 128-d
    encodings; 0 = identical, the default threshold is 0.6). The photo ids say
    which two photos gave it, for side-by-side comparison. ``score`` (0..1,
    higher first) and ``flags`` follow docs/scoring.md; ``re_proposed`` counts
    how often the pair came back after a rejection. ``case_id`` is null for a
    police lead about a person not registered as a case (``person_description``).
    """

    id: int
    case_id: int | None
    notice_id: int
    status: str
    score: float
    flags: list[str]
    re_proposed: int
    evidence_kinds: list[str]
    best_distance: float | None
    threshold: float
    case_photo_id: int | None
    notice_photo_id: int | None
    explanation: str
    created_at: datetime
    updated_at: datetime
    person_description: str = ""
    version: int = 0
    #: None: no face evidence with a gallery size, or no calibration for its model.
    confidence: ConfidenceOut | None = None
    #: When retention deleted photos or face encodings of either side (then
    #: ``case_photo_id``/``notice_photo_id`` may be null); None while all are kept.
    photos_deleted_at: datetime | None = None
    #: The evidence as it stood then (rescue.retention.evidence_summary): status,
    #: best_distance, score, band, model, threshold, case_photo_id,
    #: notice_photo_id (plain ids of deleted photos), decided_by, decided_at,
    #: first_confirmed_by. ``{}`` while nothing was deleted.
    retained_evidence: dict[str, Any] = {}


class FamilyConfirmationOut(msgspec.Struct):
    id: int
    confirmer_name: str
    relationship: str
    method: FamilyConfirmationMethod
    confirmed_at: datetime
    notes: str
    recorded_by: int
    created_at: datetime


class ReviewOut(msgspec.Struct):
    id: int
    reviewer_id: int
    decision: str
    from_status: str
    to_status: str
    reason: str
    at: datetime


class CandidateDetail(msgspec.Struct):
    """A candidate with its evidence, score breakdown, reviews and family confirmations."""

    candidate: CandidateOut
    breakdown: dict[str, Any]
    evidence: list[EvidenceOut]
    reviews: list[ReviewOut]
    family_confirmations: list[FamilyConfirmationOut]
    awaiting_second_reviewer: bool = False
    first_confirmed_by: int | None = None


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    """A reviewer's decision. ``reason`` is required for every decision.

    ``start_review``: proposed → under_review. ``confirm`` / ``reject``: from
    proposed or under_review. ``expected_version`` (optional): refuse with 409
    if someone decided meanwhile.
    """

    decision: Literal["start_review", "confirm", "reject"]
    reason: Reason
    expected_version: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)] | None = None


class FamilyConfirmationIn(msgspec.Struct, forbid_unknown_fields=True):
    """亲属确认: who confirmed, their relationship, how, and when (defaults to now)."""

    confirmer_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    relationship: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    method: FamilyConfirmationMethod
    confirmed_at: AwareDatetime | None = None
    notes: Annotated[str, msgspec.Meta(max_length=5000)] = ""


class RematchRunOut(msgspec.Struct):
    """Progress of a re-matching run: ``done`` of ``total`` processed photos; of a
    re-encoding run (``kind="reencode"``): ``done`` of ``total`` photos re-encoded
    with ``model`` and re-matched."""

    id: int
    status: str
    total: int
    done: int
    candidates_touched: int
    threshold: float
    model: str
    requested_by: int | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    kind: str = "rematch"


class FilterChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    """Relax or restore a matching filter for one case or notice; ``reason`` required
    (e.g. "sex recorded wrongly at intake", "sex uncertain")."""

    reason: Reason


class FilterRelaxationOut(msgspec.Struct):
    """One relaxation of a filter: who, when, why; restored or still in force."""

    id: int
    filter: str
    reason: str
    relaxed_by: int | None
    relaxed_at: datetime
    restored_by: int | None
    restored_at: datetime | None
    restore_reason: str
    rematched_at: datetime | None


class MatchFilterOut(msgspec.Struct):
    """One filter for a case or notice: ``removed`` pairs it removes now (their other
    side's ids in ``removed_ids``), whether a reviewer relaxed it here, and the history."""

    filter: str
    label: str
    removed: int
    removed_ids: list[int]
    relaxed: bool
    relaxed_globally: bool
    history: list[FilterRelaxationOut]
