"""Case status workflow: every allowed transition, and who may trigger it, in one table.

Sources: 救助管理机构工作规程 (民政部 2014) — admission, identity check, leaving
(离站) categories; 民政部·公安部《关于加强生活无着的流浪乞讨人员身份查询和照料
安置工作的意见》(2015) — identity search, stranded persons (滞留), settlement
(落户安置) with the search continuing; 民发〔2020〕14号 — long-term stranded
persons' settlement. See docs/workflow.md.

A transition not in :data:`TRANSITIONS` answers 409 naming the current status
and the allowed next ones. Each change appends a ``status_changed`` event to the
case timeline, in the same transaction as the status update.

Rules checked in the same transaction (409 with ``current``/``allowed``/``requires``):

- A person possibly under the custody age (``CUSTODY_AGE``, default 18:
  未成年人保护法 art. 2) or flagged as lacking capacity leaves only into custody:
  never ``left_self`` or ``terminated``; handed to a relative only when the
  relationship is established (a confirmed candidate, or recorded proof — 户口簿,
  派出所证明, DNA result — with the document attached) and a second staff member
  approved the handover; otherwise only to the police, the origin's station or a
  minors' protection institution (未成年人保护法 art. 92–96; 2014 规程 离站).
- ``transferred_minor`` only for a person who is possibly a minor (by age, not
  by the capacity flag).
- ``escorted_home``, ``handed_to_family`` and ``collected_by_origin`` require a
  handover record (交接) with the receiver's identity document checked; family for
  ``handed_to_family``, the origin's station for ``collected_by_origin``.
- ``escorted_home`` and ``collected_by_origin`` when the return plan names a
  destination station using this service (``destination_station``, another
  station than the case's): the handover must be countersigned (会签) by that
  station's staff after it recorded the reception (接收)
  (:data:`COUNTERSIGN_REQUIRED`). Sources (our reading, no article numbers):
  2003 细则 — the station helps the person return home with the civil-affairs
  side of the destination, which receives them; 2014 规程 护送返乡 — the person
  is handed over (交接) to the receiving party on a sheet signed by both sides.
  The countersignature in the service is our form of the receiving side's
  signature. A destination that is not a station of this service keeps the
  rule above (a handover record with the sheet signed on paper).
- ``return_planned`` requires a return plan; ``settled`` requires a current
  welfare-home placement (落户安置 is at a 福利院).
- ``stranded`` requires the stay to be over the normal term (10 days, the
  ``stranded`` rule of the station's deadline table; 2015 意见, 2003 细则).
- ``settled`` requires the eligibility period to be over (3 months, the
  ``settlement_eligible`` rule) or a recorded settlement approval with its
  document (``POST /api/cases/{id}/settlement-approvals``).
- ``left_self`` (自行离站) requires ``data.ticket``: the ticket or travel voucher
  the station gave (救助管理机构工作规程: 自行离站 with 乘车凭证); 400 without it.
- Leaving (any terminal status) ends the current placement.
- ``identified`` by confirming a notice fills the identity found (confirmed
  name, relatives' contact) from that notice (an ``identity_updated`` event).
- ``identified`` reached from ``settled`` creates a task for the police liaison to
  cancel the collective household registration (集体户口注销).
- A change entered later (历史补录, ``transition(at=...)``): the same table and
  rules, judged at ``at``; not before the admission or the previous change, not
  in the future; a leaving not before the case's last placement starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rescue import clock
from rescue.announcements.services import unpublish_for_status
from rescue.cases.events import record_event
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus, LeavingCategory
from rescue.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from rescue.escorts.tables import Handover, LiaisonTask, ReceivingParty, ReturnPlan, TaskKind
from rescue.i18n import _, label
from rescue.placements.tables import Placement, PlacementKind
from rescue.settings import get_settings
from rescue.users.services import Principal
from rescue.users.tables import Role

__all__ = [
    "COUNTERSIGN_REQUIRED",
    "CUSTODY_REFUSED",
    "HANDOVER_REQUIRED",
    "LEAVING_CATEGORY",
    "TRANSITIONS",
    "Transition",
    "allowed_next",
    "custody_age",
    "custody_only",
    "handover_qualifies",
    "not_yet",
    "possibly_minor",
    "transition",
]

S = CaseStatus
STAFF = frozenset({Role.station_staff, Role.admin})
REVIEW = frozenset({Role.reviewer})

#: Leaving outcomes reachable from any status still in care.
_LEAVING = (
    S.left_self,
    S.left_unauthorised,
    S.terminated,
    S.deceased,
    S.transferred_minor,
    S.placed,
)


@dataclass(frozen=True)
class Transition:
    source: CaseStatus
    target: CaseStatus
    roles: frozenset[Role]
    note: str = ""
    #: The system (``by=None``: deadline job) may trigger it too.
    system: bool = False


def _build() -> dict[tuple[CaseStatus, CaseStatus], Transition]:
    table: list[Transition] = [
        Transition(S.admitted, S.searching, STAFF, "identity unknown after the quick check"),
        Transition(
            S.searching, S.stranded, STAFF, "over 10 days in care, still unidentified", True
        ),
        Transition(S.admitted, S.stranded, STAFF, "over 10 days in care, still unidentified", True),
        Transition(S.stranded, S.settlement_pending, STAFF, "settlement proposed"),
        Transition(S.settlement_pending, S.settled, STAFF, "settled at a welfare home"),
        Transition(S.settlement_pending, S.stranded, STAFF, "settlement withdrawn"),
        Transition(S.identified, S.return_planned, STAFF, "return plan recorded"),
        Transition(S.return_planned, S.escorted_home, STAFF, "handed over at destination"),
        Transition(S.return_planned, S.handed_to_family, STAFF, "collected by family"),
        Transition(S.return_planned, S.collected_by_origin, STAFF, "collected by origin"),
        Transition(S.identified, S.handed_to_family, STAFF, "collected by family"),
        Transition(S.identified, S.collected_by_origin, STAFF, "collected by origin"),
        Transition(S.admitted, S.handed_to_family, STAFF, "family came at once"),
        Transition(S.admitted, S.left_self, STAFF, "identity known, leaves with ticket"),
    ]
    # Identification: only a reviewer, by confirming a candidate.
    for source in (S.admitted, S.searching, S.stranded, S.settlement_pending, S.settled):
        table.append(Transition(source, S.identified, REVIEW, "candidate confirmed"))
    for source in (s for s in CaseStatus if s not in TERMINAL_STATUSES):
        for target in _LEAVING:
            if source == S.settled and target == S.placed:
                continue
            table.append(Transition(source, target, STAFF))
    return {(t.source, t.target): t for t in table}


TRANSITIONS: dict[tuple[CaseStatus, CaseStatus], Transition] = _build()


#: Each leaving status in the MCA statistical 离站方式 categories (民政部救助管理
#: 统计报表): monthly reports count leavings by these. 流出地接回 counts as 接领
#: (collected by the origin's station); a minor transferred to a minors' protection
#: institution (未成年人救助保护机构) is 其他 in the station's own statistics.
LEAVING_CATEGORY: dict[CaseStatus, LeavingCategory] = {
    S.placed: LeavingCategory.placement,
    S.left_self: LeavingCategory.ticket_self_return,
    S.terminated: LeavingCategory.terminated,
    S.left_unauthorised: LeavingCategory.left_unauthorised,
    S.escorted_home: LeavingCategory.escorted_return,
    S.handed_to_family: LeavingCategory.collected_return,
    S.collected_by_origin: LeavingCategory.collected_return,
    S.deceased: LeavingCategory.deceased,
    S.transferred_minor: LeavingCategory.other,
}

#: Leaving outcomes refused to a person who may leave only into custody.
CUSTODY_REFUSED = frozenset({S.left_self, S.terminated})
#: Outcomes that close the case only with a handover record, and the receiving
#: party each needs (None: either).
HANDOVER_REQUIRED: dict[CaseStatus, ReceivingParty | None] = {
    S.escorted_home: None,
    S.handed_to_family: ReceivingParty.family,
    S.collected_by_origin: ReceivingParty.origin_station,
}
#: Outcomes that, when the return plan names a destination station of this
#: service, need that station's countersignature on the handover (2003 细则;
#: 2014 规程 护送返乡, 交接 signed by both sides; our reading).
COUNTERSIGN_REQUIRED = frozenset({S.escorted_home, S.collected_by_origin})
#: Parties other than family who may receive a person leaving only into custody.
CUSTODIAL_PARTIES = frozenset(
    {ReceivingParty.origin_station, ReceivingParty.police, ReceivingParty.minors_institution}
)


def custody_age(station: str) -> int:
    """The age under which a person leaves only into custody at ``station``
    (``CUSTODY_AGE``/``CUSTODY_AGE_BY_STATION``; default 18, 未成年人保护法 art. 2)."""
    return get_settings().custody.age_for(station or "")


def _age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def possibly_minor(case: dict[str, Any], today: date | None = None) -> bool:
    """Whether the person may be under the station's custody age (a minor).

    The lowest estimate decides (safety first): the estimated date of birth, or
    ``estimated_age`` or ``age_low`` under :func:`custody_age`. ``today`` is the
    station's date (:func:`rescue.clock.today`).
    """
    limit = custody_age(case.get("station") or "")
    today = today or clock.today()
    birth = case.get("birth_date_estimate")
    if birth is not None and _age_on(birth, today) < limit:
        return True
    return any(case.get(k) is not None and case[k] < limit for k in ("estimated_age", "age_low"))


def custody_only(case: dict[str, Any], today: date | None = None) -> bool:
    """Whether the person may leave only into custody: flagged ``lacks_capacity``
    or :func:`possibly_minor`."""
    return bool(case.get("lacks_capacity")) or possibly_minor(case, today)


def handover_qualifies(handover: dict[str, Any], *, custody: bool) -> bool:
    """Whether a handover record lets the person go (identity document checked;
    for a person leaving only into custody: a custodial party, or family with the
    relationship established and a second staff member's approval)."""
    if not handover["id_document_checked"]:
        return False
    if not custody:
        return True
    party = ReceivingParty(handover["receiving_party"])
    if party in CUSTODIAL_PARTIES:
        return True
    return handover["relationship_basis"] is not None and handover["approved_by"] is not None


def allowed_next(current: CaseStatus, *, custody: bool = False) -> list[CaseStatus]:
    """Statuses reachable from ``current``, in declaration order (without the
    non-custodial exits when ``custody``)."""
    return [
        target
        for (source, target) in TRANSITIONS
        if source == current and not (custody and target in CUSTODY_REFUSED)
    ]


async def _check_rules(
    case: dict[str, Any], current: CaseStatus, to: CaseStatus, moment: datetime
) -> None:
    """Refuse ``to`` unless the rules of the module docstring hold at ``moment``
    (now, or the historic moment of an entry recorded later)."""
    case_id = case["id"]
    shown = case.get("reference") or case_id  # what staff call the case (2026-0001)
    custody = custody_only(case)

    def refuse(detail: str, requires: str) -> Conflict:
        return Conflict(
            detail,
            current=current.value,
            allowed=[s.value for s in allowed_next(current, custody=custody)],
            requires=requires,
        )

    if to in CUSTODY_REFUSED and custody:
        raise refuse(
            _(
                "case {case_id} is possibly under {age} or lacks capacity; they may leave "
                "only into custody, not {status}",
                case_id=shown,
                age=custody_age(case.get("station") or ""),
                status=label(to),
            ),
            "handed_to_family, escorted_home, collected_by_origin or transferred_minor",
        )
    if to == S.transferred_minor and not possibly_minor(case):
        raise refuse(
            _(
                "case {case_id} is not a minor (no age estimate under {age}); only minors "
                "are transferred to a minors' protection institution",
                case_id=shown,
                age=custody_age(case.get("station") or ""),
            ),
            "an age estimate under the custody age (PATCH the case) or another outcome",
        )
    if to in HANDOVER_REQUIRED:
        party = HANDOVER_REQUIRED[to]
        query = Handover.select().where(Handover.case == case_id)
        if party is not None:
            query = query.where(Handover.receiving_party == party.value)
        handovers = await query
        if not any(handover_qualifies(h, custody=custody) for h in handovers):
            receiver = label(party) if party else _("family or origin station")
            if custody and handovers:
                detail = _(
                    "case {case_id} may leave only into custody: a handover to family needs "
                    "the relationship established (confirmed candidate or proof document) "
                    "and a second staff member's approval",
                    case_id=shown,
                )
                requires = "POST /api/handovers/{id}/approve by another staff member"
            else:
                detail = _(
                    "case {case_id} cannot become {status} without a handover record "
                    "(receiver: {receiver}, identity document checked)",
                    case_id=shown,
                    status=label(to),
                    receiver=receiver,
                )
                requires = f"POST /api/cases/{case_id}/handover first"
            raise refuse(detail, requires)
    if to in COUNTERSIGN_REQUIRED:
        plan = (
            await ReturnPlan.select(ReturnPlan.destination_station)
            .where(ReturnPlan.case == case_id)
            .first()
        )
        destination = plan["destination_station"] if plan else None
        if destination and destination != case.get("station"):
            countersigned = await Handover.exists().where(
                (Handover.case == case_id) & Handover.countersigned_at.is_not_null()
            )
            if not countersigned:
                raise refuse(
                    _(
                        "case {case_id} is handed over to the station {station}: it closes "
                        "only after that station recorded the reception and countersigned "
                        "the handover",
                        case_id=shown,
                        station=destination,
                    ),
                    "POST /api/handovers/{id}/reception and POST /api/handovers/{id}/countersign "
                    f"by staff of {destination}",
                )
    if to == S.return_planned and not await ReturnPlan.exists().where(ReturnPlan.case == case_id):
        raise refuse(
            _("case {case_id} has no return plan", case_id=shown),
            f"POST /api/cases/{case_id}/return-plan (it moves the case itself)",
        )
    if to in (S.stranded, S.settled):
        from rescue.alerts.rules import AlertKind, rules_for
        from rescue.placements.tables import SettlementApproval

        kind = AlertKind.stranded if to == S.stranded else AlertKind.settlement_eligible
        rule = rules_for(case["station"], get_settings().deadlines.overrides)[kind]
        due = rule.period.after(case["admitted_at"])
        approved = to == S.settled and await SettlementApproval.exists().where(
            SettlementApproval.case == case_id
        )
        if due > moment and not approved:
            raise refuse(
                _(
                    "case {case_id} can become {status} only after {period} in care "
                    "(from {due}); admitted {admitted}",
                    case_id=shown,
                    status=label(to),
                    period=f"{rule.period.amount} {label(rule.period.unit)}",
                    due=clock.local(due).strftime("%Y-%m-%d %H:%M"),
                    admitted=clock.local(case["admitted_at"]).strftime("%Y-%m-%d %H:%M"),
                ),
                f"wait until {due.isoformat()}"
                + (
                    f", or POST /api/cases/{case_id}/settlement-approvals (approval document)"
                    if to == S.settled
                    else ""
                ),
            )
    if to == S.settled:
        current_placement = (
            await Placement.select(Placement.kind)
            .where(
                (Placement.case == case_id)
                & (Placement.started_at <= moment)
                & (Placement.ended_at.is_null() | (Placement.ended_at > moment))
            )
            .first()
        )
        if current_placement is None or current_placement["kind"] != PlacementKind.welfare_home:
            raise refuse(
                _(
                    "case {case_id} can be settled only while placed at a welfare home",
                    case_id=shown,
                ),
                f"POST /api/cases/{case_id}/placements with kind welfare_home first",
            )


async def not_yet(case: dict[str, Any]) -> dict[CaseStatus, str]:
    """Moves the table allows from ``case``'s status now (:func:`allowed_next`)
    whose rule is not met yet, each with why (the detail the move would answer
    409 with: a handover first, a return plan, the stranded period, a
    welfare-home placement, custody...). Pages show the why instead of a button
    that would fail. ``case``: the case's row (``Case.select()``). Input checked
    only when moving (``left_self``'s ticket) is not a rule here."""
    current = CaseStatus(case["status"])
    blocked: dict[CaseStatus, str] = {}
    for to in allowed_next(current, custody=custody_only(case)):
        try:
            await _check_rules(case, current, to, clock.now())
        except Conflict as exc:
            blocked[to] = exc.detail
    return blocked


async def _after(
    case_id: int,
    current: CaseStatus,
    to: CaseStatus,
    by: Principal | None,
    now: datetime,
    data: dict[str, object],
) -> None:
    actor_id = by.user_id if by else None
    actor_role = by.role.value if by else "system"
    if to in TERMINAL_STATUSES:
        ended = await (
            Placement.update({Placement.ended_at: now})
            .where(
                (Placement.case == case_id)
                & Placement.ended_at.is_null()
                & (Placement.started_at <= now)
            )
            .returning(Placement.id)
        )
        for row in ended:
            await record_event(
                case_id=case_id,
                kind="placement_ended",
                actor_id=actor_id,
                actor_role=actor_role,
                reason=_("case closed as {status}", status=label(to)),
                data={"placement_id": row["id"]},
            )
    notice_id = data.get("notice_id")
    if to == S.identified and isinstance(notice_id, int):
        from rescue.cases.services import fill_identity_from_notice

        await fill_identity_from_notice(case_id=case_id, notice_id=notice_id, by=by)
    if current == S.settled and to == S.identified:
        note = _(
            "identity confirmed for a settled person: cancel the collective household "
            "registration (集体户口注销)"
        )
        rows = await LiaisonTask.insert(
            LiaisonTask(case=case_id, kind=TaskKind.cancel_collective_household.value, note=note)
        ).returning(LiaisonTask.id)
        await record_event(
            case_id=case_id,
            kind="task_created",
            actor_id=actor_id,
            actor_role=actor_role,
            reason=note,
            data={"task_id": rows[0]["id"], "task": TaskKind.cancel_collective_household.value},
        )


async def transition(
    *,
    case_id: int,
    to: CaseStatus,
    by: Principal | None,
    reason: str,
    data: dict[str, object] | None = None,
    at: datetime | None = None,
) -> CaseStatus:
    """Move a case to ``to``; returns the previous status.

    Args:
        by: the caller; ``None`` is the system (deadline job), allowed only for
            transitions marked ``system`` (to ``stranded``).
        data: outcome details kept on the timeline event.
        at: a change recorded later (历史补录): when it happened. The same
            table and rules apply, judged at ``at`` (e.g. 3 months in care by
            then; a welfare-home placement at that moment); ``at`` must lie
            between the admission and now and not before the previous status
            change. The event is marked ``entered_later`` with ``occurred_at``.

    Raises:
        NotFound: no such case.
        Conflict: the transition is not allowed from the current status, or a rule
            in the module docstring is not met (409; body names ``current`` and
            ``allowed``, and ``requires`` for rules).
        PermissionDenied: the caller's role may not trigger this transition.
    """
    async with Case._meta.db.transaction():
        row = await Case.select().where(Case.id == case_id).first()
        if row is None:
            raise NotFound(_("case {case_id} does not exist", case_id=case_id))
        current = CaseStatus(row["status"])
        rule = TRANSITIONS.get((current, to))
        if rule is None:
            raise Conflict(
                _(
                    "case {case_id} is {current}; it cannot become {status}",
                    case_id=case_id,
                    current=label(current),
                    status=label(to),
                ),
                current=current.value,
                allowed=[s.value for s in allowed_next(current, custody=custody_only(row))],
            )
        if (by is None and not rule.system) or (by is not None and by.role not in rule.roles):
            raise PermissionDenied(
                _(
                    "role {role} may not move a case to {status}",
                    role=by.role.value if by else "system",
                    status=label(to),
                ),
                accepted=sorted(r.value for r in rule.roles),
            )
        now = clock.now()
        moment = now if at is None else await _historic_moment(row, at, now)
        if at is not None and to in TERMINAL_STATUSES:
            later = await Placement.exists().where(
                (Placement.case == case_id) & (Placement.started_at > moment)
            )
            if later:
                raise InvalidInput(
                    _(
                        "case {case_id} has placements starting after {at}; a leaving "
                        "entered later must come after them",
                        case_id=case_id,
                        at=clock.local(moment).isoformat(timespec="minutes"),
                    ),
                    accepted="occurred_at after the start of the case's last placement",
                )
        await _check_rules(row, current, to, moment)
        if to == S.left_self and not str((data or {}).get("ticket") or "").strip():
            raise InvalidInput(
                _(
                    "case {case_id} can leave on their own only with the ticket or travel "
                    "voucher the station gave (自行离站, 发放车票)",
                    case_id=case_id,
                ),
                accepted={"data": {"ticket": "ticket number and destination"}},
            )
        updated = (
            await Case.update({Case.status: to.value, Case.updated_at: now})
            .where((Case.id == case_id) & (Case.status == current.value))
            .returning(Case.id)
        )
        if not updated:  # a concurrent change won
            raise Conflict(_("case {case_id} changed meanwhile; reload and retry", case_id=case_id))
        await record_event(
            case_id=case_id,
            kind="status_changed",
            actor_id=by.user_id if by else None,
            actor_role=by.role.value if by else "system",
            reason=reason,
            from_status=current.value,
            to_status=to.value,
            data={**(data or {}), **({"entered_later": True} if at is not None else {})},
            occurred_at=moment if at is not None else None,
        )
        await unpublish_for_status(case_id=case_id, status=to)  # 寻亲公告 ends (issue 5)
        await _after(case_id, current, to, by, moment, dict(data or {}))
    return current


async def _historic_moment(case: dict[str, Any], at: datetime, now: datetime) -> datetime:
    """Check the moment of a status change recorded later: after the admission,
    not in the future, and not before the case's previous status change (the
    history's order). Raises InvalidInput."""
    from rescue.cases.events import CaseEvent

    last = (
        await CaseEvent.select(CaseEvent.at, CaseEvent.occurred_at)
        .where((CaseEvent.case == case["id"]) & (CaseEvent.kind == "status_changed"))
        .order_by(CaseEvent.id, ascending=False)
        .first()
    )
    earliest = case["admitted_at"]
    if last is not None:
        earliest = max(earliest, last["occurred_at"] or last["at"])
    if at < earliest or at > now:
        shown = clock.local(earliest).isoformat(timespec="minutes")
        raise InvalidInput(
            _(
                "the status change at {at} lies before the admission or the previous "
                "status change ({earliest}), or in the future",
                at=clock.local(at).isoformat(timespec="minutes"),
                earliest=shown,
            ),
            accepted=f"{shown} .. {clock.local(now).isoformat(timespec='minutes')}",
        )
    return at
