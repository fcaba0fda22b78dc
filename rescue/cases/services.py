"""Case registration and lookup (plain functions, keyword-only arguments)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from rescue import clock
from rescue.cases import flows
from rescue.cases.events import CaseEvent, record_event
from rescue.cases.schemas import (
    CaseCreate,
    CaseOut,
    CaseUpdate,
    CurrentPlacement,
    IdentityOut,
    IdentityUpdate,
    LeavingCount,
    LeavingReport,
    TimelineEvent,
    TransitionOut,
    TransitionRequest,
)
from rescue.cases.tables import Case, CaseStatus, LeavingCategory
from rescue.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from rescue.i18n import _
from rescue.photos.schemas import PhotoSummary
from rescue.photos.services import photo_summaries
from rescue.placements.services import start_in_station
from rescue.schemas import Page
from rescue.users.services import Principal

__all__ = [
    "create_case",
    "fill_identity_from_notice",
    "get_case",
    "get_identity",
    "list_cases",
    "mask_id_number",
    "request_transition",
    "require_case",
    "timeline",
    "update_case",
    "update_identity",
]


#: The earliest admission a case may be registered with (历史补录): the service
#: holds the files of people still in care; 1990 is well before the 2003
#: 救助管理办法 that created today's stations, so any real file fits.
EARLIEST_ADMISSION = datetime(1990, 1, 1, tzinfo=UTC)


def _validate_admission(data: CaseCreate, now: datetime) -> datetime:
    """The admission moment: now, or the given past one (checked)."""
    if data.admitted_at is None:
        return now
    at = data.admitted_at
    accepted = _(
        "a moment from {earliest} up to now, not before found_at, with its timezone offset",
        earliest=EARLIEST_ADMISSION.date().isoformat(),
    )
    if at > now:
        raise InvalidInput(_("admitted_at is in the future"), accepted=accepted)
    if at < EARLIEST_ADMISSION:
        raise InvalidInput(
            _(
                "admitted_at {at} is before {earliest}",
                at=at.date().isoformat(),
                earliest=EARLIEST_ADMISSION.date().isoformat(),
            ),
            accepted=accepted,
        )
    if data.found_at is not None and at < data.found_at:
        raise InvalidInput(
            _("admitted_at is before found_at; the person is found before admission"),
            accepted=accepted,
        )
    return at


def _validate_ages(data: CaseCreate) -> None:
    if data.birth_date_estimate is not None and data.birth_date_estimate > clock.today():
        raise InvalidInput(
            _("birth_date_estimate is in the future"), accepted="a past date (estimated)"
        )
    if data.found_at is not None and data.found_at > clock.now():
        raise InvalidInput(
            _("found_at is in the future; the person is found before admission"),
            accepted="a moment up to now, with its timezone offset",
        )
    low, high, est = data.age_low, data.age_high, data.estimated_age
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            _("age_low ({low}) is greater than age_high ({high})", low=low, high=high),
            accepted=_("age_low <= estimated_age <= age_high, each 0..120"),
        )
    if est is not None and ((low is not None and est < low) or (high is not None and est > high)):
        raise InvalidInput(
            _("estimated_age {est} lies outside age_low..age_high", est=est),
            accepted=_("age_low <= estimated_age <= age_high, each 0..120"),
        )


async def create_case(
    *,
    data: CaseCreate,
    by: Principal,
    entered_at: datetime | None = None,
    backlog_key: str | None = None,
) -> CaseOut:
    """Register a person taken in (入站登记).

    The case gets a reference ``YYYY-NNNN`` (the admission's year) and a
    placeholder name ``无名氏-NNNN`` (used whenever no name is reported; see
    docs/glossary.md). With ``data.admitted_at`` in the past (历史补录, a person
    admitted before the case is entered here) the admission event and the first
    in-station placement carry that moment and are marked entered later.

    Args:
        entered_at: the moment the case counts as entered into the service
            (default now; a backlog run gives its start). Deadlines due before it
            are ``historic`` (rescue.alerts.services).
        backlog_key: the backlog row's key (rescue.backlog), unique.

    Raises:
        InvalidInput: inconsistent ages, an estimated birth date in the future, or
            an admission in the future, before 1990 or before ``found_at``.
        PermissionDenied: the station is not one the caller sees.
    """
    station = data.station if data.station is not None else by.station
    if not by.sees_station(station):
        raise PermissionDenied(
            _("you may not register a case for station {station}", station=station),
            accepted=by.visible_stations(),
        )
    _validate_ages(data)
    now = clock.now()
    admitted = _validate_admission(data, now)
    later = admitted < now
    async with Case._meta.db.transaction():
        rows = await Case.insert(
            Case(
                reference=f"tmp-{uuid.uuid4().hex}",  # replaced below, same transaction
                placeholder_name="",
                reported_name=(data.reported_name or "").strip() or None,
                sex=data.sex.value,
                estimated_age=data.estimated_age,
                age_low=data.age_low,
                age_high=data.age_high,
                found_at=data.found_at,
                found_place=data.found_place,
                brought_by=data.brought_by,
                description=data.description,
                dialect=data.dialect,
                belongings=data.belongings,
                station=station,
                birth_date_estimate=data.birth_date_estimate,
                lacks_capacity=data.lacks_capacity,
                height_cm=data.height_cm,
                created_by=by.user_id,
                admitted_at=admitted,
                entered_at=(entered_at or now) if later else None,
                backlog_key=backlog_key,
                created_at=now,
                updated_at=now,
            )
        ).returning(Case.id)
        case_id = int(rows[0]["id"])
        await Case.update(
            {
                Case.reference: f"{clock.local(admitted).year}-{case_id:04d}",
                Case.placeholder_name: f"无名氏-{case_id:04d}",
            }
        ).where(Case.id == case_id)
        await record_event(
            case_id=case_id,
            kind="admitted",
            actor_id=by.user_id,
            actor_role=by.role.value,
            to_status=CaseStatus.admitted.value,
            reason=f"brought by {data.brought_by}" if data.brought_by else "",
            data={"entered_later": True} if later else None,
            occurred_at=admitted if later else None,
        )
        station = data.station if data.station is not None else by.station
        await start_in_station(
            case_id=case_id, station=station, at=admitted, by=by, entered_later=later
        )
    return await get_case(case_id=case_id)


async def require_case(*, case_id: int) -> dict[str, Any]:
    """The case row as a dict. Raises NotFound."""
    row = await Case.select().where(Case.id == case_id).first()
    if row is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    return row


def _case_out(row: dict[str, Any], photos: list[PhotoSummary]) -> CaseOut:
    return CaseOut(
        id=row["id"],
        reference=row["reference"],
        display_name=row["confirmed_name"] or row["reported_name"] or row["placeholder_name"],
        reported_name=row["reported_name"],
        placeholder_name=row["placeholder_name"],
        sex=row["sex"],
        estimated_age=row["estimated_age"],
        age_low=row["age_low"],
        age_high=row["age_high"],
        found_at=row["found_at"],
        found_place=row["found_place"],
        brought_by=row["brought_by"],
        description=row["description"],
        dialect=row["dialect"],
        belongings=row["belongings"],
        station=row["station"],
        status=row["status"],
        admitted_at=row["admitted_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        entered_at=row["entered_at"] or row["created_at"],
        entered_later=row["entered_at"] is not None,
        birth_date_estimate=row["birth_date_estimate"],
        lacks_capacity=row["lacks_capacity"],
        height_cm=row["height_cm"],
        custody_only=flows.custody_only(row),
        confirmed_name=row["confirmed_name"],
        leaving_category=flows.LEAVING_CATEGORY.get(CaseStatus(row["status"])),
        photos=photos,
    )


async def get_case(*, case_id: int) -> CaseOut:
    """One case with its photos, allowed next statuses, current placement and its
    due/overdue deadline items (``alerts``, soonest first). Raises NotFound."""
    from rescue.alerts.services import alerts_for_case
    from rescue.placements.tables import Placement

    row = await require_case(case_id=case_id)
    out = _case_out(row, await photo_summaries(case_id=case_id))
    out.allowed_next = [
        s
        for s in flows.allowed_next(CaseStatus(row["status"]), custody=out.custody_only)
        if s != CaseStatus.identified
    ]
    placement = (
        await Placement.select()
        .where((Placement.case == case_id) & Placement.ended_at.is_null())
        .first()
    )
    if placement is not None:
        out.current_placement = CurrentPlacement(
            id=placement["id"],
            kind=placement["kind"],
            facility=placement["facility"],
            responsible_contact=placement["responsible_contact"],
            started_at=placement["started_at"],
        )
    out.alerts = await alerts_for_case(case_id=case_id)
    return out


async def update_case(*, case_id: int, data: CaseUpdate, by: Principal) -> CaseOut:
    """Change date-of-birth estimate, capacity flag or height; the change (old and
    new values) goes on the timeline as ``case_updated``.

    Raises:
        NotFound: no such case.
        InvalidInput: nothing to change, or a birth date in the future.
    """
    fields = {
        name: getattr(data, name)
        for name in ("birth_date_estimate", "lacks_capacity", "height_cm")
        if getattr(data, name) is not msgspec.UNSET
    }
    if not fields:
        raise InvalidInput(
            _("nothing to change"), accepted=["birth_date_estimate", "lacks_capacity", "height_cm"]
        )
    birth = fields.get("birth_date_estimate")
    if birth is not None and birth > clock.today():
        raise InvalidInput(
            _("birth_date_estimate is in the future"),
            accepted=_("a date up to today"),
            field="birth_date_estimate",
        )
    async with Case._meta.db.transaction():
        row = await require_case(case_id=case_id)
        changes = {
            name: {"from": _jsonable(row[name]), "to": _jsonable(value)}
            for name, value in fields.items()
            if row[name] != value
        }
        await Case.update(
            {**{getattr(Case, n): v for n, v in fields.items()}, Case.updated_at: clock.now()}
        ).where(Case.id == case_id)
        await record_event(
            case_id=case_id,
            kind="case_updated",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.reason,
            data=changes,
        )
    if "birth_date_estimate" in changes:
        # The age plausibility of this case's candidates depends on it.
        from rescue.matching.ledger import rescore_case

        await rescore_case(case_id=case_id)
    return await get_case(case_id=case_id)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.iso_utc(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


async def request_transition(
    *, case_id: int, data: TransitionRequest, by: Principal
) -> TransitionOut:
    """Move a case through the workflow (rescue.cases.flows.transition).

    Raises:
        Conflict: ``identified`` (it happens by confirming a candidate), or the
            transition or one of its rules is refused (409 with current/allowed).
        PermissionDenied: the role may not trigger this transition.
        NotFound: no such case.
    """
    if data.to == CaseStatus.identified:
        row = await require_case(case_id=case_id)
        raise Conflict(
            _("a case becomes identified only when a reviewer confirms a match candidate"),
            current=row["status"],
            allowed=[
                s.value
                for s in flows.allowed_next(
                    CaseStatus(row["status"]), custody=flows.custody_only(row)
                )
                if s != CaseStatus.identified
            ],
            requires="confirm a candidate (reviewer)",
        )
    if data.to == CaseStatus.return_planned:
        row = await require_case(case_id=case_id)
        raise Conflict(
            _("a case becomes return_planned by recording its return plan"),
            current=row["status"],
            allowed=[
                s.value
                for s in flows.allowed_next(
                    CaseStatus(row["status"]), custody=flows.custody_only(row)
                )
            ],
            requires=f"POST /api/cases/{case_id}/return-plan",
        )
    previous = await flows.transition(
        case_id=case_id, to=data.to, by=by, reason=data.reason, data=data.data
    )
    row = await require_case(case_id=case_id)
    return TransitionOut(
        case_id=case_id,
        previous=previous,
        status=CaseStatus(row["status"]),
        allowed_next=flows.allowed_next(data.to, custody=flows.custody_only(row)),
    )


async def timeline(*, case_id: int) -> list[TimelineEvent]:
    """The case's timeline, oldest first (append-only). Raises NotFound."""
    await require_case(case_id=case_id)
    rows = await CaseEvent.select().where(CaseEvent.case == case_id).order_by(CaseEvent.id)
    return [
        TimelineEvent(
            id=r["id"],
            at=r["at"],
            actor_id=r["actor_id"],
            actor_role=r["actor_role"],
            kind=r["kind"],
            from_status=r["from_status"],
            to_status=r["to_status"],
            reason=r["reason"],
            data=json.loads(r["data"]) if isinstance(r["data"], str) else r["data"],
            occurred_at=r["occurred_at"],
            entered_later=r["occurred_at"] is not None,
        )
        for r in rows
    ]


async def list_cases(
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    stations: list[str] | None = None,
    text: str | None = None,
    station: str | None = None,
    admitted_from: datetime | None = None,
    admitted_before: datetime | None = None,
) -> Page[CaseOut]:
    """Cases, newest admission first; only those of ``stations`` (None: all).

    Args:
        text: part of the reference, placeholder name or reported name.
        station: only this station (within ``stations``).
        admitted_from, admitted_before: admission time window (from ≤ t < before).
    """
    where: Any = Case.id > 0
    if stations is not None:
        where = where & Case.station.is_in(stations or [""])
    if status is not None:
        where = where & (Case.status == status)
    if station:
        where = where & (Case.station == station)
    if text and text.strip():
        pattern = f"%{text.strip()}%"
        where = where & (
            Case.reference.ilike(pattern)
            | Case.placeholder_name.ilike(pattern)
            | Case.reported_name.ilike(pattern)
        )
    if admitted_from is not None:
        where = where & (Case.admitted_at >= admitted_from)
    if admitted_before is not None:
        where = where & (Case.admitted_at < admitted_before)
    rows = (
        await Case.select()
        .where(where)
        .order_by(Case.id, ascending=False)
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=[_case_out(r, []) for r in rows],
        total=await Case.count().where(where),
        limit=limit,
        offset=offset,
    )


_IDENTITY_FIELDS = ("confirmed_name", "id_number", "household_registration", "relatives_contact")


def mask_id_number(number: str | None) -> str | None:
    """``510802197001011234`` → ``5108**********1234`` (region prefix and last four
    kept, as printed on forms for people without the right to see it)."""
    if not number:
        return number
    return number[:4] + "*" * max(len(number) - 8, 0) + number[-4:]


def _identity_out(row: dict[str, Any], by: Principal) -> IdentityOut:
    from rescue.permissions import PERMISSIONS, Action

    full = by.role in PERMISSIONS[Action.id_number_read]
    number = row["id_number"]
    return IdentityOut(
        case_id=row["id"],
        confirmed_name=row["confirmed_name"],
        id_number=number if full else mask_id_number(number),
        id_number_masked=bool(number) and not full,
        household_registration=row["household_registration"],
        relatives_contact=row["relatives_contact"],
        notice_id=row["identity_notice"],
    )


async def get_identity(*, case_id: int, by: Principal) -> IdentityOut:
    """The identity found (身份查明) of a case. The 身份证号 is masked unless the
    caller's role needs it (``Action.id_number_read``: staff, police liaison,
    admin); every read is audited (the route names ``identity``). Raises NotFound."""
    return _identity_out(await require_case(case_id=case_id), by)


def _masked_changes(row: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Changed fields for the timeline; the ID number only masked (PIPL art. 28)."""
    changes = {}
    for name, value in fields.items():
        if row[name] == value:
            continue
        if name == "id_number":
            changes[name] = {"from": mask_id_number(row[name]), "to": mask_id_number(value)}
        else:
            changes[name] = {"from": row[name], "to": value}
    return changes


async def update_identity(*, case_id: int, data: IdentityUpdate, by: Principal) -> IdentityOut:
    """Record or correct the identity found; each change (ID number masked) is an
    ``identity_updated`` event with the reason.

    Raises:
        NotFound: no such case.
        InvalidInput: nothing to change.
    """
    fields = {
        name: getattr(data, name)
        for name in _IDENTITY_FIELDS
        if getattr(data, name) is not msgspec.UNSET
    }
    if fields.get("id_number"):
        fields["id_number"] = fields["id_number"].upper()
    if not fields:
        raise InvalidInput(_("nothing to change"), accepted=list(_IDENTITY_FIELDS))
    async with Case._meta.db.transaction():
        row = await require_case(case_id=case_id)
        changes = _masked_changes(row, fields)
        await Case.update(
            {**{getattr(Case, n): v for n, v in fields.items()}, Case.updated_at: clock.now()}
        ).where(Case.id == case_id)
        await record_event(
            case_id=case_id,
            kind="identity_updated",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.reason,
            data=changes,
        )
    return await get_identity(case_id=case_id, by=by)


async def fill_identity_from_notice(*, case_id: int, notice_id: int, by: Principal | None) -> None:
    """At identification: the confirmed notice's name becomes the case's confirmed
    name and (a family notice) its reporter's contact the relatives' contact, unless
    staff already recorded them; an ``identity_updated`` event says so."""
    from rescue.notices.tables import Notice

    notice = await Notice.select().where(Notice.id == notice_id).first()
    row = await require_case(case_id=case_id)
    if notice is None:
        return
    fields: dict[str, Any] = {"identity_notice": notice_id}
    if not row["confirmed_name"]:
        fields["confirmed_name"] = notice["name"]
    if not row["relatives_contact"] and notice["source"] == "family":
        fields["relatives_contact"] = notice["reporter_contact"]
    changes = _masked_changes(row, {k: v for k, v in fields.items() if k != "identity_notice"})
    await Case.update({getattr(Case, n): v for n, v in fields.items()}).where(Case.id == case_id)
    await record_event(
        case_id=case_id,
        kind="identity_updated",
        actor_id=by.user_id if by else None,
        actor_role=by.role.value if by else "system",
        reason=_("identity from the confirmed notice {notice_id}", notice_id=notice_id),
        data={**changes, "notice_id": notice_id},
    )


async def leaving_report(*, month: str, stations: list[str] | None) -> LeavingReport:
    """Leavings of ``month`` (``YYYY-MM``, the station's calendar) by MCA 离站方式
    category: each case counted once, by its first closing transition in the
    month (one entered later, 历史补录, counts when it happened);
    ``cross_province`` from the transition's ``data.cross_province``.

    Raises:
        InvalidInput: ``month`` is not ``YYYY-MM``.
    """
    from datetime import date, timedelta

    from rescue.i18n import label

    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError as exc:
        raise InvalidInput(
            _("month {month} is not YYYY-MM", month=month), accepted="e.g. 2026-12"
        ) from exc
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    start, end = clock.start_of_local_day(first), clock.start_of_local_day(following)
    terminal = [s.value for s in flows.LEAVING_CATEGORY]
    # A leaving entered later (历史补录) counts in the month it happened.
    query = CaseEvent.select(
        CaseEvent.case,
        CaseEvent.to_status,
        CaseEvent.data,
        CaseEvent.case.station,
        CaseEvent.at,
        CaseEvent.occurred_at,
    ).where(
        (CaseEvent.kind == "status_changed")
        & CaseEvent.to_status.is_in(terminal)
        & (
            ((CaseEvent.at >= start) & (CaseEvent.at < end))
            | ((CaseEvent.occurred_at >= start) & (CaseEvent.occurred_at < end))
        )
    )
    if stations is not None:
        query = query.where(CaseEvent.case.station.is_in(stations or [""]))
    counts = {c: [0, 0] for c in LeavingCategory}
    seen: set[int] = set()
    for row in await query.order_by(CaseEvent.id):
        if row["case"] in seen or not start <= (row["occurred_at"] or row["at"]) < end:
            continue
        seen.add(row["case"])
        data = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
        category = flows.LEAVING_CATEGORY[CaseStatus(row["to_status"])]
        counts[category][0] += 1
        counts[category][1] += 1 if (data or {}).get("cross_province") is True else 0
    return LeavingReport(
        month=month,
        stations=stations,
        total=len(seen),
        categories=[
            LeavingCount(category=c, label=label(c), count=n, cross_province=x)
            for c, (n, x) in counts.items()
        ],
    )
