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

- A person under 16 or flagged as lacking capacity leaves only into custody:
  never ``left_self`` or ``terminated`` (our reading of the 2014 规程's leaving
  provisions; the threshold 16 is the issue's default).
- ``escorted_home``, ``handed_to_family`` and ``collected_by_origin`` require a
  handover record (交接) with the receiver's identity document checked; family for
  ``handed_to_family``, the origin's station for ``collected_by_origin``.
- ``return_planned`` requires a return plan; ``settled`` requires a current
  welfare-home placement (落户安置 is at a 福利院).
- ``left_self`` (自行离站) requires ``data.ticket``: the ticket or travel voucher
  the station gave (救助管理机构工作规程: 自行离站 with 乘车凭证); 400 without it.
- Leaving (any terminal status) ends the current placement.
- ``identified`` reached from ``settled`` creates a task for the police liaison to
  cancel the collective household registration (集体户口注销).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from rescue.announcements.services import unpublish_for_status
from rescue.cases.events import record_event
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from rescue.escorts.tables import Handover, LiaisonTask, ReceivingParty, ReturnPlan, TaskKind
from rescue.placements.tables import Placement, PlacementKind
from rescue.users.services import Principal
from rescue.users.tables import Role

__all__ = [
    "CUSTODY_REFUSED",
    "HANDOVER_REQUIRED",
    "TRANSITIONS",
    "Transition",
    "allowed_next",
    "custody_only",
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


#: Leaving outcomes refused to a person who may leave only into custody.
CUSTODY_REFUSED = frozenset({S.left_self, S.terminated})
#: Outcomes that close the case only with a handover record, and the receiving
#: party each needs (None: either).
HANDOVER_REQUIRED: dict[CaseStatus, ReceivingParty | None] = {
    S.escorted_home: None,
    S.handed_to_family: ReceivingParty.family,
    S.collected_by_origin: ReceivingParty.origin_station,
}
#: Age under which a person is a minor for leaving (未满16周岁).
CUSTODY_AGE = 16


def _age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def custody_only(case: dict[str, Any], today: date | None = None) -> bool:
    """Whether the person may leave only into custody.

    True if flagged ``lacks_capacity``, or possibly under 16: the estimated date of
    birth gives under 16, or ``estimated_age`` or ``age_low`` is under 16 (the
    lowest estimate decides: safety first).
    """
    if case.get("lacks_capacity"):
        return True
    today = today or datetime.now(UTC).date()
    birth = case.get("birth_date_estimate")
    if birth is not None and _age_on(birth, today) < CUSTODY_AGE:
        return True
    return any(
        case.get(k) is not None and case[k] < CUSTODY_AGE for k in ("estimated_age", "age_low")
    )


def allowed_next(current: CaseStatus, *, custody: bool = False) -> list[CaseStatus]:
    """Statuses reachable from ``current``, in declaration order (without the
    non-custodial exits when ``custody``)."""
    return [
        target
        for (source, target) in TRANSITIONS
        if source == current and not (custody and target in CUSTODY_REFUSED)
    ]


async def _check_rules(case: dict[str, Any], current: CaseStatus, to: CaseStatus) -> None:
    case_id = case["id"]
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
            f"case {case_id} is a minor under {CUSTODY_AGE} or lacks capacity; "
            f"they may leave only into custody, not {to.value}",
            "handed_to_family, escorted_home, collected_by_origin or transferred_minor",
        )
    if to in HANDOVER_REQUIRED:
        party = HANDOVER_REQUIRED[to]
        query = Handover.exists().where(
            (Handover.case == case_id) & (Handover.id_document_checked == True)  # noqa: E712
        )
        if party is not None:
            query = query.where(Handover.receiving_party == party.value)
        if not await query:
            receiver = party.value if party else "family or origin station"
            raise refuse(
                f"case {case_id} cannot become {to.value} without a handover record "
                f"(receiver: {receiver}, identity document checked)",
                f"POST /api/cases/{case_id}/handover first",
            )
    if to == S.return_planned and not await ReturnPlan.exists().where(ReturnPlan.case == case_id):
        raise refuse(
            f"case {case_id} has no return plan",
            f"POST /api/cases/{case_id}/return-plan (it moves the case itself)",
        )
    if to == S.settled:
        current_placement = (
            await Placement.select(Placement.kind)
            .where((Placement.case == case_id) & Placement.ended_at.is_null())
            .first()
        )
        if current_placement is None or current_placement["kind"] != PlacementKind.welfare_home:
            raise refuse(
                f"case {case_id} can be settled only while placed at a welfare home",
                f"POST /api/cases/{case_id}/placements with kind welfare_home first",
            )


async def _after(
    case_id: int, current: CaseStatus, to: CaseStatus, by: Principal | None, now: datetime
) -> None:
    actor_id = by.user_id if by else None
    actor_role = by.role.value if by else "system"
    if to in TERMINAL_STATUSES:
        ended = await (
            Placement.update({Placement.ended_at: now})
            .where((Placement.case == case_id) & Placement.ended_at.is_null())
            .returning(Placement.id)
        )
        for row in ended:
            await record_event(
                case_id=case_id,
                kind="placement_ended",
                actor_id=actor_id,
                actor_role=actor_role,
                reason=f"case closed as {to.value}",
                data={"placement_id": row["id"]},
            )
    if current == S.settled and to == S.identified:
        note = (
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
) -> CaseStatus:
    """Move a case to ``to``; returns the previous status.

    Args:
        by: the caller; ``None`` is the system (deadline job), allowed only for
            transitions marked ``system`` (to ``stranded``).
        data: outcome details kept on the timeline event.

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
            raise NotFound(f"case {case_id} does not exist")
        current = CaseStatus(row["status"])
        rule = TRANSITIONS.get((current, to))
        if rule is None:
            raise Conflict(
                f"case {case_id} is {current.value}; it cannot become {to.value}",
                current=current.value,
                allowed=[s.value for s in allowed_next(current, custody=custody_only(row))],
            )
        if (by is None and not rule.system) or (by is not None and by.role not in rule.roles):
            raise PermissionDenied(
                f"role {by.role.value if by else 'system'} may not move a case to {to.value}",
                accepted=sorted(r.value for r in rule.roles),
            )
        await _check_rules(row, current, to)
        if to == S.left_self and not str((data or {}).get("ticket") or "").strip():
            raise InvalidInput(
                f"case {case_id} can leave on their own only with the ticket or travel "
                "voucher the station gave (自行离站, 发放车票)",
                accepted={"data": {"ticket": "ticket number and destination"}},
            )
        now = datetime.now(UTC)
        updated = (
            await Case.update({Case.status: to.value, Case.updated_at: now})
            .where((Case.id == case_id) & (Case.status == current.value))
            .returning(Case.id)
        )
        if not updated:  # a concurrent change won
            raise Conflict(f"case {case_id} changed meanwhile; reload and retry")
        await record_event(
            case_id=case_id,
            kind="status_changed",
            actor_id=by.user_id if by else None,
            actor_role=by.role.value if by else "system",
            reason=reason,
            from_status=current.value,
            to_status=to.value,
            data=dict(data or {}),
        )
        await unpublish_for_status(case_id=case_id, status=to)  # 寻亲公告 ends (issue 5)
        await _after(case_id, current, to, by, now)
    return current
