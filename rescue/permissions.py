"""Who may do what: one permission table, enforced by Litestar guards.

Each route declares ``guards=[allow(Action.X)]``. Roles (see docs/glossary.md):

- ``station_staff``: cases, photos, placements, search actions, escort.
- ``police_liaison``: read cases, notices, candidates; create notices and
  candidates with evidence; records police checks and DNA results (police work)
  and completes liaison tasks (集体户口注销); never changes case status,
  placements or decides candidates.
- ``reviewer``: decides candidates, records family confirmations.
- ``admin``: users, tokens, settings, re-matching.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from rescue.errors import PermissionDenied
from rescue.users.tables import Role

__all__ = ["PERMISSIONS", "Action", "allow"]


class Action(StrEnum):
    case_read = "case_read"
    case_write = "case_write"
    notice_read = "notice_read"
    notice_write = "notice_write"
    photo_read = "photo_read"
    photo_upload_case = "photo_upload_case"
    photo_upload_notice = "photo_upload_notice"
    candidate_read = "candidate_read"
    case_transition = "case_transition"
    placement_write = "placement_write"
    document_read = "document_read"
    search_write = "search_write"
    police_record = "police_record"
    escort_write = "escort_write"
    handover_read = "handover_read"
    alert_read = "alert_read"
    task_read = "task_read"
    task_complete = "task_complete"


_STAFF, _POLICE, _REVIEWER, _ADMIN = (
    Role.station_staff,
    Role.police_liaison,
    Role.reviewer,
    Role.admin,
)

#: Action -> roles allowed. The single source of truth for authorisation.
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.case_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.case_write: frozenset({_STAFF, _ADMIN}),
    Action.notice_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.notice_write: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.photo_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.photo_upload_case: frozenset({_STAFF, _ADMIN}),
    Action.photo_upload_notice: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.candidate_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    # Workflow (issue 3). Each transition's own roles are in rescue.cases.flows.
    Action.case_transition: frozenset({_STAFF, _ADMIN}),
    Action.placement_write: frozenset({_STAFF, _ADMIN}),
    Action.document_read: frozenset({_STAFF, _ADMIN}),
    Action.search_write: frozenset({_STAFF, _ADMIN}),
    Action.police_record: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.escort_write: frozenset({_STAFF, _ADMIN}),
    Action.handover_read: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.alert_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.task_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.task_complete: frozenset({_POLICE, _ADMIN}),
}


def allow(action: Action):  # type: ignore[no-untyped-def]
    """A Litestar guard admitting the roles that :data:`PERMISSIONS` lists for ``action``.

    Raises:
        PermissionDenied: (403) naming the roles that may.
    """
    roles = PERMISSIONS[action]

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.user
        if principal is None or principal.role not in roles:
            raise PermissionDenied(
                f"{action.value} is not allowed for role "
                f"{getattr(getattr(principal, 'role', None), 'value', 'anonymous')}",
                accepted=sorted(r.value for r in roles),
            )

    guard.__name__ = f"allow_{action.value}"
    return guard
