"""History entered later (历史补录): earlier placements, status changes and search
actions of a person admitted before their case was entered here (issue 12 item 6).

Each record is marked ``entered_later``; who entered it and when are the usual
``created_by``/``recorded_by`` and the timeline event's ``at``, while the event's
``occurred_at`` says when it happened. The same rules as for records made at the
time apply, judged at the historic moment:

- placements: within the stay (admission .. now), never overlapping another
  placement of the case (a period inside the placement open then splits it);
- status changes: the transitions table (rescue.cases.flows) from the case's
  current status, in order (not before the previous status change), with the
  time rules judged at ``occurred_at`` (10 days for stranded, 3 months or an
  approval for settled, a welfare-home placement at that moment);
- search actions: on a day within the stay, not in the future.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine

from rescue import clock
from rescue.backlog.schemas import HistoryPlacementIn, HistorySearchIn, HistoryStatusIn
from rescue.cases import flows
from rescue.cases.events import record_event
from rescue.cases.schemas import TransitionOut
from rescue.cases.stay import stay_of
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.i18n import _, label
from rescue.placements.schemas import PlacementOut
from rescue.placements.services import get_placement
from rescue.placements.tables import Placement, PlacementKind
from rescue.searches.schemas import SearchActionOut
from rescue.searches.services import _out as search_out
from rescue.searches.tables import SearchAction, SearchKind
from rescue.users.services import Principal

__all__ = ["add_placement", "add_search_action", "add_status"]

_FAR = datetime.max.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str:
    return clock.local(moment).isoformat(timespec="minutes") if moment else _("now")


async def _case(case_id: int) -> dict[str, Any]:
    query = Case.select(Case.id, Case.status, Case.station, Case.admitted_at).where(
        Case.id == case_id
    )
    if not isinstance(Case._meta.db, SQLiteEngine):
        query = query.lock_rows()
    row = await query.first()
    if row is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    return row


async def add_placement(*, case_id: int, data: HistoryPlacementIn, by: Principal) -> PlacementOut:
    """Record an earlier placement (entered later).

    Returns the new placement. A period inside the placement open at
    ``started_at`` ends that one at ``started_at`` and, if it was open-ended or
    lasted longer, resumes it at ``ended_at`` (a hospital stay from the station
    and back); without ``ended_at`` the new placement is the current one (a move).

    Raises:
        NotFound: no such case.
        InvalidInput: a start before the admission or in the future; an end not
            after the start or in the future.
        Conflict: the period overlaps another placement it cannot split, or the
            case is closed after the start.
    """
    now = clock.now()
    start, end = data.started_at, data.ended_at
    if end is not None and (end <= start or end > now):
        raise InvalidInput(
            _("ended_at must be after started_at and not in the future"),
            accepted=f"{_iso(start)} .. {_iso(now)}",
        )
    async with Case._meta.db.transaction():
        case = await _case(case_id)
        if start < case["admitted_at"] or start > now:
            raise InvalidInput(
                _(
                    "started_at {start} lies outside the case's stay ({admitted} to now)",
                    start=_iso(start),
                    admitted=_iso(case["admitted_at"]),
                ),
                accepted=f"{_iso(case['admitted_at'])} .. {_iso(now)}",
            )
        existing = await Placement.select().where(Placement.case == case_id)
        covering = next(
            (
                p
                for p in existing
                if p["started_at"] < start and (p["ended_at"] is None or p["ended_at"] > start)
            ),
            None,
        )
        resume: tuple[datetime, datetime | None] | None = None
        if covering is not None:
            c_end = covering["ended_at"]
            if end is None and c_end is not None:
                covering = None  # an open-ended stay cannot lie inside a closed one
            elif end is not None and (c_end is None or end < c_end):
                resume = (end, c_end)
            elif end is not None and c_end is not None and end > c_end:
                covering = None
        for p in existing:
            if covering is not None and p["id"] == covering["id"]:
                continue
            if p["started_at"] < (end or _FAR) and (p["ended_at"] or _FAR) > start:
                if CaseStatus(case["status"]) in TERMINAL_STATUSES and p["ended_at"] is None:
                    raise Conflict(_("case {case_id} is closed", case_id=case_id))
                raise Conflict(
                    _(
                        "the period overlaps placement {id} ({kind} at {facility}, "
                        "{start} to {end})",
                        id=p["id"],
                        kind=label(PlacementKind(p["kind"])),
                        facility=p["facility"],
                        start=_iso(p["started_at"]),
                        end=_iso(p["ended_at"]),
                    ),
                    placement_id=p["id"],
                    accepted="a period that overlaps no other placement of the case, or "
                    "lies inside the one open then",
                )
        if covering is not None:
            await Placement.update({Placement.ended_at: start}).where(
                Placement.id == covering["id"]
            )
            await record_event(
                case_id=case_id,
                kind="placement_ended",
                reason=_("moved to {facility}", facility=data.facility),
                data={
                    "placement_id": covering["id"],
                    "ended_at": clock.iso_utc(start),
                    "entered_later": True,
                },
                occurred_at=start,
                actor_id=by.user_id,
                actor_role=by.role.value,
            )
        placement_id = await _insert(case_id, data.kind.value, data.facility, start, end, by, data)
        if covering is not None and resume is not None:
            await _insert(
                case_id,
                covering["kind"],
                covering["facility"],
                resume[0],
                resume[1],
                by,
                None,
                reason=_("returned from {facility}", facility=data.facility),
                contact=covering["responsible_contact"],
                contract=covering["contract_reference"],
            )
    return await get_placement(placement_id=placement_id)


async def _insert(
    case_id: int,
    kind: str,
    facility: str,
    start: datetime,
    end: datetime | None,
    by: Principal,
    data: HistoryPlacementIn | None,
    *,
    reason: str = "",
    contact: str = "",
    contract: str = "",
) -> int:
    rows = await Placement.insert(
        Placement(
            case=case_id,
            kind=kind,
            facility=facility,
            reason=data.reason if data else reason,
            responsible_contact=data.responsible_contact if data else contact,
            contract_reference=data.contract_reference if data else contract,
            started_at=start,
            ended_at=end,
            created_by=by.user_id,
            created_at=clock.now(),
            entered_later=True,
        )
    ).returning(Placement.id)
    placement_id = int(rows[0]["id"])
    await record_event(
        case_id=case_id,
        kind="placement_started",
        actor_id=by.user_id,
        actor_role=by.role.value,
        reason=data.reason if data else reason,
        data={
            "placement_id": placement_id,
            "kind": kind,
            "facility": facility,
            "started_at": clock.iso_utc(start),
            "ended_at": clock.iso_utc(end) if end else None,
            "entered_later": True,
        },
        occurred_at=start,
    )
    return placement_id


async def add_status(*, case_id: int, data: HistoryStatusIn, by: Principal) -> TransitionOut:
    """Record an earlier status change (entered later) through the transitions
    table, its rules judged at ``data.occurred_at`` (rescue.cases.flows.transition).

    ``identified`` and ``return_planned`` are refused here as in the workflow route
    (they come from a confirmed candidate / a return plan).

    Raises:
        NotFound: no such case.
        InvalidInput: ``occurred_at`` before the admission or the previous status
            change, or in the future.
        Conflict / PermissionDenied: as rescue.cases.flows.transition.
    """
    if data.to in (CaseStatus.identified, CaseStatus.return_planned):
        raise Conflict(
            _("{status} cannot be entered as history here", status=label(data.to)),
            accepted="a status change by staff in the transitions table",
        )
    previous = await flows.transition(
        case_id=case_id,
        to=data.to,
        by=by,
        reason=data.reason,
        data=data.data,
        at=data.occurred_at,
    )
    row = await Case.select(Case.status).where(Case.id == case_id).first()
    assert row is not None
    case = await Case.select().where(Case.id == case_id).first()
    assert case is not None
    return TransitionOut(
        case_id=case_id,
        previous=previous,
        status=CaseStatus(row["status"]),
        allowed_next=flows.allowed_next(data.to, custody=flows.custody_only(case)),
    )


_REQUIRED: dict[SearchKind, tuple[str, ...]] = {
    SearchKind.announcement: ("channel",),
    SearchKind.dna_request: ("police_unit",),
    SearchKind.police_check: ("check_type",),
}


async def add_search_action(
    *, case_id: int, data: HistorySearchIn, by: Principal
) -> SearchActionOut:
    """Record an earlier search action (entered later). It satisfies deadlines
    by its ``on_date`` like one recorded at the time.

    Raises:
        NotFound: no such case.
        InvalidInput: ``on_date`` outside the stay or in the future; a field the
            kind needs is missing; ``result_on`` before ``on_date`` or in the future.
    """
    for name in _REQUIRED.get(data.kind, ()):
        if not getattr(data, name):
            raise InvalidInput(
                _("{name} is required for {kind}", name=name, kind=data.kind.value),
                accepted={name: "see HistorySearchIn"},
            )
    if data.result_on is not None and (
        data.result_on < data.on_date or data.result_on > clock.today()
    ):
        raise InvalidInput(
            _("result_on must lie between on_date and today"),
            accepted=f"{data.on_date.isoformat()} .. {clock.today().isoformat()}",
        )
    async with Case._meta.db.transaction():
        stay = await stay_of(case_id=case_id)
        stay.check_day(data.on_date, "on_date")
        rows = await SearchAction.insert(
            SearchAction(
                case=case_id,
                kind=data.kind.value,
                on_date=data.on_date,
                channel=data.channel.value if data.channel else None,
                reference=data.reference,
                police_unit=data.police_unit,
                sample_id=data.sample_id,
                check_type=data.check_type.value if data.check_type else None,
                result_on=data.result_on,
                result=data.result,
                notes=data.notes,
                recorded_by=by.user_id,
                created_at=clock.now(),
                entered_later=True,
            )
        ).returning(SearchAction.id)
        action_id = int(rows[0]["id"])
        await record_event(
            case_id=case_id,
            kind=data.kind.value,
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.notes or data.reference,
            data={"search_action_id": action_id, "entered_later": True},
            occurred_at=clock.start_of_local_day(data.on_date),
        )
    row = await SearchAction.select().where(SearchAction.id == action_id).first()
    assert row is not None
    return search_out(row)
