"""工作台: today's work for the signed-in user's role.

Each list comes from the same service the API uses, scoped to the stations the
user sees, and each entry links to where it is dealt with:

- deadlines due and overdue (rescue.alerts.services.list_alerts) → the case;
- candidates waiting for review (rescue.matching.ledger.list_queue) → the case's
  candidates;
- police-liaison tasks (rescue.escorts.services.list_tasks) → the case;
- handovers waiting for a second staff member's approval (custody; recorded by
  someone else: rescue.escorts.services.handovers_to_approve) → the case's
  handovers, where the approval form is;
- photos where no face was found (retake) → the case's photos;
- people in care by status → the filtered list of people;
- persons other stations will hand over to ours (rescue.stations.services.incoming)
  → the handover page (reception, countersignature);
- our notices with candidates at other stations
  (rescue.stations.services.notices_elsewhere) → the comparison.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from rescue import clock
from rescue.alerts.services import list_alerts
from rescue.cases.tables import IN_CARE_STATUSES, Case, CaseStatus
from rescue.escorts.services import handovers_to_approve, list_tasks
from rescue.matching.ledger import list_queue
from rescue.matching.tables import CandidateStatus
from rescue.permissions import Action, allow
from rescue.photos.tables import Photo, PhotoStatus
from rescue.settings import get_settings
from rescue.users.tables import Role
from rescue.web.refs import load_refs

__all__ = ["HomePages", "no_face_photos"]

#: Which lists each role's 工作台 shows.
SECTIONS: dict[Role, tuple[str, ...]] = {
    Role.station_staff: (
        "approvals",
        "incoming",
        "alerts",
        "no_face",
        "in_care",
        "candidates",
        "notices_elsewhere",
        "tasks",
    ),
    Role.admin: ("approvals", "alerts", "candidates", "tasks", "no_face", "in_care", "incoming"),
    Role.reviewer: ("candidates", "in_care"),
    Role.police_liaison: ("tasks", "alerts", "candidates"),
}


async def no_face_photos(*, stations: list[str] | None, limit: int = 50) -> list[dict[str, Any]]:
    """Photos of people in care where no face was found (to retake), newest first."""
    query = (
        Photo.select(Photo.id, Photo.case, Photo.case.reference, Photo.created_at)
        .where(
            (Photo.status == PhotoStatus.no_face.value)
            & Photo.case.status.is_in([s.value for s in IN_CARE_STATUSES])
        )
        .order_by(Photo.id, ascending=False)
        .limit(limit)
    )
    if stations is not None:
        query = query.where(Photo.case.station.is_in(stations or [""]))
    return list(await query)


async def in_care_counts(*, stations: list[str] | None) -> list[tuple[CaseStatus, int]]:
    """(status, people) for each status of people still in care, in workflow order."""
    counts = []
    for status in CaseStatus:
        if status not in IN_CARE_STATUSES:
            continue
        query = Case.count().where(Case.status == status.value)
        if stations is not None:
            query = query.where(Case.station.is_in(stations or [""]))
        counts.append((status, await query))
    return counts


#: What the 工作台 lists as due: overdue items and those due within a week (the
#: shortest statutory terms are 24 hours to 7 working days, docs/workflow.md, so a
#: week ahead shows everything a shift can still act on in time); items due later
#: are counted, not listed (a 3-month settlement date is not today's work).
DUE_SOON = timedelta(days=7)


class HomePages(Controller):
    include_in_schema = False

    @get("/", name="home", guards=[allow(Action.workbench)])
    async def home(self, request: Request[Any, Any, Any]) -> Template:
        """The 工作台 of the user's role."""
        user = request.user
        stations = user.visible_stations()
        sections = SECTIONS[user.role]
        context: dict[str, Any] = {"sections": sections}
        if "alerts" in sections:
            every = await list_alerts(stations=stations, limit=10_000)
            horizon = clock.now() + DUE_SOON
            soon = [a for a in every.items if a.overdue or a.due_at <= horizon]
            context["alerts"] = soon[:100]
            context["alerts_soon"] = len(soon)
            context["alerts_later"] = every.total - len(soon)
        if "candidates" in sections:
            context["candidates"] = await list_queue(
                settings=get_settings(),
                status=CandidateStatus.proposed,
                limit=50,
                offset=0,
                stations=stations,
            )
        if "approvals" in sections:
            context["approvals"] = await handovers_to_approve(
                stations=stations, user_id=user.user_id
            )
        if "tasks" in sections:
            context["tasks"] = await list_tasks(stations=stations)
        if "no_face" in sections:
            context["no_face"] = await no_face_photos(stations=stations)
        if "in_care" in sections:
            context["in_care"] = await in_care_counts(stations=stations)
        if "incoming" in sections:
            from rescue.stations.services import incoming

            context["incoming"] = await incoming(stations=stations)
        if "notices_elsewhere" in sections:
            from rescue.stations.services import notices_elsewhere

            context["notices_elsewhere"] = await notices_elsewhere(
                stations=stations or [user.station]
            )
        shown_candidates = context["candidates"].items if "candidates" in context else []
        context["refs"] = await load_refs(
            [a.case_id for a in context.get("alerts", [])]
            + [c.case_id for c in shown_candidates]
            + [t.case_id for t in context.get("tasks", [])],
            [c.notice_id for c in shown_candidates],
        )
        return Template(template_name="web/home.html", context=context)
