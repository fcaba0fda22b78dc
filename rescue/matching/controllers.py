"""HTTP routes for match candidates: lists, the reviewer queue, police-submitted
candidates, review, family confirmation, comparison page and re-matching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody

from rescue.errors import InvalidInput, InvalidJSON, too_deep
from rescue.i18n import _
from rescue.matching import filters, ledger, reencode, rematch, review, services
from rescue.matching.compare import render_compare
from rescue.matching.schemas import (
    VALUE_TYPES,
    CandidateDetail,
    CandidateOut,
    DecisionIn,
    FamilyConfirmationIn,
    FilterChangeIn,
    MatchFilterOut,
    RematchRunOut,
)
from rescue.matching.tables import CandidateStatus, EvidenceKind
from rescue.notices.schemas import NoticeCreate
from rescue.permissions import Action, Participation, allow
from rescue.runtime import get_store
from rescue.schemas import Id, Limit, Offset, Page, PathId
from rescue.settings import get_settings


class CandidateController(Controller):
    path = "/api"
    tags = ("candidates",)

    @get(
        "/cases/{case_id:int}/candidates",
        summary="Notices that may be this person, best first",
        guards=[allow(Action.candidate_read)],
    )
    async def of_case(
        self,
        case_id: PathId,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[CandidateOut]:
        """Ordered by score (docs/scoring.md), then face distance. 404 if the case does
        not exist."""
        return await services.list_candidates(
            settings=get_settings(), case_id=case_id, limit=limit, offset=offset
        )

    @get(
        "/notices/{notice_id:int}/candidates",
        summary="People in care who may be this notice's person",
        guards=[allow(Action.candidate_read)],
    )
    async def of_notice(
        self,
        notice_id: PathId,
        request: Request[Any, Any, Any],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[CandidateOut]:
        """Ordered by score (docs/scoring.md), then face distance; only people of the
        stations the caller sees. 404 if the notice does not exist."""
        return await services.list_candidates(
            settings=get_settings(),
            notice_id=notice_id,
            limit=limit,
            offset=offset,
            stations=request.user.visible_stations(),
        )


@dataclass
class CandidateSubmission:
    """Multipart form of ``POST /api/candidates``.

    - ``kind``: police_dna, police_face (police liaison only), announcement_clue, staff.
    - ``values``: a JSON object; police_dna ``{"likelihood_ratio": 2.1e7, "lab": …,
      "report_number": …, "relationship_tested": …}``; police_face ``{"score": 0.93,
      "system": …, "report_number": …}``; announcement_clue/staff ``{"summary": …}``.
    - the person: ``case_id``, or ``person_description`` when the person is not
      registered in the service (a lead without a case; it can be reviewed and
      rejected, never confirmed).
    - the notice: ``notice_id``, or ``notice``, a JSON object with the notice's
      details (as for ``POST /api/notices``); the notice is created.
    - ``attachment`` (optional): the report, PDF, JPEG, PNG or WebP.
    """

    kind: str
    values: str
    case_id: Id | None = None
    person_description: str = ""
    notice_id: Id | None = None
    notice: str | None = None
    note: str = ""
    attachment: UploadFile | None = None


def _json_object(name: str, raw: str) -> Any:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidJSON(
            _("{name} is not valid JSON: {reason}", name=name, reason=str(exc)),
            accepted=_("a JSON object"),
        ) from exc
    except RecursionError as exc:
        raise too_deep(name) from exc
    if not isinstance(value, dict):
        raise InvalidInput(
            _("{name} must be a JSON object", name=name), accepted=_("a JSON object")
        )
    return value


class CandidateLedgerController(Controller):
    path = "/api/candidates"
    tags = ("candidates",)

    @get(
        "/",
        summary="Candidates, best first (reviewer queue)",
        guards=[allow(Action.candidate_read)],
    )
    async def queue(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[CandidateStatus | None] = None,
    ) -> Page[CandidateOut]:
        """``?status=proposed`` is the reviewer queue. Ordered by score descending
        (docs/scoring.md), then smallest face distance. Flagged candidates (sex
        mismatch, impossible age…) are listed too, with their ``flags``. Only
        candidates whose case belongs to a station the caller sees, and police
        leads not yet tied to a case."""
        return await ledger.list_queue(
            settings=get_settings(),
            status=status,
            limit=limit,
            offset=offset,
            stations=request.user.visible_stations(),
        )

    @post(
        "/",
        summary="Submit a candidate with evidence (police liaison, staff)",
        guards=[allow(Action.candidate_submit)],
    )
    async def submit(
        self, data: MultipartBody[CandidateSubmission], request: Request[Any, Any, Any]
    ) -> Response[CandidateDetail]:
        """Add a lead: 201 with the new candidate, or 200 with the pair's existing
        candidate and one more evidence record. A rejected pair comes back proposed
        (``re_proposed`` + 1).

        Errors: 400 bad kind/values/person/notice; 403 a police kind from someone
        other than police liaison; 404 unknown case or notice; 413/415 attachment.
        """
        try:
            kind = EvidenceKind(data.kind)
        except ValueError as exc:
            raise InvalidInput(
                _("unknown evidence kind {kind}", kind=data.kind),
                accepted=[k.value for k in VALUE_TYPES],
            ) from exc
        notice = None
        if data.notice:
            try:
                notice = msgspec.convert(_json_object("notice", data.notice), type=NoticeCreate)
            except msgspec.ValidationError as exc:
                raise InvalidInput(
                    _("notice: {problem}", problem=exc), accepted=msgspec.json.schema(NoticeCreate)
                ) from exc
        attachment = await data.attachment.read() if data.attachment is not None else None
        settings = get_settings()
        detail, created = await ledger.submit_candidate(
            kind=kind,
            values=_json_object("values", data.values),
            case_id=data.case_id,
            person_description=data.person_description,
            notice_id=data.notice_id,
            notice=notice,
            note=data.note,
            attachment=attachment,
            by=request.user,
            store=get_store(),
            limits=settings.upload,
            settings=settings,
        )
        return Response(detail, status_code=201 if created else 200)

    @get(
        "/{candidate_id:int}",
        summary="One candidate: evidence, score breakdown, reviews, family confirmations",
        guards=[allow(Action.candidate_read, (Participation.notice_station,))],
    )
    async def detail(self, candidate_id: PathId) -> CandidateDetail:
        """Never includes face encodings; attachment URLs expire within 5 minutes.
        404 if unknown."""
        return await ledger.get_candidate(
            candidate_id=candidate_id, settings=get_settings(), store=get_store()
        )

    @get(
        "/{candidate_id:int}/compare",
        summary="Side-by-side comparison page (HTML)",
        media_type=MediaType.HTML,
        guards=[allow(Action.candidate_read, (Participation.notice_station,))],
    )
    async def compare(self, candidate_id: PathId) -> str:
        """The two best photos with face boxes (presigned, ≤ 5 minutes) and the score
        breakdown. 404 if unknown."""
        return await render_compare(candidate_id=candidate_id, store=get_store())

    @post(
        "/{candidate_id:int}/decision",
        status_code=200,
        summary="Record a reviewer decision (start_review, confirm, reject)",
        guards=[allow(Action.candidate_decide)],
    )
    async def decide(
        self,
        candidate_id: PathId,
        data: JSONBody[DecisionIn],
        request: Request[Any, Any, Any],
    ) -> CandidateDetail:
        """``reason`` is required. Confirming needs a family confirmation (else 409
        ``family_confirmation_required``) and, with REQUIRE_SECOND_REVIEWER, a second
        different reviewer; it moves the case to identified and the notice to found.
        A concurrent or stale decision gets 409 ``concurrent_decision``."""
        return await review.decide(
            candidate_id=candidate_id, data=data, by=request.user, settings=get_settings()
        )

    @post(
        "/{candidate_id:int}/family-confirmations",
        summary="Record a family confirmation (亲属确认)",
        guards=[allow(Action.family_confirmation_record)],
    )
    async def confirm_family(
        self,
        candidate_id: PathId,
        data: JSONBody[FamilyConfirmationIn],
        request: Request[Any, Any, Any],
    ) -> CandidateDetail:
        """Who confirmed, relationship, method (video_call, visit, documents, dna),
        when. 201 with the candidate; 409 if it is rejected or superseded."""
        return await review.add_family_confirmation(
            candidate_id=candidate_id, data=data, by=request.user, settings=get_settings()
        )


async def _enqueue_rematch(run_id: int) -> None:
    from workers.actors import rematch as actor

    await anyio.to_thread.run_sync(actor.send, run_id)


class RematchController(Controller):
    path = "/api/admin/rematch"
    tags = ("admin",)

    @post(
        "/",
        status_code=202,
        summary="Re-match every processed photo (after a threshold or model change)",
        guards=[allow(Action.rematch)],
    )
    async def start(self, request: Request[Any, Any, Any]) -> RematchRunOut:
        """Queue a run (202); follow it at ``GET /api/admin/rematch/{id}``."""
        return await rematch.start_rematch(
            by=request.user, settings=get_settings(), enqueue=_enqueue_rematch
        )

    @get("/{run_id:int}", summary="A re-matching run's progress", guards=[allow(Action.rematch)])
    async def progress(self, run_id: PathId) -> RematchRunOut:
        """``status`` queued, running, done or failed; ``done`` of ``total`` photos. 404
        if unknown."""
        return await rematch.get_rematch(run_id=run_id)

    @get("/", summary="The latest re-matching runs, newest first", guards=[allow(Action.rematch)])
    async def index(self) -> list[RematchRunOut]:
        """The latest 20 runs with their status and progress."""
        return await rematch.list_rematches(limit=20)

    @post(
        "/{run_id:int}/cancel",
        status_code=200,
        summary="Cancel a queued or running re-matching run",
        guards=[allow(Action.rematch)],
    )
    async def cancel(self, run_id: PathId) -> RematchRunOut:
        """The run stops within 10 photos and keeps what it matched so far (matching
        only adds evidence). 404 if unknown; 409 if it is already done, failed or
        cancelled."""
        return await rematch.cancel_rematch(run_id=run_id)


async def enqueue_owner_rematch(side: str, owner_id: int) -> None:
    """Queue ``workers.actors.rematch_owner`` for one case or notice."""
    from workers.actors import rematch_owner as actor

    await anyio.to_thread.run_sync(actor.send, side, owner_id)


class MatchFilterController(Controller):
    """Matching filters of one case or notice: what they remove, relax, restore
    (rescue.matching.filters). Relax/restore: reviewers; audited; on the timeline."""

    path = "/api"
    tags = ("candidates",)

    @get(
        "/cases/{case_id:int}/match-filters",
        summary="Pairs each matching filter removes for this case, and its relaxations",
        guards=[allow(Action.candidate_read)],
    )
    async def of_case(self, case_id: PathId) -> list[MatchFilterOut]:
        """One entry per filter (``sex``): ``removed`` pairs now, ``relaxed``, history. 404."""
        return await filters.filter_state(side="case", owner_id=case_id, settings=get_settings())

    @get(
        "/notices/{notice_id:int}/match-filters",
        summary="Pairs each matching filter removes for this notice, and its relaxations",
        guards=[allow(Action.candidate_read)],
    )
    async def of_notice(self, notice_id: PathId) -> list[MatchFilterOut]:
        """As for a case. 404."""
        return await filters.filter_state(
            side="notice", owner_id=notice_id, settings=get_settings()
        )

    @post(
        "/cases/{case_id:int}/match-filters/{name:str}/{action:str}",
        status_code=200,
        summary="Relax or restore a matching filter for this case (reason required)",
        guards=[allow(Action.match_filter_relax)],
    )
    async def change_case(
        self,
        case_id: PathId,
        name: FromPath[str],
        action: FromPath[str],
        data: JSONBody[FilterChangeIn],
        request: Request[Any, Any, Any],
    ) -> list[MatchFilterOut]:
        """``action`` ``relax`` or ``restore``; the case is then re-matched by the worker
        (``rematched_at`` set when done). 400 unknown filter/action; 404; 409 already
        relaxed / not relaxed."""
        return await _change("case", case_id, name, action, data, request)

    @post(
        "/notices/{notice_id:int}/match-filters/{name:str}/{action:str}",
        status_code=200,
        summary="Relax or restore a matching filter for this notice (reason required)",
        guards=[allow(Action.match_filter_relax)],
    )
    async def change_notice(
        self,
        notice_id: PathId,
        name: FromPath[str],
        action: FromPath[str],
        data: JSONBody[FilterChangeIn],
        request: Request[Any, Any, Any],
    ) -> list[MatchFilterOut]:
        """As for a case."""
        return await _change("notice", notice_id, name, action, data, request)


async def _change(
    side: str,
    owner_id: int,
    name: str,
    action: str,
    data: FilterChangeIn,
    request: Request[Any, Any, Any],
) -> list[MatchFilterOut]:
    if action not in ("relax", "restore"):
        raise InvalidInput(
            _("unknown filter action {action}", action=action), accepted=["relax", "restore"]
        )
    return await filters.change_filter(
        side=side,
        owner_id=owner_id,
        name=name,
        relax=action == "relax",
        data=data,
        by=request.user,
        settings=get_settings(),
        enqueue=enqueue_owner_rematch,
    )


async def _enqueue_reencode(run_id: int) -> None:
    from workers.actors import reencode as actor

    await anyio.to_thread.run_sync(actor.send, run_id)


class ReencodeController(Controller):
    """Re-encoding after a face model change (rescue.matching.reencode)."""

    path = "/api/admin/reencode"
    tags = ("admin",)

    @post(
        "/",
        status_code=202,
        summary="Re-encode photos whose faces another model encoded, then re-match them",
        guards=[allow(Action.rematch)],
    )
    async def start(self, request: Request[Any, Any, Any]) -> RematchRunOut:
        """Queue a run (202) over the photos with faces of another model than the one in
        use; follow it at ``GET /api/admin/reencode/{id}``; cancel it at
        ``POST /api/admin/rematch/{id}/cancel``."""
        return await reencode.start_reencode(
            by=request.user, settings=get_settings(), enqueue=_enqueue_reencode
        )

    @get("/{run_id:int}", summary="A re-encoding run's progress", guards=[allow(Action.rematch)])
    async def progress(self, run_id: PathId) -> RematchRunOut:
        """``status``; ``done`` of ``total`` photos; ``error`` lists photos whose original
        could not be read. 404 if unknown."""
        return await rematch.get_rematch(run_id=run_id)
