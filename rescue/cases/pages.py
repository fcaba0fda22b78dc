"""Pages for 受助人员 (people in care): list and search, intake, the case page, moves.

Each handler calls the services the JSON API calls (rescue.cases.services,
rescue.photos.services, ...) under the same guards; forms are checked with the
API's own schemas (CaseCreate, TransitionRequest) through rescue.web.forms.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from rescue import clock
from rescue.cases import services
from rescue.cases.schemas import CaseCreate, CaseUpdate, TransitionRequest
from rescue.cases.tables import TERMINAL_STATUSES, CaseStatus, Sex
from rescue.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from rescue.escorts.tables import ReceivingParty, RelationshipBasis
from rescue.i18n import N_, _, label
from rescue.permissions import PERMISSIONS, Action, allow
from rescue.placements.tables import PlacementKind
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.searches.tables import AnnouncementChannel, PoliceCheckType
from rescue.settings import get_settings
from rescue.web.forms import form_key_input, once, parse, read_form
from rescue.web.refs import load_refs

__all__ = ["MOVE_FIELDS", "CasePages", "case_page"]

PAGE_SIZE = 25

#: Extra fields a move's form asks for, kept in the move's ``data`` (timeline).
#: The workflow table (rescue.cases.flows) decides which moves are offered; add a
#: row here when a move requires more (msgid of the field's label).
MOVE_FIELDS: dict[CaseStatus, list[tuple[str, str]]] = {
    CaseStatus.left_self: [("ticket", N_("Ticket or travel voucher given (number, destination)"))],
    CaseStatus.transferred_minor: [("receiving_institution", N_("Receiving institution"))],
    CaseStatus.placed: [("placed_at", N_("Where the person is placed"))],
}
#: Moves made elsewhere on the case page, not by the plain move form.
NOT_A_PLAIN_MOVE = {CaseStatus.identified, CaseStatus.return_planned}


async def _upload_photo(case_id: int, upload: Any, request: Request[Any, Any, Any]) -> Any:
    from rescue.photos.controllers import enqueue_photo
    from rescue.photos.services import upload_photo

    data = await upload.read()
    return await upload_photo(
        owner="case",
        owner_id=case_id,
        data=data,
        taken_on=None,
        by=request.user,
        store=get_store(),
        limits=get_settings().upload,
        enqueue=enqueue_photo,
    )


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _intake(values: dict[str, str], errors: dict[str, str], status: int = 200) -> Template:
    return Template(
        template_name="cases/new.html",
        context={
            "values": values,
            "errors": errors,
            "sexes": [(s.value, label(s)) for s in Sex],
            "form_key": form_key_input(values.get("_form_key")),
        },
        status_code=status,
    )


class CasePages(Controller):
    path = "/cases"
    include_in_schema = False

    @get("/", name="cases", guards=[allow(Action.case_read)])
    async def index(
        self,
        request: Request[Any, Any, Any],
        q: FromQuery[str] = "",
        status: FromQuery[str] = "",
        station: FromQuery[str] = "",
        admitted_from: FromQuery[str] = "",
        admitted_to: FromQuery[str] = "",
        page: FromQuery[int] = 1,
    ) -> Template:
        """Search by reference, placeholder or reported name, status, station and
        admission dates (local dates, both inclusive); 25 a page."""
        page = max(page, 1)
        day_from, day_to = _day(admitted_from), _day(admitted_to)
        result = await services.list_cases(
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            status=status if status in {s.value for s in CaseStatus} else None,
            stations=request.user.visible_stations(),
            text=q,
            station=station or None,
            admitted_from=clock.start_of_local_day(day_from) if day_from else None,
            admitted_before=clock.start_of_local_day(day_to + timedelta(days=1))
            if day_to
            else None,
        )
        return Template(
            template_name="cases/list.html",
            context={
                "result": result,
                "page": page,
                "pages": max(1, -(-result.total // PAGE_SIZE)),
                "filters": {
                    "q": q,
                    "status": status,
                    "station": station,
                    "admitted_from": admitted_from,
                    "admitted_to": admitted_to,
                },
                "statuses": [(s.value, label(s)) for s in CaseStatus],
            },
        )

    @get("/new", name="case-new", guards=[allow(Action.case_write)])
    async def new(self) -> Template:
        """The intake form (入站登记), usable on a phone: the photo input opens the camera."""
        return _intake({"sex": Sex.unknown.value}, {})

    @post("/", guards=[allow(Action.case_write)], status_code=303, media_type=MediaType.HTML)
    async def register(self, request: Request[Any, Any, Any]) -> Any:
        """Register the person (same rules as ``POST /api/cases``) and upload the
        photo if one was taken (same checks as the photo API). A double submit
        goes to the case made by the first."""
        values, files = await read_form(request)
        data, errors = parse(
            CaseCreate,
            {k: v for k, v in values.items() if k != "station"},
            check=services.intake_problems,
        )
        if data is None:
            return _intake(values, errors, 400)

        async def action() -> str:
            case = await services.create_case(data=data, by=request.user)
            url = f"/cases/{case.id}"
            photo = files.get("photo")
            if photo is not None:
                try:
                    await _upload_photo(case.id, photo, request)
                except DomainError as exc:
                    request.session["flash_error"] = _(
                        "The person was registered, but the photo was refused: {detail}",
                        detail=exc.detail,
                    )
            return url

        try:
            url = await once(request, values, action)
        except InvalidInput as exc:
            return _intake(values, exc.extra.get("fields") or {"__all__": exc.detail}, 400)
        return Redirect(path=url, status_code=303)

    @get("/{case_id:int}", name="case", guards=[allow(Action.case_read)])
    async def detail(self, case_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """Everything the API holds about the case; moves allowed now (rescue.cases.flows)."""
        return await case_page(case_id, request)

    @post(
        "/{case_id:int}/photos",
        guards=[allow(Action.photo_upload_case)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def add_photo(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Upload a photo (camera on a phone); the case page then shows its processing."""
        _values, files = await read_form(request)
        photo = files.get("photo")
        if photo is None:
            return await case_page(
                case_id, request, errors={"photo": _("Choose or take a photo.")}, status=400
            )
        try:
            await _upload_photo(case_id, photo, request)
        except (InvalidInput, Conflict) as exc:
            return await case_page(case_id, request, errors={"photo": exc.detail}, status=400)
        return Redirect(path=f"/cases/{case_id}#photos", status_code=303)

    @post(
        "/{case_id:int}/moves",
        guards=[allow(Action.case_transition)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def move(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Move the case (``to``, ``reason`` and the move's own fields, MOVE_FIELDS)."""
        values, _files = await read_form(request)
        to = values.get("to", "")
        extra = {
            name: values.get(name, "").strip()
            for name, _title in MOVE_FIELDS.get(CaseStatus(to), [])
            if to in {s.value for s in CaseStatus} and values.get(name, "").strip()
        }
        data, errors = parse(
            TransitionRequest, {"to": to, "reason": values.get("reason", "")}, data=extra
        )
        if data is None:
            return await case_page(
                case_id, request, move_errors={to: errors}, move_values=values, status=400
            )
        try:
            await services.request_transition(case_id=case_id, data=data, by=request.user)
        except (Conflict, InvalidInput) as exc:
            # The detail says what is missing in the page's language; the API's
            # ``requires`` (which request to send) is for API clients, not shown.
            return await case_page(
                case_id,
                request,
                move_errors={to: {"__all__": exc.detail}},
                move_values=values,
                status=exc.status_code,
            )
        return Redirect(path=f"/cases/{case_id}", status_code=303)

    @get("/{case_id:int}/edit", guards=[allow(Action.case_write)])
    async def edit(self, case_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """Correct the record: the assessment (``PATCH /api/cases/{id}``: estimated
        date of birth, height, capacity) and the identity found (``PATCH
        /api/cases/{id}/identity``), each change with its reason on the timeline."""
        return await _edit_page(case_id, request)

    @post(
        "/{case_id:int}/edit",
        guards=[allow(Action.case_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def update(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Same schema (CaseUpdate) and service as the API; only the fields that
        differ from the record are sent (an unchanged form: "nothing to change")."""
        values, _files = await read_form(request)
        case = await services.get_case(case_id=case_id)
        current = _assessment_values(case)
        changed = {k: v for k, v in values.items() if k == "reason" or current.get(k, "") != v}
        names = {"birth_date_estimate", "height_cm", "reason"}
        typed_capacity = bool(values.get("lacks_capacity"))
        data, errors = parse(
            CaseUpdate,
            {k: v for k, v in changed.items() if k in names},
            lacks_capacity=typed_capacity,
        )
        if data is None:
            return await _edit_page(
                case_id, request, errors={"assessment": errors}, values={"assessment": values}
            )
        if typed_capacity == case.lacks_capacity:
            data = msgspec.structs.replace(data, lacks_capacity=msgspec.UNSET)
        try:
            await services.update_case(case_id=case_id, data=data, by=request.user)
        except InvalidInput as exc:
            field = exc.extra.get("field")
            return await _edit_page(
                case_id,
                request,
                errors={"assessment": {field if field in names else "__all__": exc.detail}},
                values={"assessment": values},
            )
        return Redirect(path=f"/cases/{case_id}#details", status_code=303)

    @post(
        "/{case_id:int}/identity",
        guards=[allow(Action.identity_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def identity(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Same schema (IdentityUpdate) and service as the API; an empty ID number
        leaves it unchanged; fields equal to the record are not sent."""
        from rescue.cases.schemas import IdentityUpdate

        values, _files = await read_form(request)
        current = await services.get_identity(case_id=case_id, by=request.user)
        fields = {
            name: values.get(name, "").strip()
            for name in (
                "confirmed_name",
                "id_number",
                "household_registration",
                "relatives_contact",
            )
            if values.get(name, "").strip()
            and values.get(name, "").strip() != (getattr(current, name) or "")
        }
        data, errors = parse(IdentityUpdate, {**fields, "reason": values.get("id_reason", "")})
        if "reason" in errors:
            errors["id_reason"] = errors.pop("reason")
        if "id_number" in errors:
            errors["id_number"] = _(
                "Enter the 18-character ID number: 17 digits and a check digit (0-9 or X)."
            )
        if data is None:
            return await _edit_page(
                case_id, request, errors={"identity": errors}, values={"identity": values}
            )
        try:
            await services.update_identity(case_id=case_id, data=data, by=request.user)
        except InvalidInput as exc:
            return await _edit_page(
                case_id,
                request,
                errors={"identity": {"__all__": exc.detail}},
                values={"identity": values},
            )
        return Redirect(path=f"/cases/{case_id}#details", status_code=303)

    @get("/{case_id:int}/photos/status", guards=[allow(Action.case_read)])
    async def photos_fragment(self, case_id: PathId) -> Template:
        """The photos block (htmx polls it every 2 s while a photo is pending)."""
        case = await services.get_case(case_id=case_id)
        photos = await _photos(case_id)
        candidates = await _candidates(case_id)
        return Template(
            template_name="cases/_photos.html",
            context={
                "case": case,
                "photos": photos,
                "candidates": candidates,
                "refs": await load_refs([], [c.notice_id for c in candidates]),
            },
        )


def _assessment_values(case: Any) -> dict[str, str]:
    """The assessment form's fields as the record holds them."""
    return {
        "birth_date_estimate": case.birth_date_estimate.isoformat()
        if case.birth_date_estimate
        else "",
        "height_cm": "" if case.height_cm is None else str(case.height_cm),
        "lacks_capacity": "true" if case.lacks_capacity else "",
    }


async def _edit_page(
    case_id: int,
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, dict[str, str]] | None = None,
) -> Template:
    """The correction page, re-shown with one form's errors and what was typed."""
    case = await services.get_case(case_id=case_id)
    can_identity = request.user.role in PERMISSIONS[Action.identity_write]
    shown = dict(values or {})
    shown.setdefault("assessment", _assessment_values(case))
    if can_identity and "identity" not in shown:
        current = await services.get_identity(case_id=case_id, by=request.user)
        shown["identity"] = {
            "confirmed_name": current.confirmed_name or "",
            "household_registration": current.household_registration,
            "relatives_contact": current.relatives_contact,
        }
    return Template(
        template_name="cases/edit.html",
        context={
            "case": case,
            "errors": errors or {},
            "values": shown,
            "can_identity": can_identity,
        },
        status_code=400 if errors else 200,
    )


async def _photos(case_id: int) -> list[Any]:
    from rescue.photos.services import get_photo, photo_summaries

    return [await get_photo(photo_id=p.id) for p in await photo_summaries(case_id=case_id)]


async def _candidates(case_id: int) -> list[Any]:
    from rescue.matching.services import list_candidates

    page = await list_candidates(settings=get_settings(), case_id=case_id, limit=50)
    return list(page.items)


async def case_page(
    case_id: int,
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, str] | None = None,
    move_errors: dict[str, dict[str, str]] | None = None,
    move_values: dict[str, str] | None = None,
    form_errors: dict[str, dict[str, str]] | None = None,
    form_values: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    """The case page (also re-shown with the errors of one of its forms:
    ``form_errors[form name]`` and what was typed in ``form_values``)."""
    from rescue.announcements.services import get_for_staff
    from rescue.escorts.services import list_handovers, list_tasks
    from rescue.placements.services import list_placements
    from rescue.searches.services import list_actions

    case = await services.get_case(case_id=case_id)
    user = request.user
    try:
        announcement = await get_for_staff(case_id=case_id)
    except NotFound:
        announcement = None
    try:
        handovers = await list_handovers(case_id=case_id)
    except (NotFound, PermissionDenied):
        handovers = []
    from rescue.permissions import PERMISSIONS
    from rescue.stations.services import known_stations, list_transfers

    stations = await known_stations()
    from rescue.cases import flows
    from rescue.cases.tables import Case
    from rescue.escorts.services import get_return_plan
    from rescue.matching.tables import Candidate, CandidateStatus

    row = await Case.select().where(Case.id == case_id).first()
    blocked = await flows.not_yet(row) if row is not None else {}
    moves = [s for s in case.allowed_next if s not in NOT_A_PLAIN_MOVE and s not in blocked]
    not_yet = [(s, why) for s, why in blocked.items() if s not in NOT_A_PLAIN_MOVE]
    try:
        plan = await get_return_plan(case_id=case_id, with_id_number=False)
    except NotFound:
        plan = None
    revising = bool((form_errors or {}).get("plan_revision"))
    plan_values = (
        form_values or {}
        if revising or plan is None
        else {
            "destination": plan.destination,
            "transport": plan.transport,
            "escort_staff": "\n".join(plan.escort_staff),
            "planned_on": plan.planned_on.isoformat(),
            "receiving_party": plan.receiving_party.value if plan.receiving_party else "",
            "receiver": plan.receiver,
        }
    )
    confirmed = await Candidate.exists().where(
        (Candidate.case == case_id) & (Candidate.status == CandidateStatus.confirmed.value)
    )
    bases = [
        (b.value, label(b))
        for b in RelationshipBasis
        if confirmed or b != RelationshipBasis.confirmed_candidate
    ]
    handover_values = dict(form_values or {})
    if "relationship_basis" not in handover_values and confirmed:
        handover_values["relationship_basis"] = RelationshipBasis.confirmed_candidate.value
    candidates = await _candidates(case_id)
    flash = request.session.pop("flash_error", None) if request.session else None
    return Template(
        template_name="cases/detail.html",
        context={
            "case": case,
            "custody_age": flows.custody_age(case.station),
            "photos": await _photos(case_id),
            "candidates": candidates,
            "refs": await load_refs([], [c.notice_id for c in candidates]),
            "timeline": await services.timeline(case_id=case_id),
            "placements": await list_placements(case_id=case_id),
            "actions": await list_actions(case_id=case_id),
            "announcement": announcement,
            "handovers": handovers,
            "tasks": await list_tasks(case_id=case_id, open_only=False),
            "moves": moves if user.role.value in ("station_staff", "admin") else [],
            "not_yet": not_yet if user.role.value in ("station_staff", "admin") else [],
            "plan": plan,
            "plan_values": plan_values,
            "handover_values": handover_values,
            "relationship_bases": bases,
            "user_id": user.user_id,
            "public_base_url": get_settings().site.public_base_url,
            "local_base_url": str(request.base_url).rstrip("/"),
            "move_fields": {s: [(n, _(t)) for n, t in f] for s, f in MOVE_FIELDS.items()},
            "move_errors": move_errors or {},
            "move_values": move_values or {},
            "errors": errors or {},
            "form_errors": form_errors or {},
            "form_values": form_values or {},
            "form_key": form_key_input((form_values or {}).get("_form_key")),
            "placement_kinds": [(k.value, label(k)) for k in PlacementKind],
            "receiving_parties": [(p.value, label(p)) for p in ReceivingParty],
            "channels": [(c.value, label(c)) for c in AnnouncementChannel],
            "check_types": [(c.value, label(c)) for c in PoliceCheckType],
            "flash_error": flash,
            "terminal": {s.value for s in TERMINAL_STATUSES},
            "status_value": CaseStatus(case.status).value,
            "can_write": user.role.value in ("station_staff", "admin"),
            "can_transfer": user.role in PERMISSIONS[Action.case_transfer],
            "transfers": await list_transfers(case_id=case_id),
            "other_stations": [(s, s) for s in stations if s != case.station],
            "can_complete_task": user.role in PERMISSIONS[Action.task_complete],
            "can_record_police": user.role in PERMISSIONS[Action.police_record],
        },
        status_code=status,
    )
