"""Review pages: the reviewer queue and the comparison page of one candidate.

The comparison page shows the two photos side by side with their face boxes
(served by the app, rescue.photos.pages), every evidence item, the score put
into words (:func:`explain`, from the breakdown of rescue.matching.scoring), the
family confirmations, and the reviewer's forms: record a family confirmation,
confirm, reject with a reason (rescue.matching.review: same rules as the API).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from rescue.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from rescue.i18n import N_, _, label
from rescue.matching.filters import change_filter, filter_state
from rescue.matching.ledger import get_candidate, list_queue
from rescue.matching.review import add_family_confirmation, candidate_moves, decide
from rescue.matching.schemas import DecisionIn, FamilyConfirmationIn, FilterChangeIn
from rescue.matching.tables import CandidateStatus, FamilyConfirmationMethod
from rescue.permissions import Action, Participation, allow
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.users.tables import Role
from rescue.web.files import private_file
from rescue.web.forms import parse, read_form
from rescue.web.refs import load_refs

__all__ = ["MatchFilterPages", "ReviewPages", "evidence_rows", "explain", "score_components"]

_FLAGS = {
    "sex_mismatch": N_("The recorded sexes differ (score halved)."),
    "age_stretch": N_("The ages are up to 5 years apart (score × 0.8)."),
    "age_unlikely": N_("The ages are 5 to 10 years apart (score × 0.6)."),
    "age_impossible": N_("The ages are more than 10 years apart (score × 0.3)."),
    "found_before_missing": N_(
        "The person was found before the date they went missing (score halved)."
    ),
}


#: Label of every evidence value (rescue.matching.schemas.VALUE_TYPES and the
#: service's own face evidence, rescue.matching.ledger), shown on the comparison page.
EVIDENCE_VALUE_LABELS = {
    "distance": N_("Face distance"),
    "threshold": N_("Matching threshold"),
    "model": N_("Face model"),
    "case_photo_id": N_("Photo of the person in care (number)"),
    "notice_photo_id": N_("Photo of the notice (number)"),
    "gallery_size": N_("People searched"),
    "face_quality": N_("Face quality"),
    "score": N_("Similarity reported by the police system (0 to 1)"),
    "system": N_("Comparison system"),
    "report_number": N_("Report number"),
    "likelihood_ratio": N_("DNA likelihood ratio"),
    "relationship_tested": N_("Relationship tested"),
    "lab": N_("Laboratory"),
    "summary": N_("Summary of the lead"),
    "source_contact": N_("Source contact"),
    # face_quality (rescue.matching.quality.FaceQuality of each side)
    "case": N_("Person in care"),
    "notice": N_("Missing-person notice"),
    "width_px": N_("Face width (pixels)"),
    "sharpness": N_("Sharpness"),
    "yaw": N_("Head turn (yaw)"),
    "retake": N_("Retake because"),
}
#: Why a face is too poor to match (rescue.matching.quality.measure reasons).
_RETAKE_REASONS = {
    "too_small": N_("the face is too small"),
    "blurred": N_("the face is blurred"),
    "turned_away": N_("the face is turned away"),
}

#: What each plausibility check of rescue.matching.scoring found, in words.
_RESULTS = {
    "unknown": N_("not recorded on both sides, not compared"),
    "compatible": N_("the same"),
    "incompatible": N_("different"),
    "plausible": N_("plausible"),
    "stretch": N_("up to 5 years apart"),
    "unlikely": N_("5 to 10 years apart"),
    "impossible": N_("more than 10 years apart"),
    "consistent": N_("found after going missing"),
    "found_before_missing": N_("found before going missing"),
    "same": N_("the same place"),
    "different": N_("different places"),
    "same_county": N_("the same county"),
    "same_prefecture": N_("the same prefecture"),
    "same_province": N_("the same province"),
    "different_province": N_("different provinces"),
}
_COMPONENTS = {
    "sex": N_("Sex"),
    "age": N_("Age"),
    "dates": N_("Dates"),
    "place": N_("Place"),
}


def _value_title(key: str) -> str:
    title = EVIDENCE_VALUE_LABELS.get(key)
    return _(title) if title else _("Other detail ({key})", key=key)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return (
            _("none")
            if not value
            else "、".join(
                _(_RETAKE_REASONS[v]) if v in _RETAKE_REASONS else _value_text(v) for v in value
            )
        )
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "; ".join(
            _("{label}: {value}", label=_value_title(k), value=_value_text(v))
            for k, v in value.items()
        )
    return str(value)


#: Evidence values for whoever checks the method (model, threshold, photo numbers,
#: gallery size, face quality measures): folded under 技术细节 on the page, so a
#: reviewer reads the distance and the sources first.
TECHNICAL_VALUES = frozenset(
    {"model", "threshold", "case_photo_id", "notice_photo_id", "gallery_size", "face_quality"}
)


def evidence_rows(values: dict[str, Any], technical: bool = False) -> list[tuple[str, str]]:
    """(label in the page's language, value) of an evidence item's values: every
    key through the catalogue (EVIDENCE_VALUE_LABELS), nested values too; the
    :data:`TECHNICAL_VALUES` only (``technical``) or all the others."""
    return [
        (_value_title(key), _value_text(value))
        for key, value in values.items()
        if (key in TECHNICAL_VALUES) == technical
    ]


async def side_facts(case_id: int | None, notice_id: int) -> tuple[list[Any], list[Any]]:
    """What the reviewer weighs beside the faces, for each side: ([(label, value)]
    of the case: reference, name, sex, age, where and when found, station; of the
    notice: name, sex, birth or age when missing, since when, last seen)."""
    from rescue import clock
    from rescue.cases.services import get_case
    from rescue.cases.tables import Sex
    from rescue.notices.services import get_notice

    def age_range(low: int | None, high: int | None, estimate: int | None) -> str:
        if low is not None and high is not None:
            return _("{low} to {high} years", low=low, high=high)
        return _("about {age} years", age=estimate) if estimate is not None else "—"

    case_facts: list[tuple[str, str]] = []
    if case_id is not None:
        case = await get_case(case_id=case_id)
        case_facts = [
            (_("Reference"), case.reference),
            (_("Name"), case.display_name),
            (_("Sex"), label(Sex(case.sex))),
            (_("Age"), age_range(case.age_low, case.age_high, case.estimated_age)),
            (_("Found at"), case.found_place or "—"),
            (_("Admitted"), clock.local_date(case.admitted_at).isoformat()),
            (_("Station"), case.station or "—"),
        ]
    notice = await get_notice(notice_id=notice_id)
    notice_facts = [
        (_("Name"), notice.name or "—"),
        (_("Sex"), label(Sex(notice.sex))),
        (
            _("Born or age when missing"),
            notice.date_of_birth.isoformat()
            if notice.date_of_birth
            else age_range(None, None, notice.age_when_missing),
        ),
        (_("Missing since"), notice.missing_since.isoformat() if notice.missing_since else "—"),
        (_("Last seen"), notice.last_seen_place or "—"),
    ]
    return case_facts, notice_facts


def score_components(breakdown: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(check, what it found, factor) of the sex, age, dates and place checks, in words."""
    rows = []
    components = breakdown.get("components", {})
    for key, title in _COMPONENTS.items():
        part = components.get(key)
        if not part:
            continue
        result = str(part.get("result", "unknown"))
        found = _(_RESULTS[result]) if result in _RESULTS else result
        factor = float(part.get("factor", 1.0))
        rows.append((_(title), found, _("score × {factor}", factor=f"{factor:g}")))
    return rows


def explain(breakdown: dict[str, Any]) -> list[str]:
    """The score of a candidate in sentences of the page's language."""
    lines: list[str] = []
    components = breakdown.get("components", {})
    face = components.get("face")
    if face and face.get("distance") is not None:
        distance, threshold = float(face["distance"]), float(face.get("threshold") or 0.6)
        lines.append(
            _(
                "The two closest faces are {distance} apart; the matching threshold is "
                "{threshold}. Below the threshold means alike: the smaller, the more alike.",
                distance=f"{distance:.3f}",
                threshold=f"{threshold:.2f}",
            )
        )
        lines.append(
            _("Face evidence strength: {strength} of 1.", strength=f"{face.get('strength', 0):.2f}")
        )
    evidence = components.get("evidence", {})
    for kind, strength in (evidence.get("by_kind") or {}).items():
        if kind != "face":
            lines.append(
                _(
                    "Evidence of kind {kind}: strength {strength} of 1.",
                    kind=_label_kind(kind),
                    strength=f"{strength:.2f}",
                )
            )
    confidence = components.get("confidence") or {}
    if confidence.get("band"):
        from rescue.matching.tables import ConfidenceBand

        try:
            band = label(ConfidenceBand(confidence["band"]))
        except ValueError:
            band = str(confidence["band"])
        lines.append(
            _(
                "Confidence of the face match: {band} ({people} people were searched).",
                band=band,
                people=confidence.get("gallery_size", "?"),
            )
        )
    for flag in breakdown.get("flags", []):
        if flag in _FLAGS:
            lines.append(_(_FLAGS[flag]))
    if components.get("case", {}).get("note"):
        lines.append(_("A lead without a case: sex, age and dates were not compared."))
    lines.append(
        _(
            "Score {score} = evidence {evidence} × the plausibility of sex, age and dates.",
            score=f"{breakdown.get('score', 0):.2f}",
            evidence=f"{breakdown.get('evidence', 0):.2f}",
        )
    )
    return lines


def _label_kind(kind: str) -> str:
    from rescue.matching.tables import EvidenceKind

    try:
        return label(EvidenceKind(kind))
    except ValueError:
        return kind


async def _photo(photo_id: int | None) -> Any:
    if photo_id is None:
        return None
    from rescue.photos.services import get_photo

    return await get_photo(photo_id=photo_id)


async def _compare_page(
    candidate_id: int,
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    detail = await get_candidate(candidate_id=candidate_id, settings=get_settings())
    candidate = detail.candidate
    is_reviewer = request.user.role == Role.reviewer
    moves = candidate_moves(candidate.status) if is_reviewer else ()
    # Confirming needs a family confirmation first (rescue.matching.review.decide):
    # the button waits for one instead of answering 409.
    needs_family = "confirm" in moves and not detail.family_confirmations
    case_facts, notice_facts = await side_facts(candidate.case_id, candidate.notice_id)
    return Template(
        template_name="matching/compare.html",
        context={
            "detail": detail,
            "c": candidate,
            "case_photo": await _photo(candidate.case_photo_id),
            "notice_photo": await _photo(candidate.notice_photo_id),
            "explanation": explain(detail.breakdown),
            "components": score_components(detail.breakdown),
            "evidence_rows": evidence_rows,
            "is_reviewer": is_reviewer,
            "moves": moves,
            "decisions": [
                (d, t)
                for d, t in (
                    ("start_review", _("Start the review (take it on)")),
                    ("confirm", _("Confirm: this is the person")),
                    ("reject", _("Reject")),
                )
                if d in moves and not (d == "confirm" and needs_family)
            ],
            "needs_family": needs_family,
            "case_facts": case_facts,
            "notice_facts": notice_facts,
            "methods": [(m.value, label(m)) for m in FamilyConfirmationMethod],
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status,
    )


class ReviewPages(Controller):
    include_in_schema = False

    @get("/review", guards=[allow(Action.candidate_read)])
    async def queue(self, request: Request[Any, Any, Any], page: FromQuery[int] = 1) -> Template:
        """Candidates waiting (proposed, then under review), best first."""
        settings = get_settings()
        page = max(page, 1)
        stations = request.user.visible_stations()
        proposed = await list_queue(
            settings=settings,
            status=CandidateStatus.proposed,
            limit=50,
            offset=(page - 1) * 50,
            stations=stations,
        )
        in_review = await list_queue(
            settings=settings,
            status=CandidateStatus.under_review,
            limit=50,
            offset=0,
            stations=stations,
        )
        shown = [*proposed.items, *in_review.items]
        return Template(
            template_name="matching/queue.html",
            context={
                "proposed": proposed,
                "in_review": in_review,
                "page": page,
                "refs": await load_refs([c.case_id for c in shown], [c.notice_id for c in shown]),
            },
        )

    @get(
        "/candidates/{candidate_id:int}",
        guards=[allow(Action.candidate_read, (Participation.notice_station,))],
    )
    async def compare(self, candidate_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """Two photos side by side, evidence, score in words, confirmations, decisions."""
        return await _compare_page(candidate_id, request)

    @get(
        "/candidates/{candidate_id:int}/evidence/{evidence_id:int}/attachment",
        guards=[allow(Action.candidate_read, (Participation.notice_station,))],
    )
    async def attachment(self, candidate_id: PathId, evidence_id: PathId) -> Response[bytes]:
        """An evidence record's attachment (e.g. the police face-comparison report),
        through the app: the candidate's permission checked, the read audited (the
        route names a candidate), from any PC that reaches the service."""
        from rescue.matching.tables import CandidateEvidence
        from rescue.runtime import get_store

        row = (
            await CandidateEvidence.select(
                CandidateEvidence.attachment_key, CandidateEvidence.attachment_media_type
            )
            .where(
                (CandidateEvidence.id == evidence_id)
                & (CandidateEvidence.candidate == candidate_id)
            )
            .first()
        )
        if row is None or not row["attachment_key"]:
            raise NotFound(_("evidence {evidence_id} has no attachment", evidence_id=evidence_id))
        return private_file(
            await get_store().aget(row["attachment_key"]), row["attachment_media_type"]
        )

    @post(
        "/candidates/{candidate_id:int}/decision",
        guards=[allow(Action.candidate_decide)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def decision(self, candidate_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Confirm or reject (reason required); 409s are shown on the page."""
        values, _files = await read_form(request)
        data, errors = parse(DecisionIn, values)
        if data is None:
            return await _compare_page(
                candidate_id, request, errors={"decision": errors}, values=values, status=400
            )
        try:
            await decide(
                candidate_id=candidate_id, data=data, by=request.user, settings=get_settings()
            )
        except (Conflict, InvalidInput, PermissionDenied) as exc:
            return await _compare_page(
                candidate_id,
                request,
                errors={"decision": {"__all__": exc.detail}},
                values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/candidates/{candidate_id}", status_code=303)

    @post(
        "/candidates/{candidate_id:int}/family-confirmations",
        guards=[allow(Action.family_confirmation_record)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def family_confirmation(
        self, candidate_id: PathId, request: Request[Any, Any, Any]
    ) -> Any:
        """Record who in the family confirmed, how and when (亲属确认)."""
        values, _files = await read_form(request)
        data, errors = parse(FamilyConfirmationIn, values)
        if data is None:
            return await _compare_page(
                candidate_id, request, errors={"family": errors}, values=values, status=400
            )
        try:
            await add_family_confirmation(
                candidate_id=candidate_id, data=data, by=request.user, settings=get_settings()
            )
        except (Conflict, InvalidInput) as exc:
            return await _compare_page(
                candidate_id,
                request,
                errors={"family": {"__all__": exc.detail}},
                values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/candidates/{candidate_id}#family", status_code=303)


async def _lead_form(
    values: dict[str, str], errors: dict[str, str], user: Any, status: int = 200
) -> Template:
    """The lead form with the cases (reference and name, the caller's stations,
    still in care) and the open notices (#id and the missing person's name) to
    pick from; each list holds the newest :data:`LEAD_PICK_LIMIT`, and a reference
    not listed may still be typed."""
    from rescue.cases.services import list_cases
    from rescue.cases.tables import TERMINAL_STATUSES
    from rescue.matching.tables import EvidenceKind
    from rescue.notices.services import list_notices
    from rescue.notices.tables import NoticeStatus

    cases = await list_cases(limit=LEAD_PICK_LIMIT, offset=0, stations=user.visible_stations())
    notices = await list_notices(limit=LEAD_PICK_LIMIT, offset=0, status=NoticeStatus.open.value)
    terminal = {s.value for s in TERMINAL_STATUSES}
    return Template(
        template_name="matching/lead.html",
        context={
            "values": values,
            "errors": errors,
            "kinds": [(k.value, label(k)) for k in EvidenceKind if k != EvidenceKind.face],
            "case_choices": [
                f"{c.reference} {c.display_name}" for c in cases.items if c.status not in terminal
            ],
            "notice_choices": [f"#{n.id} {n.name}" for n in notices.items],
        },
        status_code=status,
    )


#: How many cases and notices the lead form offers to pick from (newest first).
LEAD_PICK_LIMIT = 300

_CASE_REFERENCE = re.compile(r"\s*(\d{4}-\d{4,})(?:\s.*)?", re.S)
_PLAIN_ID = re.compile(r"\s*#?\s*(\d{1,9})(?:\s.*)?", re.S)


async def resolve_case_ref(raw: str) -> tuple[int | None, str | None]:
    """A case typed or picked on a form → (its id, None) or (None, error).

    Accepts the case reference as shown everywhere (``2026-0003``, optionally
    followed by the name, as the pick list offers it) or the internal id
    (``3`` or ``#3``). Empty → (None, None)."""
    from rescue.cases.tables import Case

    raw = raw.strip()
    if not raw:
        return None, None
    reference = _CASE_REFERENCE.fullmatch(raw)
    if reference:
        row = await Case.select(Case.id).where(Case.reference == reference.group(1)).first()
        if row is None:
            return None, _("No case has the reference {reference}.", reference=reference.group(1))
        return int(row["id"]), None
    plain = _PLAIN_ID.fullmatch(raw)
    if plain:
        return int(plain.group(1)), None
    return None, _("Enter the case reference (such as 2026-0003) or pick a case from the list.")


def resolve_notice_ref(raw: str) -> tuple[int | None, str | None]:
    """A notice typed or picked → (its id, None) or (None, error): ``#2``,
    ``2`` or ``#2 李四`` (the pick list's form). Empty → (None, None)."""
    raw = raw.strip()
    if not raw:
        return None, None
    plain = _PLAIN_ID.fullmatch(raw)
    if plain:
        return int(plain.group(1)), None
    return None, _("Enter the notice number (such as #2) or pick a notice from the list.")


#: Form fields of each lead kind's values (rescue.matching.schemas.VALUE_TYPES).
LEAD_VALUE_FIELDS = {
    "police_face": ("score", "system", "report_number"),
    "police_dna": ("likelihood_ratio", "relationship_tested", "lab", "report_number"),
    "announcement_clue": ("summary",),
    "staff": ("summary",),
}


class LeadPages(Controller):
    """A police liaison officer (or staff) submits a lead with its evidence report."""

    path = "/leads"
    include_in_schema = False

    @get("/new", guards=[allow(Action.candidate_submit)])
    async def new(
        self,
        request: Request[Any, Any, Any],
        case_id: FromQuery[str] = "",
        notice_id: FromQuery[str] = "",
    ) -> Template:
        """The lead form; ``case_id`` / ``notice_id`` (internal ids, from a case or
        notice page's link) are shown as the reference and name people see."""
        refs = await load_refs(
            [int(case_id)] if case_id.isdigit() else [],
            [int(notice_id)] if notice_id.isdigit() else [],
            stations=request.user.visible_stations(),
        )
        shown = {
            "case_id": refs.case_text(int(case_id)) if case_id.isdigit() else case_id,
            "notice_id": refs.notice_text(int(notice_id)) if notice_id.isdigit() else notice_id,
        }
        return await _lead_form({**shown, "kind": "police_face"}, {}, request.user)

    @post("/", guards=[allow(Action.candidate_submit)], status_code=303, media_type=MediaType.HTML)
    async def submit(self, request: Request[Any, Any, Any]) -> Any:
        """Same checks as ``POST /api/candidates`` (values per kind, the report file)."""
        from rescue.matching.ledger import submit_candidate
        from rescue.matching.schemas import VALUE_TYPES
        from rescue.matching.tables import EvidenceKind
        from rescue.runtime import get_store

        values, files = await read_form(request)
        errors: dict[str, str] = {}
        try:
            kind = EvidenceKind(values.get("kind", ""))
            if kind == EvidenceKind.face:
                raise ValueError(kind)
        except ValueError:
            return await _lead_form(
                values, {"kind": _("Choose one of the listed values.")}, request.user, 400
            )
        lead_values, errors = parse(
            VALUE_TYPES[kind],
            {n: values.get(n, "") for n in LEAD_VALUE_FIELDS.get(kind.value, ())},
        )
        errors = dict(errors)
        ids: dict[str, int | None] = {}
        ids["case_id"], problem = await resolve_case_ref(values.get("case_id", ""))
        if problem:
            errors["case_id"] = problem
        ids["notice_id"], problem = resolve_notice_ref(values.get("notice_id", ""))
        if problem:
            errors["notice_id"] = problem
        elif ids["notice_id"] is None:
            errors["notice_id"] = _("This field is required.")
        if errors:
            return await _lead_form(values, errors, request.user, 400)
        report = files.get("report")
        try:
            detail, _new = await submit_candidate(
                kind=kind,
                values={k: v for k, v in _struct_dict(lead_values).items() if v not in ("", None)},
                by=request.user,
                store=get_store(),
                limits=get_settings().upload,
                settings=get_settings(),
                case_id=ids["case_id"],
                notice_id=ids["notice_id"],
                note=values.get("note", ""),
                attachment=await report.read() if report is not None else None,
            )
        except NotFound as exc:
            field = (
                "case_id" if "case" in exc.detail and "notice" not in exc.detail else "notice_id"
            )
            return await _lead_form(values, {field: exc.detail}, request.user, 400)
        except (InvalidInput, Conflict, PermissionDenied) as exc:
            return await _lead_form(values, {"__all__": exc.detail}, request.user, exc.status_code)
        return Redirect(path=f"/candidates/{detail.candidate.id}", status_code=303)


def _struct_dict(value: Any) -> dict[str, Any]:
    import msgspec

    return dict(msgspec.to_builtins(value))


async def _filters_page(
    side: str,
    owner_id: int,
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    state = await filter_state(side=side, owner_id=owner_id, settings=get_settings())
    if side == "case":
        title = _("Matching filters of case #{id}", id=owner_id)
    else:
        title = _("Matching filters of notice #{id}", id=owner_id)
    return Template(
        template_name="matching/filters.html",
        context={
            "title": title,
            "filters": state,
            "base": f"/{side}s/{owner_id}/match-filters",
            "owner_link": f"/{side}s/{owner_id}",
            "is_reviewer": request.user.role == Role.reviewer,
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status,
    )


async def _change_from_form(
    side: str,
    owner_id: int,
    name: FromPath[str],
    action: FromPath[str],
    request: Request[Any, Any, Any],
) -> Any:
    from rescue.matching.controllers import enqueue_owner_rematch

    values, _files = await read_form(request)
    data, errors = parse(FilterChangeIn, values)
    if data is None:
        return await _filters_page(
            side, owner_id, request, errors=errors, values=values, status=400
        )
    if action not in ("relax", "restore"):
        raise NotFound(_("no filter action {action}", action=action))
    try:
        await change_filter(
            side=side,
            owner_id=owner_id,
            name=name,
            relax=action == "relax",
            data=data,
            by=request.user,
            settings=get_settings(),
            enqueue=enqueue_owner_rematch,
        )
    except (Conflict, InvalidInput) as exc:
        return await _filters_page(
            side,
            owner_id,
            request,
            errors={"__all__": exc.detail},
            values=values,
            status=exc.status_code,
        )
    return Redirect(path=f"/{side}s/{owner_id}/match-filters", status_code=303)


class MatchFilterPages(Controller):
    """The reviewer's page of a case's or notice's matching filters: pairs each
    removed, relax / restore with a reason (rescue.matching.filters)."""

    include_in_schema = False

    @get("/cases/{case_id:int}/match-filters", guards=[allow(Action.candidate_read)])
    async def of_case(self, case_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """Filters of one case: pairs removed, relaxations; reviewers get the form."""
        return await _filters_page("case", case_id, request)

    @get("/notices/{notice_id:int}/match-filters", guards=[allow(Action.candidate_read)])
    async def of_notice(self, notice_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """Filters of one notice: pairs removed, relaxations; reviewers get the form."""
        return await _filters_page("notice", notice_id, request)

    @post(
        "/cases/{case_id:int}/match-filters/{name:str}/{action:str}",
        guards=[allow(Action.match_filter_relax)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def change_case(
        self,
        case_id: PathId,
        name: FromPath[str],
        action: FromPath[str],
        request: Request[Any, Any, Any],
    ) -> Any:
        """Relax or restore (reason required); errors shown on the page."""
        return await _change_from_form("case", case_id, name, action, request)

    @post(
        "/notices/{notice_id:int}/match-filters/{name:str}/{action:str}",
        guards=[allow(Action.match_filter_relax)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def change_notice(
        self,
        notice_id: PathId,
        name: FromPath[str],
        action: FromPath[str],
        request: Request[Any, Any, Any],
    ) -> Any:
        """Relax or restore (reason required); errors shown on the page."""
        return await _change_from_form("notice", notice_id, name, action, request)
