"""Case status workflow: every allowed transition, and who may trigger it, in one table.

Sources: 救助管理机构工作规程 (民政部 2014) — admission, identity check, leaving
(离站) categories; 民政部·公安部《关于加强生活无着的流浪乞讨人员身份查询和照料
安置工作的意见》(2015) — identity search, stranded persons (滞留), settlement
(落户安置) with the search continuing; 民发〔2020〕14号 — long-term stranded
persons' settlement. See docs/workflow.md.

A transition not in :data:`TRANSITIONS` answers 409 naming the current status
and the allowed next ones. Each change appends a ``status_changed`` event to the
case timeline, in the same transaction as the status update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rescue.announcements.services import unpublish_for_status
from rescue.cases.events import record_event
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.errors import Conflict, NotFound, PermissionDenied
from rescue.users.services import Principal
from rescue.users.tables import Role

__all__ = ["TRANSITIONS", "Transition", "allowed_next", "transition"]

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


def _build() -> dict[tuple[CaseStatus, CaseStatus], Transition]:
    table: list[Transition] = [
        Transition(S.admitted, S.searching, STAFF, "identity unknown after the quick check"),
        Transition(S.searching, S.stranded, STAFF, "over 10 days in care, still unidentified"),
        Transition(S.admitted, S.stranded, STAFF, "over 10 days in care, still unidentified"),
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


def allowed_next(current: CaseStatus) -> list[CaseStatus]:
    """Statuses reachable from ``current``, in declaration order."""
    return [target for (source, target) in TRANSITIONS if source == current]


async def transition(
    *,
    case_id: int,
    to: CaseStatus,
    by: Principal,
    reason: str,
    data: dict[str, object] | None = None,
) -> CaseStatus:
    """Move a case to ``to``; returns the previous status.

    Raises:
        NotFound: no such case.
        Conflict: the transition is not allowed from the current status (409;
            body names ``current`` and ``allowed``).
        PermissionDenied: the caller's role may not trigger this transition.
    """
    async with Case._meta.db.transaction():
        row = await Case.select(Case.status).where(Case.id == case_id).first()
        if row is None:
            raise NotFound(f"case {case_id} does not exist")
        current = CaseStatus(row["status"])
        rule = TRANSITIONS.get((current, to))
        if rule is None:
            raise Conflict(
                f"case {case_id} is {current.value}; it cannot become {to.value}",
                current=current.value,
                allowed=[s.value for s in allowed_next(current)],
            )
        if by.role not in rule.roles:
            raise PermissionDenied(
                f"role {by.role.value} may not move a case to {to.value}",
                accepted=sorted(r.value for r in rule.roles),
            )
        updated = (
            await Case.update({Case.status: to.value, Case.updated_at: datetime.now(UTC)})
            .where((Case.id == case_id) & (Case.status == current.value))
            .returning(Case.id)
        )
        if not updated:  # a concurrent change won
            raise Conflict(f"case {case_id} changed meanwhile; reload and retry")
        await record_event(
            case_id=case_id,
            kind="status_changed",
            actor_id=by.user_id,
            actor_role=by.role.value,
            reason=reason,
            from_status=current.value,
            to_status=to.value,
            data=dict(data or {}),
        )
        await unpublish_for_status(case_id=case_id, status=to)  # 寻亲公告 ends (issue 5)
    return current
