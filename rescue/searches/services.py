"""Identity-search actions: announcements, DNA requests and results, police checks,
interviews, and the stranded person's care decision and extension filing.

Each is a structured record with its date, and an event on the case timeline.
They satisfy deadlines (rescue.alerts): 2015 意见 — announcement within 24 h,
DNA request within 7 working days, DNA result within a month of the request;
2014 规程 — extension of assistance over 10 days filed (备案).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import msgspec

from rescue import clock
from rescue.cases.events import record_event
from rescue.cases.stay import Stay, stay_of
from rescue.cases.tables import Case
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.i18n import _, label
from rescue.searches.schemas import (
    AnnouncementCreate,
    DnaRequestCreate,
    DnaResultCreate,
    FilingCreate,
    InterviewCreate,
    PoliceCheckCreate,
    SearchActionOut,
    VoidRequest,
)
from rescue.searches.tables import AnnouncementChannel, SearchAction, SearchKind
from rescue.users.services import Principal

__all__ = [
    "list_actions",
    "record_announcement",
    "record_dna_request",
    "record_dna_result",
    "record_filing",
    "record_interview",
    "record_police_check",
    "void_action",
]


#: The request field holding each kind's date (for messages).
_date_names = {
    SearchKind.announcement: "published_on",
    SearchKind.dna_request: "requested_on",
    SearchKind.police_check: "checked_on",
    SearchKind.interview: "held_on",
    SearchKind.care_decision: "on_date",
    SearchKind.extension_filing: "on_date",
}


def _out(r: dict[str, Any]) -> SearchActionOut:
    clues = r["clues"]
    if isinstance(clues, str):
        clues = json.loads(clues or "{}")
    return SearchActionOut(
        id=r["id"],
        case_id=r["case"],
        kind=r["kind"],
        on_date=r["on_date"],
        channel=r["channel"],
        reference=r["reference"],
        police_unit=r["police_unit"],
        sample_id=r["sample_id"],
        check_type=r["check_type"],
        result_on=r["result_on"],
        result=r["result"],
        clues=clues,
        notes=r["notes"],
        recorded_by=r["recorded_by"],
        created_at=r["created_at"],
        voided_at=r["voided_at"],
        voided_by=r["voided_by"],
        void_reason=r["void_reason"],
        replaced_by=r["replaced_by"],
        announcement_id=r["announcement"],
        entered_later=bool(r.get("entered_later")),
    )


def _not_future(day: date, name: str) -> None:
    """Refuse a date after the station's today (rescue.clock.today: between 00:00
    and 08:00 China time, UTC's date is still yesterday)."""
    if day > clock.today():
        raise InvalidInput(
            _("{name} {day} is in the future", name=name, day=day.isoformat()),
            accepted=_("a date up to today ({today}, station's date)", today=clock.today()),
        )


async def _record(
    *, case_id: int, kind: SearchKind, by: Principal, summary: str, **columns: Any
) -> SearchActionOut:
    async with Case._meta.db.transaction():
        stay = await stay_of(case_id=case_id)
        stay.check_day(columns["on_date"], _date_names[kind])
        rows = await SearchAction.insert(
            SearchAction(case=case_id, kind=kind.value, recorded_by=by.user_id, **columns)
        ).returning(SearchAction.id)
        action_id = int(rows[0]["id"])
        await record_event(
            case_id=case_id,
            kind=kind.value,
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=summary,
            data={"search_action_id": action_id},
        )
    row = await SearchAction.select().where(SearchAction.id == action_id).first()
    assert row is not None
    return _out(row)


async def record_announcement(
    *, case_id: int, data: AnnouncementCreate, by: Principal
) -> SearchActionOut:
    """Record a family-search announcement published on another channel
    (全国救助寻亲网, 头条, newspaper, tv): it is recorded against the case's
    寻亲公告 (``announcement_id``) when one exists. Publishing the 寻亲公告 here
    records its own entry (rescue.announcements.services.publish).

    Raises:
        NotFound: no such case.
        InvalidInput: a future date or outside the stay; channel 本站寻亲公告
            (recorded by publishing, not by hand).
    """
    from rescue.announcements.tables import Announcement

    if data.channel == AnnouncementChannel.this_service:
        raise InvalidInput(
            _("the announcement here is recorded by publishing it, not by hand"),
            accepted=f"POST /api/cases/{case_id}/announcement (publish)",
        )
    _not_future(data.published_on, "published_on")
    own = await Announcement.select(Announcement.id).where(Announcement.case == case_id).first()
    return await _record(
        announcement=own["id"] if own else None,
        case_id=case_id,
        kind=SearchKind.announcement,
        by=by,
        summary=_(
            "announcement on {channel} {reference}",
            channel=label(data.channel),
            reference=data.reference,
        ).strip(),
        on_date=data.published_on,
        channel=data.channel.value,
        reference=data.reference,
        notes=data.notes,
    )


async def record_dna_request(
    *, case_id: int, data: DnaRequestCreate, by: Principal
) -> SearchActionOut:
    """Record a DNA request to the police. Raises NotFound, InvalidInput."""
    _not_future(data.requested_on, "requested_on")
    return await _record(
        case_id=case_id,
        kind=SearchKind.dna_request,
        by=by,
        summary=_("DNA requested from {unit}", unit=data.police_unit),
        on_date=data.requested_on,
        police_unit=data.police_unit,
        sample_id=data.sample_id,
        notes=data.notes,
    )


async def record_dna_result(
    *, action_id: int, data: DnaResultCreate, by: Principal
) -> SearchActionOut:
    """Record the result of DNA request ``action_id`` (clears its ``dna_result`` item).

    Raises:
        NotFound: no such DNA request.
        Conflict: a result is already recorded (results are never overwritten).
        InvalidInput: result date before the request or in the future.
    """
    row = await SearchAction.select().where(SearchAction.id == action_id).first()
    if row is None or row["kind"] != SearchKind.dna_request:
        raise NotFound(_("DNA request {action_id} does not exist", action_id=action_id))
    if row["voided_at"] is not None:
        raise Conflict(_("search action {action_id} is already voided", action_id=action_id))
    if row["result_on"] is not None:
        raise Conflict(
            _(
                "DNA request {action_id} already has a result ({result_on})",
                action_id=action_id,
                result_on=row["result_on"],
            )
        )
    _not_future(data.result_on, "result_on")
    # A result may come after the person left: it is bounded by its request only.
    Stay.check_after(data.result_on, "result_on", row["on_date"], _("the request date"))
    values: dict[Any, Any] = {
        SearchAction.result_on: data.result_on,
        SearchAction.result: data.result,
    }
    if data.sample_id is not None:
        values[SearchAction.sample_id] = data.sample_id
    async with SearchAction._meta.db.transaction():
        await SearchAction.update(values).where(SearchAction.id == action_id)
        await record_event(
            case_id=row["case"],
            kind="dna_result",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.result,
            data={"search_action_id": action_id, "result_on": data.result_on.isoformat()},
        )
    updated = await SearchAction.select().where(SearchAction.id == action_id).first()
    assert updated is not None
    return _out(updated)


async def record_police_check(
    *, case_id: int, data: PoliceCheckCreate, by: Principal
) -> SearchActionOut:
    """Record a fingerprint or face-comparison check. Raises NotFound, InvalidInput."""
    _not_future(data.checked_on, "checked_on")
    return await _record(
        case_id=case_id,
        kind=SearchKind.police_check,
        by=by,
        summary=_("{check}: {result}", check=label(data.check_type), result=data.result).strip(
            ": ：",
        ),
        on_date=data.checked_on,
        check_type=data.check_type.value,
        police_unit=data.police_unit,
        result=data.result,
    )


async def record_interview(
    *, case_id: int, data: InterviewCreate, by: Principal
) -> SearchActionOut:
    """Record an interview and its clues. Raises NotFound, InvalidInput."""
    _not_future(data.held_on, "held_on")
    return await _record(
        case_id=case_id,
        kind=SearchKind.interview,
        by=by,
        summary=_("interview"),
        on_date=data.held_on,
        clues=msgspec.to_builtins(data.clues),
        notes=data.notes,
    )


async def record_filing(*, case_id: int, data: FilingCreate, by: Principal) -> SearchActionOut:
    """Record a care decision or an extension filing (备案) for a stranded person.

    Raises:
        InvalidInput: ``kind`` is not care_decision or extension_filing; future date.
        NotFound: no such case.
    """
    if data.kind not in (SearchKind.care_decision, SearchKind.extension_filing):
        raise InvalidInput(
            _("kind {kind} is not a filing", kind=label(data.kind)),
            accepted=[SearchKind.care_decision.value, SearchKind.extension_filing.value],
        )
    _not_future(data.on_date, "on_date")
    return await _record(
        case_id=case_id,
        kind=data.kind,
        by=by,
        summary=f"{label(data.kind)} {data.reference}".strip(),
        on_date=data.on_date,
        reference=data.reference,
        notes=data.notes,
    )


async def list_actions(*, case_id: int, kind: SearchKind | None = None) -> list[SearchActionOut]:
    """A case's actions, oldest first. Raises NotFound."""
    if not await Case.exists().where(Case.id == case_id):
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    query = SearchAction.select().where(SearchAction.case == case_id)
    if kind is not None:
        query = query.where(SearchAction.kind == kind.value)
    return [_out(r) for r in await query.order_by(SearchAction.on_date, SearchAction.id)]


async def void_action(*, action_id: int, data: VoidRequest, by: Principal) -> SearchActionOut:
    """Void (作废) a wrong search action with a reason. The record stays (append-only)
    and is listed as voided; it no longer satisfies a deadline. Staff enter the
    right one as a new record (optionally named in ``replaced_by``). Both appear on
    the timeline: the new record's event and an ``entry_voided`` event.

    Raises:
        NotFound: no such action.
        Conflict: already voided.
        InvalidInput: ``replaced_by`` is not another live action of the same case
            and kind.
    """
    async with SearchAction._meta.db.transaction():
        row = await SearchAction.select().where(SearchAction.id == action_id).first()
        if row is None:
            raise NotFound(_("search action {action_id} does not exist", action_id=action_id))
        if row["voided_at"] is not None:
            raise Conflict(_("search action {action_id} is already voided", action_id=action_id))
        if data.replaced_by is not None:
            other = await SearchAction.select().where(SearchAction.id == data.replaced_by).first()
            if (
                other is None
                or other["id"] == action_id
                or other["case"] != row["case"]
                or other["kind"] != row["kind"]
                or other["voided_at"] is not None
            ):
                raise InvalidInput(
                    _(
                        "replaced_by {other} is not another valid {kind} of this case",
                        other=data.replaced_by,
                        kind=row["kind"],
                    ),
                    accepted="the id of the corrected entry (same case and kind)",
                )
        await SearchAction.update(
            {
                SearchAction.voided_at: clock.now(),
                SearchAction.voided_by: by.user_id,
                SearchAction.void_reason: data.reason,
                SearchAction.replaced_by: data.replaced_by,
            }
        ).where(SearchAction.id == action_id)
        await record_event(
            case_id=row["case"],
            kind="entry_voided",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=data.reason,
            data={
                "search_action_id": action_id,
                "entry_kind": row["kind"],
                "on_date": row["on_date"].isoformat(),
                "replaced_by": data.replaced_by,
            },
        )
    updated = await SearchAction.select().where(SearchAction.id == action_id).first()
    assert updated is not None
    return _out(updated)
