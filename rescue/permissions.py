"""Who may do what: one permission table, enforced by Litestar guards.

Each route declares ``guards=[allow(Action.X)]``. Roles (see docs/glossary.md):

- ``station_staff``: cases, photos, placements, search actions, escort.
- ``police_liaison``: read cases, notices, candidates; create notices and
  candidates with evidence; records police checks and DNA results (police work)
  and completes liaison tasks (集体户口注销); never changes case status,
  placements or decides candidates.
- ``reviewer``: decides candidates, records family confirmations, relaxes a
  matching filter (sex) for one case or notice.
- ``admin``: users, tokens, settings, re-matching.

Station scoping (the second half of every guard): a route whose path names a
``case_id`` (or an id of something belonging to a case: photo, candidate,
placement, document, search action, handover, task) is refused with 403 when that case
(the photo's case, the candidate's case) belongs to a station the caller does
not see (:meth:`rescue.users.services.Principal.sees_station`). Notices and
notice photos are not scoped: they come from families and police to be matched
everywhere. Because this is done in :func:`allow`, new routes that follow the
path-parameter names are scoped without further code. List routes filter by
:meth:`~rescue.users.services.Principal.visible_stations` in their services.

The other station (issue 12 item 8): a route may also admit, for a case of a
station the caller does not see, a station that *takes part* in it
(:class:`Participation`), named route by route in ``allow(action, participants)``
(minimum necessary, PIPL art. 6): the station that registered the notice of a
candidate on the case (``notice_station``: the candidate, its comparison, the
case summary) and the station a return plan names as destination
(``destination_station``: the case summary, the plan, the identity found, the
handover, reception and countersignature). Every other route of the case stays
403 for them. The checks are in :mod:`rescue.stations.services`.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from rescue.errors import PermissionDenied
from rescue.i18n import _
from rescue.users.tables import Role

__all__ = ["PERMISSIONS", "Action", "Participation", "allow"]


class Participation(StrEnum):
    """How a station takes part in another station's case (rescue.stations)."""

    #: It registered the notice of a candidate on the case (登记站).
    notice_station = "notice_station"
    #: The case's return plan names it as destination (接收站).
    destination_station = "destination_station"


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
    match_filter_relax = "match_filter_relax"
    token_manage = "token_manage"  # noqa: S105 - an action's name
    user_admin = "user_admin"
    audit_read = "audit_read"
    case_audit_read = "case_audit_read"
    announcement_publish = "announcement_publish"
    case_transition = "case_transition"
    placement_write = "placement_write"
    document_read = "document_read"
    search_write = "search_write"
    police_record = "police_record"
    escort_write = "escort_write"
    handover_read = "handover_read"
    alert_read = "alert_read"
    calendar_load = "calendar_load"
    identity_write = "identity_write"
    #: Not a route: who sees a 身份证号 unmasked (others get it masked).
    id_number_read = "id_number_read"
    task_read = "task_read"
    task_complete = "task_complete"
    workbench = "workbench"
    family_request_read = "family_request_read"
    family_request_decide = "family_request_decide"
    duplicate_decide = "duplicate_decide"
    pfif_export = "pfif_export"
    pfif_import = "pfif_import"
    import_run = "import_run"
    import_warning_read = "import_warning_read"
    import_warning_verify = "import_warning_verify"
    stats_read = "stats_read"
    #: 转送: move a person in care to another station (rescue.stations).
    case_transfer = "case_transfer"
    #: History entered later (历史补录) and backlog runs of long-term residents.
    history_write = "history_write"


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
    # A reviewer relaxes a matching filter for one case or notice (rescue.matching.filters).
    Action.match_filter_relax: frozenset({_REVIEWER}),
    Action.token_manage: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.user_admin: frozenset({_ADMIN}),
    Action.audit_read: frozenset({_ADMIN}),
    Action.case_audit_read: frozenset({_STAFF, _ADMIN}),
    Action.announcement_publish: frozenset({_STAFF, _ADMIN}),
    # Workflow (issue 3). Each transition's own roles are in rescue.cases.flows.
    Action.case_transition: frozenset({_STAFF, _ADMIN}),
    Action.placement_write: frozenset({_STAFF, _ADMIN}),
    Action.document_read: frozenset({_STAFF, _ADMIN}),
    Action.search_write: frozenset({_STAFF, _ADMIN}),
    Action.police_record: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.escort_write: frozenset({_STAFF, _ADMIN}),
    Action.handover_read: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.alert_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.calendar_load: frozenset({_ADMIN}),
    Action.identity_write: frozenset({_STAFF, _ADMIN}),
    # The ID number serves the return (staff), the household registration
    # (police liaison) and administration; reviewers decide on faces, not IDs.
    Action.id_number_read: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.task_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.task_complete: frozenset({_POLICE, _ADMIN}),
    # Pages (rescue.web): today's work and one's own account, for every signed-in role.
    Action.workbench: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    # Online search requests (issue 14): the responsible station's staff moderate.
    Action.family_request_read: frozenset({_STAFF, _ADMIN}),
    Action.family_request_decide: frozenset({_STAFF, _ADMIN}),
    # Duplicate intake (issue 13): the station links or dismisses.
    Action.duplicate_decide: frozenset({_STAFF, _ADMIN}),
    # PFIF exchange (issue 13): whoever may read / register notices.
    Action.pfif_export: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.pfif_import: frozenset({_STAFF, _POLICE, _ADMIN}),
    # External lists and warnings to verify (比对预警, issue 13).
    Action.import_run: frozenset({_STAFF, _POLICE, _ADMIN}),
    Action.import_warning_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    Action.import_warning_verify: frozenset({_STAFF, _ADMIN}),
    Action.stats_read: frozenset({_STAFF, _POLICE, _REVIEWER, _ADMIN}),
    # 转送 between stations (issue 12 item 8): the station's staff decide it.
    Action.case_transfer: frozenset({_STAFF, _ADMIN}),
    # History entered later and backlog loads (issue 12 item 6): the station's
    # staff, who hold its files, and administrators.
    Action.history_write: frozenset({_STAFF, _ADMIN}),
}


@functools.cache
def _case_of() -> dict[str, Any]:
    """Path parameter → the column holding its case id (for station scoping).

    Built once: Piccolo copies columns to follow a foreign key
    (``PlacementDocument.placement.case``), which cost more than the rest of a
    cached read together (measured with py-spy under the API benchmark)."""
    from rescue.escorts.tables import Handover, LiaisonTask
    from rescue.matching.tables import Candidate
    from rescue.photos.tables import Photo
    from rescue.placements.tables import Placement, PlacementDocument
    from rescue.searches.tables import SearchAction

    return {
        "photo_id": Photo.case,
        "candidate_id": Candidate.case,
        "placement_id": Placement.case,
        "document_id": PlacementDocument.placement.case,
        "action_id": SearchAction.case,
        "handover_id": Handover.case,
        "task_id": LiaisonTask.case,
    }


async def _case_station(path_params: dict[str, Any]) -> tuple[str, str] | None:
    """(what, station) of the case a route's path points at, or None if unscoped/unknown.

    ``case_id`` names the case directly; other ids (photo, candidate, placement,
    placement document, search action, handover, liaison task) through their case.
    """
    from rescue.cases.tables import Case
    from rescue.schemas import stored_id

    case_id: Any = None
    what = ""
    if "case_id" in path_params:
        case_id, what = stored_id(path_params["case_id"]), f"case {path_params['case_id']}"
    else:
        for param, column in _case_of().items():
            if stored_id(path_params.get(param)) is None:
                continue
            table = (
                column._meta.table
                if not column._meta.call_chain
                else (column._meta.call_chain[0]._meta.table)
            )
            row = (
                await table.select(column.as_alias("case_id"))
                .where(table.id == path_params[param])
                .first()
            )
            case_id = (row or {}).get("case_id")
            what = f"{param.removesuffix('_id')} {path_params[param]}"
            break
    if case_id is None:
        return None
    row = await Case.select(Case.station).where(Case.id == case_id).first()
    return None if row is None else (what, str(row["station"]))


async def _request_station(path_params: dict[str, Any]) -> tuple[str, str] | None:
    """(what, station) of an online search request named by ``request_id``; None
    when unknown or in the shared queue (no station: every station's staff see it)."""
    if "request_id" not in path_params:
        return None
    from rescue.family_requests.tables import SearchRequest

    row = (
        await SearchRequest.select(SearchRequest.station)
        .where(SearchRequest.id == path_params["request_id"])
        .first()
    )
    if row is None or not row["station"]:
        return None
    return f"search request {path_params['request_id']}", str(row["station"])


def allow(action: Action, participants: tuple[Participation, ...] = ()):  # type: ignore[no-untyped-def]
    """A Litestar guard admitting the roles that :data:`PERMISSIONS` lists for ``action``,
    then checking the station scope of the case the path points at; a caller
    outside that station passes only when one of ``participants`` says their
    station takes part (:func:`rescue.stations.services.takes_part`).

    Raises:
        PermissionDenied: (403) naming the roles that may, or the stations the
            caller sees.
    """
    roles = PERMISSIONS[action]

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
    ) -> None:
        principal = connection.user
        if principal is None or principal.role not in roles:
            raise PermissionDenied(
                _(
                    "{action} is not allowed for role {role}",
                    action=action.value,
                    role=getattr(getattr(principal, "role", None), "value", "anonymous"),
                ),
                accepted=sorted(r.value for r in roles),
            )
        if principal.visible_stations() is None:  # admin, or scope "*"
            return
        # A missing case/photo/candidate passes here; the handler answers 404.
        target = await _case_station(connection.path_params) or await _request_station(
            connection.path_params
        )
        if target is not None and not principal.sees_station(target[1]):
            if participants:
                from rescue.stations.services import takes_part

                if await takes_part(principal, connection.path_params, participants):
                    return
            raise PermissionDenied(
                _(
                    "{what} belongs to station {station}, outside your stations",
                    what=target[0],
                    station=target[1],
                ),
                accepted=principal.visible_stations(),
            )

    guard.__name__ = f"allow_{action.value}"
    return guard
