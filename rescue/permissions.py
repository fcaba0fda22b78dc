"""Who may do what: one permission table, enforced by Litestar guards.

Each route declares ``guards=[allow(Action.X)]``. Roles (see docs/glossary.md):

- ``station_staff``: cases, photos, placements, search actions, escort.
- ``police_liaison``: read cases, notices, candidates; create notices and
  candidates with evidence; never changes case records or decides candidates.
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
    candidate_submit = "candidate_submit"
    candidate_decide = "candidate_decide"
    family_confirmation_record = "family_confirmation_record"
    rematch = "rematch"


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
    # Police kinds (police_dna, police_face) are further limited to police liaison
    # in rescue.matching.ledger.submit_candidate.
    Action.candidate_submit: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.candidate_decide: frozenset({_REVIEWER}),
    Action.family_confirmation_record: frozenset({_REVIEWER}),
    Action.rematch: frozenset({_ADMIN}),
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
