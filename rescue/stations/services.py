"""The other station (issue 12 item 8).

Who takes part in a case of another station (:func:`takes_part`, used by
:func:`rescue.permissions.allow` on the routes that name participants):

- the **notice's station** (登记站): the station that registered the notice of a
  candidate on the case (not rejected). It reads that candidate, its comparison
  and the case summary (:class:`~rescue.stations.schemas.CaseSummaryOut`);
- the **destination station** (接收站): the station the case's return plan names
  (``destination_station``). It reads the case summary, the plan, the identity
  found (the 身份证号 as its role allows) and the handover, records the reception
  and countersigns the handover (rescue.escorts.services).

Sources (our reading; see docs/workflow.md "The other station" for how sure we
are — no article numbers, we did not have the official texts at hand):
《城市生活无着的流浪乞讨人员救助管理办法实施细则》(民政部 2003, "2003 细则") —
the station helps the person return to their home, working with the civil-affairs
side of the destination, which receives them; 民政部《救助管理机构工作规程》
(2014, "2014 规程") — 护送返乡 ends with a handover (交接) to the receiving party,
recorded on a handover sheet signed by both sides. That a receiving station using
this service countersigns in the service is our design of that second signature.
转送 between stations is our model of one station handing a person in care over
to another (e.g. nearer home); we did not find it as a defined term in the texts.
Minimum necessary: PIPL art. 6.

转送 (:func:`transfer_case`) is immediate: the transferring station records it
after the person has moved (the two stations agree beforehand, outside this
service), the case's ``station`` becomes the new one, which then sees the whole
record with its history; the former station keeps no access (it no longer has
the person in care; its own writes stay in the audit trail and the timeline,
and the new station sees them).
"""

from __future__ import annotations

from typing import Any

from rescue import clock
from rescue.cases.events import record_event
from rescue.cases.tables import IN_CARE_STATUSES, TERMINAL_STATUSES, Case, CaseStatus
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.i18n import _, label
from rescue.permissions import Participation
from rescue.schemas import stored_id
from rescue.stations.schemas import (
    CaseSummaryOut,
    IncomingOut,
    NoticeElsewhereOut,
    TransferCreate,
    TransferOut,
)
from rescue.stations.tables import CaseTransfer
from rescue.users.services import Principal

__all__ = [
    "case_summary",
    "incoming",
    "known_stations",
    "list_transfers",
    "notices_elsewhere",
    "participation",
    "takes_part",
    "transfer_case",
]


async def known_stations() -> list[str]:
    """Stations using this service: those with at least one active station_staff
    account (a station without staff here cannot receive, countersign or take a
    transfer). Sorted."""
    from rescue.users.tables import Role, User

    rows = await User.select(User.station).where(
        (User.active == True)  # noqa: E712 - Piccolo column comparison
        & (User.role == Role.station_staff.value)
        & (User.station != "")
    )
    return sorted({r["station"] for r in rows})


async def _case_of_params(path_params: dict[str, Any]) -> tuple[int | None, int | None]:
    """(case id, candidate id) a route's path points at."""
    from rescue.escorts.tables import Handover
    from rescue.matching.tables import Candidate

    if (case_id := stored_id(path_params.get("case_id"))) is not None:
        return case_id, None
    if (candidate_id := stored_id(path_params.get("candidate_id"))) is not None:
        row = await Candidate.select(Candidate.case).where(Candidate.id == candidate_id).first()
        return (row["case"] if row else None), candidate_id
    if (handover_id := stored_id(path_params.get("handover_id"))) is not None:
        row = await Handover.select(Handover.case).where(Handover.id == handover_id).first()
        return (row["case"] if row else None), None
    return None, None


async def _notice_station_of(
    stations: list[str], case_id: int | None, candidate_id: int | None
) -> bool:
    from rescue.matching.tables import Candidate, CandidateStatus

    query = Candidate.exists().where(
        Candidate.notice.station.is_in(stations)
        & (Candidate.status != CandidateStatus.rejected.value)
    )
    if candidate_id is not None:
        return bool(await query.where(Candidate.id == candidate_id))
    if case_id is not None:
        return bool(await query.where(Candidate.case == case_id))
    return False


async def _destination_of(stations: list[str], case_id: int | None) -> bool:
    from rescue.escorts.tables import ReturnPlan

    if case_id is None:
        return False
    return bool(
        await ReturnPlan.exists().where(
            (ReturnPlan.case == case_id) & ReturnPlan.destination_station.is_in(stations)
        )
    )


async def participation(
    principal: Principal, *, case_id: int | None, candidate_id: int | None = None
) -> list[Participation]:
    """How the caller's stations take part in a case (or a candidate) of another
    station; empty when they do not (admins see everything anyway)."""
    stations = [s for s in (principal.visible_stations() or [principal.station]) if s]
    if not stations:
        return []
    found = []
    if await _notice_station_of(stations, case_id, candidate_id):
        found.append(Participation.notice_station)
    if candidate_id is None and await _destination_of(stations, case_id):
        found.append(Participation.destination_station)
    return found


async def _compared_photo(principal: Principal, photo_id: int) -> bool:
    """Whether ``photo_id`` is the case photo of a (not rejected) candidate for a
    notice of the caller's stations."""
    from rescue.matching.tables import Candidate, CandidateStatus

    stations = [s for s in (principal.visible_stations() or [principal.station]) if s]
    return bool(
        stations
        and await Candidate.exists().where(
            (Candidate.case_photo == photo_id)
            & Candidate.notice.station.is_in(stations)
            & (Candidate.status != CandidateStatus.rejected.value)
        )
    )


async def takes_part(
    principal: Principal, path_params: dict[str, Any], participants: tuple[Participation, ...]
) -> bool:
    """Whether the caller's station takes part, in one of the ``participants``
    ways, in the case (candidate, handover) the path names. A candidate route
    admits the notice's station of *that* candidate only; a photo route only the
    notice's station of a candidate compared on that photo (the comparison page)."""
    if (photo_id := stored_id(path_params.get("photo_id"))) is not None:
        return Participation.notice_station in participants and await _compared_photo(
            principal, photo_id
        )
    case_id, candidate_id = await _case_of_params(path_params)
    if case_id is None and candidate_id is None:
        return False
    found = await participation(principal, case_id=case_id, candidate_id=candidate_id)
    return any(p in participants for p in found)


async def case_summary(*, case_id: int, by: Principal) -> CaseSummaryOut:
    """The summary of a case for a station taking part (or its own station).

    Raises:
        NotFound: no such case.
    """
    from rescue.cases.flows import custody_only

    row = await Case.select().where(Case.id == case_id).first()
    if row is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    if by.sees_station(row["station"]):
        why = ["own"]
    else:
        why = [p.value for p in await participation(by, case_id=case_id)]
    return CaseSummaryOut(
        id=row["id"],
        reference=row["reference"],
        station=row["station"],
        status=CaseStatus(row["status"]),
        sex=row["sex"],
        estimated_age=row["estimated_age"],
        age_low=row["age_low"],
        age_high=row["age_high"],
        height_cm=row["height_cm"],
        found_at=row["found_at"],
        found_place=row["found_place"],
        dialect=row["dialect"],
        admitted_at=row["admitted_at"],
        custody_only=custody_only(row),
        participation=why,
    )


async def incoming(*, stations: list[str] | None) -> list[IncomingOut]:
    """Persons other stations plan to hand over to ``stations`` (接收), still in
    care there (their case not closed), oldest plan first. ``None``: every
    plan naming a destination station."""
    from rescue.escorts.tables import Handover, ReturnPlan

    query = ReturnPlan.select(
        ReturnPlan.case,
        ReturnPlan.case.reference,
        ReturnPlan.case.station,
        ReturnPlan.case.status,
        ReturnPlan.destination,
        ReturnPlan.destination_station,
        ReturnPlan.planned_on,
    ).where(
        ReturnPlan.destination_station.is_not_null()
        & ReturnPlan.case.status.is_in([s.value for s in IN_CARE_STATUSES])
    )
    if stations is not None:
        query = query.where(ReturnPlan.destination_station.is_in(stations or [""]))
    out = []
    for r in await query.order_by(ReturnPlan.planned_on):
        if stations is not None and r["case.station"] in stations:
            continue
        handovers = (
            await Handover.select(Handover.id, Handover.received_at, Handover.countersigned_at)
            .where(Handover.case == r["case"])
            .order_by(Handover.id)
        )
        out.append(
            IncomingOut(
                case_id=r["case"],
                reference=r["case.reference"],
                from_station=r["case.station"],
                status=CaseStatus(r["case.status"]),
                destination=r["destination"],
                planned_on=r["planned_on"],
                handover_ids=[h["id"] for h in handovers],
                received=any(h["received_at"] is not None for h in handovers),
                countersigned=any(h["countersigned_at"] is not None for h in handovers),
            )
        )
    return out


async def notices_elsewhere(*, stations: list[str]) -> list[NoticeElsewhereOut]:
    """Candidates (not rejected) on other stations' cases for notices registered
    by ``stations``, best score first."""
    from rescue.matching.tables import Candidate, CandidateStatus

    rows = (
        await Candidate.select(
            Candidate.id,
            Candidate.notice,
            Candidate.notice.name,
            Candidate.case,
            Candidate.case.reference,
            Candidate.case.station,
            Candidate.status,
            Candidate.score,
        )
        .where(
            Candidate.notice.station.is_in(stations or [""])
            & Candidate.case.is_not_null()
            & Candidate.case.station.not_in(stations or [""])
            & (Candidate.status != CandidateStatus.rejected.value)
        )
        .order_by(Candidate.score, ascending=False)
        .limit(200)
    )
    return [
        NoticeElsewhereOut(
            candidate_id=r["id"],
            notice_id=r["notice"],
            notice_name=r["notice.name"],
            case_id=r["case"],
            case_reference=r["case.reference"],
            case_station=r["case.station"],
            status=r["status"],
            score=r["score"],
        )
        for r in rows
    ]


def _transfer_out(r: dict[str, Any]) -> TransferOut:
    return TransferOut(
        id=r["id"],
        case_id=r["case"],
        from_station=r["from_station"],
        to_station=r["to_station"],
        reason=r["reason"],
        transferred_on=r["transferred_on"],
        recorded_by=r["recorded_by"],
        created_at=r["created_at"],
    )


async def transfer_case(*, case_id: int, data: TransferCreate, by: Principal) -> TransferOut:
    """转送: the person in care moves to ``data.to_station``; the case (with its
    whole history: placements, search actions, photos, candidates, timeline,
    audit) now belongs to that station. Immediate (see the module docstring).
    A ``transferred`` event goes on the timeline. Deadlines follow the new
    station's rules at once (rescue.alerts reads the case's station each time).

    Raises:
        NotFound: no such case.
        Conflict: the case is closed (离站), or already at that station.
        InvalidInput: unknown station (``accepted``: the stations using this
            service), empty reason, date in the future or before admission.
    """
    from rescue.cases.stay import stay_of

    to_station = data.to_station.strip()
    reason = data.reason.strip()
    if not reason:
        raise InvalidInput(_("reason must not be empty"), accepted=_("1 to 2000 characters"))
    stations = await known_stations()
    if to_station not in stations:
        raise InvalidInput(
            _("{station!r} is not a station using this service", station=to_station),
            accepted=stations,
        )
    async with Case._meta.db.transaction():
        row = await Case.select().where(Case.id == case_id).first()
        if row is None:
            raise NotFound(_("case {case_id} does not exist", case_id=case_id))
        status = CaseStatus(row["status"])
        if status in TERMINAL_STATUSES:
            raise Conflict(
                _("case {case_id} is closed ({status})", case_id=case_id, status=label(status)),
                current=status.value,
            )
        if row["station"] == to_station:
            raise Conflict(
                _("case {case_id} is already at {station}", case_id=case_id, station=to_station),
                accepted=[s for s in stations if s != to_station],
            )
        if data.transferred_on > clock.today():
            raise InvalidInput(
                _("transferred_on is in the future"), accepted=_("a date on or before today")
            )
        stay = await stay_of(case_id=case_id)
        stay.check_after(data.transferred_on, "transferred_on", stay.admitted_at, _("admission"))
        rows = await CaseTransfer.insert(
            CaseTransfer(
                case=case_id,
                from_station=row["station"],
                to_station=to_station,
                reason=reason,
                transferred_on=data.transferred_on,
                recorded_by=by.user_id,
                created_at=clock.now(),
            )
        ).returning(CaseTransfer.id)
        await Case.update({Case.station: to_station, Case.updated_at: clock.now()}).where(
            Case.id == case_id
        )
        await record_event(
            case_id=case_id,
            kind="transferred",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=reason,
            data={
                "transfer_id": rows[0]["id"],
                "from_station": row["station"],
                "to_station": to_station,
                "transferred_on": data.transferred_on.isoformat(),
            },
        )
    done = await CaseTransfer.select().where(CaseTransfer.id == rows[0]["id"]).first()
    assert done is not None
    return _transfer_out(done)


async def list_transfers(*, case_id: int) -> list[TransferOut]:
    """A case's transfers (转送), oldest first. Raises NotFound."""
    if not await Case.exists().where(Case.id == case_id):
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    rows = await CaseTransfer.select().where(CaseTransfer.case == case_id).order_by(CaseTransfer.id)
    return [_transfer_out(r) for r in rows]
