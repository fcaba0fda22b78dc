"""Review of candidates: reviewer decisions and family confirmations.

States (docs/scoring.md, "Review")::

    proposed ──start_review──▶ under_review ──confirm──▶ confirmed
        │                          │
        └──────confirm/reject──────┴──reject──▶ rejected (reason required)
    proposed/under_review ──▶ superseded   (another candidate of the same case
                                            or notice was confirmed)

A decision is a conditional update on (status, version): of two concurrent
decisions on one candidate the first wins and the second gets 409 (no lost
update). Confirming needs at least one family confirmation (亲属确认) and, with
``REQUIRE_SECOND_REVIEWER``, confirmations by two different reviewers. It moves
the case to ``identified`` (rescue.cases.flows.transition, by the reviewer), the
notice to ``found``, supersedes the other open candidates of the case and of the
notice, and writes ``candidate_confirmed`` on the case timeline and the notice
log — all in one transaction.
"""

from __future__ import annotations

from typing import Any

from rescue import clock
from rescue.cases.events import record_event
from rescue.cases.flows import transition
from rescue.cases.tables import CaseStatus
from rescue.errors import Conflict, InvalidInput, PermissionDenied
from rescue.i18n import _, label
from rescue.matching.ledger import get_candidate, require_candidate
from rescue.matching.schemas import CandidateDetail, DecisionIn, FamilyConfirmationIn
from rescue.matching.tables import (
    OPEN_CANDIDATE_STATUSES,
    Candidate,
    CandidateReview,
    CandidateStatus,
    FamilyConfirmation,
)
from rescue.notices.events import record_notice_event
from rescue.notices.tables import Notice, NoticeStatus
from rescue.photos.tables import Photo, PhotoStatus
from rescue.settings import Settings
from rescue.users.services import Principal
from rescue.users.tables import Role

__all__ = ["CANDIDATE_MOVES", "add_family_confirmation", "candidate_moves", "decide"]

_OPEN = {s.value for s in OPEN_CANDIDATE_STATUSES}

#: The one table of what a reviewer may do to a candidate in each status (the
#: state diagram above; docs/scoring.md "Review"): :func:`decide` and
#: :func:`add_family_confirmation` refuse anything else with 409, and the
#: comparison page offers only these moves. Family confirmations are still
#: recorded on a confirmed candidate (a video call, then the visit).
CANDIDATE_MOVES: dict[CandidateStatus, tuple[str, ...]] = {
    CandidateStatus.proposed: ("start_review", "confirm", "reject", "family_confirmation"),
    CandidateStatus.under_review: ("confirm", "reject", "family_confirmation"),
    CandidateStatus.confirmed: ("family_confirmation",),
    CandidateStatus.rejected: (),
    CandidateStatus.superseded: (),
}


def candidate_moves(status: str) -> tuple[str, ...]:
    """The moves :data:`CANDIDATE_MOVES` allows a candidate of ``status`` (none if unknown)."""
    try:
        return CANDIDATE_MOVES[CandidateStatus(status)]
    except ValueError:
        return ()


def _stale(candidate_id: int) -> Conflict:
    return Conflict(
        _(
            "candidate {candidate_id} was decided or changed meanwhile; reload it and retry",
            candidate_id=candidate_id,
        ),
        reason="concurrent_decision",
    )


async def _claim(row: dict[str, Any], values: dict[Any, Any]) -> None:
    """Conditional update: applies only if status and version are still those read."""
    updated = (
        await Candidate.update(
            {
                **values,
                Candidate.version: row["version"] + 1,
                Candidate.updated_at: clock.now(),
            }
        )
        .where(
            (Candidate.id == row["id"])
            & (Candidate.status == row["status"])
            & (Candidate.version == row["version"])
        )
        .returning(Candidate.id)
    )
    if not updated:
        raise _stale(row["id"])


async def _review(
    row: dict[str, Any], *, by: Principal, decision: str, to: str, reason: str
) -> None:
    await CandidateReview.insert(
        CandidateReview(
            candidate=row["id"],
            reviewer_id=by.user_id,
            decision=decision,
            from_status=row["status"],
            to_status=to,
            reason=reason,
        )
    )


async def _seen_photo_ids(row: dict[str, Any]) -> list[int]:
    """Processed photos of both sides (the evidence a rejection was based on)."""
    owner = Photo.notice == row["notice"]
    if row["case"] is not None:
        owner = owner | (Photo.case == row["case"])
    rows = await Photo.select(Photo.id).where(owner & (Photo.status == PhotoStatus.processed.value))
    return sorted(int(r["id"]) for r in rows)


async def decide(
    *,
    candidate_id: int,
    data: DecisionIn,
    by: Principal,
    settings: Settings,
) -> CandidateDetail:
    """Record a reviewer's decision on a candidate (see the module docstring).

    Returns:
        The candidate's detail after the decision (``awaiting_second_reviewer``
        when a first confirmation waits for a second reviewer).

    Raises:
        NotFound: no such candidate.
        PermissionDenied: the caller is not a reviewer.
        InvalidInput: blank reason.
        Conflict (409): not open for this decision; decided meanwhile
            (``reason: concurrent_decision``) or ``expected_version`` stale; no
            family confirmation yet; the same reviewer confirming twice when a
            second reviewer is required; a lead without a case; the case cannot
            become identified or the notice is no longer open.
    """
    if by.role != Role.reviewer:
        raise PermissionDenied(
            _("only reviewers decide candidates"), accepted=[Role.reviewer.value]
        )
    reason = data.reason.strip()
    if not reason:
        raise InvalidInput(_("a reason is required"), accepted=_("a non-blank reason"))
    row = await require_candidate(candidate_id=candidate_id)
    if data.expected_version is not None and data.expected_version != row["version"]:
        raise _stale(candidate_id)
    status = row["status"]
    if data.decision == "start_review":
        if "start_review" not in candidate_moves(status):
            raise Conflict(
                _(
                    "candidate {candidate_id} is {status}; only a proposed candidate can go "
                    "under review",
                    candidate_id=candidate_id,
                    status=label(CandidateStatus(status)),
                ),
                current=status,
            )
        async with Candidate._meta.db.transaction():
            await _claim(row, {Candidate.status: CandidateStatus.under_review.value})
            await _review(
                row, by=by, decision="start_review", to=CandidateStatus.under_review, reason=reason
            )
    elif data.decision not in candidate_moves(status):
        raise Conflict(
            _(
                "candidate {candidate_id} is {status}; it can no longer be decided",
                candidate_id=candidate_id,
                status=label(CandidateStatus(status)),
            ),
            current=status,
            accepted=sorted(_OPEN),
        )
    elif data.decision == "reject":
        await _reject(row, by=by, reason=reason)
    else:
        await _confirm(row, by=by, reason=reason, settings=settings)
    return await get_candidate(candidate_id=candidate_id, settings=settings)


async def _lock_for_decision(row: dict[str, Any], *, notice: bool) -> None:
    """Lock order of every decision (rescue.db.lock_rows): the case row first, then
    the notice, then the candidates that may change, by id. Two reviewers deciding
    candidates of one case thus run one after the other; the second finds its
    candidate superseded or changed and gets 409, never a deadlock."""
    from rescue.cases.tables import Case
    from rescue.db import lock_rows

    await lock_rows(Case, [row["case"]])
    if notice:
        await lock_rows(Notice, [row["notice"]])
    owner = Candidate.notice == row["notice"]
    if row["case"] is not None:
        owner = owner | (Candidate.case == row["case"])
    others = await Candidate.select(Candidate.id).where(
        owner & Candidate.status.is_in(sorted(_OPEN))
    )
    await lock_rows(Candidate, [row["id"], *(r["id"] for r in others)])


async def _reject(row: dict[str, Any], *, by: Principal, reason: str) -> None:
    now = clock.now()
    async with Candidate._meta.db.transaction():
        await _lock_for_decision(row, notice=False)
        await _claim(
            row,
            {
                Candidate.status: CandidateStatus.rejected.value,
                Candidate.decided_by: by.user_id,
                Candidate.decided_at: now,
                Candidate.decision_reason: reason,
                Candidate.first_confirmed_by: None,
                Candidate.rejected_photo_ids: await _seen_photo_ids(row),
            },
        )
        await _review(row, by=by, decision="reject", to=CandidateStatus.rejected, reason=reason)
        data = {"candidate_id": row["id"], "notice_id": row["notice"]}
        if row["case"] is not None:
            await record_event(
                case_id=row["case"],
                kind="candidate_rejected",
                actor_id=by.user_id,
                actor_role=by.role.value,
                reason=reason,
                data=data,
            )


async def _confirm(row: dict[str, Any], *, by: Principal, reason: str, settings: Settings) -> None:
    candidate_id = row["id"]
    if row["case"] is None:
        raise Conflict(
            _(
                "candidate {candidate_id} is a lead without a case; register the person as a "
                "case and submit the evidence for that case first",
                candidate_id=candidate_id,
            ),
            reason="no_case",
        )
    if not await FamilyConfirmation.exists().where(FamilyConfirmation.candidate == candidate_id):
        raise Conflict(
            _(
                "candidate {candidate_id} has no family confirmation; record at least one "
                "before confirming",
                candidate_id=candidate_id,
            ),
            reason="family_confirmation_required",
        )
    now = clock.now()
    if settings.review.require_second_reviewer:
        first = row["first_confirmed_by"]
        if first is None:
            async with Candidate._meta.db.transaction():
                await _claim(
                    row,
                    {
                        Candidate.status: CandidateStatus.under_review.value,
                        Candidate.first_confirmed_by: by.user_id,
                    },
                )
                await _review(
                    row, by=by, decision="confirm", to=CandidateStatus.under_review, reason=reason
                )
            return
        if first == by.user_id:
            raise Conflict(
                _(
                    "candidate {candidate_id} needs a second, different reviewer to confirm "
                    "(REQUIRE_SECOND_REVIEWER)",
                    candidate_id=candidate_id,
                ),
                reason="second_reviewer_required",
                first_confirmed_by=first,
            )
    data = {
        "candidate_id": candidate_id,
        "notice_id": row["notice"],
        "case_id": row["case"],
        "first_confirmed_by": row["first_confirmed_by"],
    }
    async with Candidate._meta.db.transaction():
        await _lock_for_decision(row, notice=True)
        await _claim(
            row,
            {
                Candidate.status: CandidateStatus.confirmed.value,
                Candidate.decided_by: by.user_id,
                Candidate.decided_at: now,
                Candidate.decision_reason: reason,
            },
        )
        await _review(row, by=by, decision="confirm", to=CandidateStatus.confirmed, reason=reason)
        await transition(
            case_id=row["case"], to=CaseStatus.identified, by=by, reason=reason, data=data
        )
        found = (
            await Notice.update({Notice.status: NoticeStatus.found.value, Notice.updated_at: now})
            .where((Notice.id == row["notice"]) & (Notice.status == NoticeStatus.open.value))
            .returning(Notice.id)
        )
        if not found:
            current = await Notice.select(Notice.status).where(Notice.id == row["notice"]).first()
            raise Conflict(
                _(
                    "notice {notice_id} is {status}, not open; it cannot be matched to this case",
                    notice_id=row["notice"],
                    status=label(NoticeStatus(current["status"])) if current else _("gone"),
                ),
                reason="notice_not_open",
            )
        superseded = (
            await Candidate.update(
                {
                    Candidate.status: CandidateStatus.superseded.value,
                    Candidate.version: Candidate.version + 1,
                    Candidate.updated_at: now,
                }
            )
            .where(
                ((Candidate.case == row["case"]) | (Candidate.notice == row["notice"]))
                & (Candidate.id != candidate_id)
                & Candidate.status.is_in(sorted(_OPEN))
            )
            .returning(Candidate.id)
        )
        data["superseded"] = sorted(int(r["id"]) for r in superseded)
        await record_event(
            case_id=row["case"],
            kind="candidate_confirmed",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=reason,
            data=data,
        )
        await record_notice_event(
            notice_id=row["notice"],
            kind="candidate_confirmed",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=reason,
            from_status=NoticeStatus.open.value,
            to_status=NoticeStatus.found.value,
            data=data,
        )


async def add_family_confirmation(
    *, candidate_id: int, data: FamilyConfirmationIn, by: Principal, settings: Settings
) -> CandidateDetail:
    """Record a family confirmation (亲属确认) on an open or confirmed candidate.

    Several may be recorded (e.g. a video call, then the visit). Writes a
    ``family_confirmation_recorded`` event on the case timeline.

    Raises:
        NotFound: no such candidate.
        Conflict: the candidate is rejected or superseded.
    """
    row = await require_candidate(candidate_id=candidate_id)
    if "family_confirmation" not in candidate_moves(row["status"]):
        raise Conflict(
            _(
                "candidate {candidate_id} is {status}; family confirmations are recorded "
                "on proposed, under_review or confirmed candidates",
                candidate_id=candidate_id,
                status=label(CandidateStatus(row["status"])),
            ),
            current=row["status"],
        )
    confirmed_at = data.confirmed_at or clock.now()
    if confirmed_at.tzinfo is None:
        raise InvalidInput(
            _("confirmed_at needs a time zone"), accepted=_("ISO 8601 with offset, e.g. +08:00")
        )
    if confirmed_at > clock.now():
        raise InvalidInput(_("confirmed_at is in the future"), accepted=_("a time up to now"))
    async with Candidate._meta.db.transaction():
        rows = await FamilyConfirmation.insert(
            FamilyConfirmation(
                candidate=candidate_id,
                confirmer_name=data.confirmer_name.strip(),
                relationship=data.relationship.strip(),
                method=data.method.value,
                confirmed_at=confirmed_at,
                notes=data.notes,
                recorded_by=by.user_id,
            )
        ).returning(FamilyConfirmation.id)
        if row["case"] is not None:
            await record_event(
                case_id=row["case"],
                kind="family_confirmation_recorded",
                actor_id=by.user_id,
                actor_role=by.role.value,
                reason=f"{data.relationship} by {data.method.value}",
                data={
                    "candidate_id": candidate_id,
                    "confirmation_id": int(rows[0]["id"]),
                    "relationship": data.relationship.strip(),
                    "method": data.method.value,
                },
            )
    return await get_candidate(candidate_id=candidate_id, settings=settings)
