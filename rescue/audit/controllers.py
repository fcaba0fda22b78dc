"""HTTP routes for reading the audit trail (there is none for changing it)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromQuery

from rescue.audit import services
from rescue.audit.schemas import AuditOut
from rescue.permissions import Action, allow
from rescue.schemas import AwareDatetime, Limit, Offset, Page, PathId, QueryId


class AuditController(Controller):
    path = "/api"
    tags = ("audit",)

    @get("/audit", summary="The audit trail, newest first", guards=[allow(Action.audit_read)])
    async def index(
        self,
        limit: Limit = 50,
        offset: Offset = 0,
        user_id: QueryId = None,
        case_id: QueryId = None,
        since: FromQuery[AwareDatetime | None] = None,
        until: FromQuery[AwareDatetime | None] = None,
    ) -> Page[AuditOut]:
        """Filter by ``user_id``, ``case_id`` and time (``since`` ≤ at < ``until``, ISO 8601)."""
        return await services.list_records(
            limit=limit, offset=offset, user_id=user_id, case_id=case_id, since=since, until=until
        )

    @get(
        "/cases/{case_id:int}/audit",
        summary="Who did or saw what on one case",
        guards=[allow(Action.case_audit_read)],
    )
    async def of_case(
        self, case_id: PathId, limit: Limit = 50, offset: Offset = 0
    ) -> Page[AuditOut]:
        """Records whose case is this one (directly, or through its photos and
        candidates), newest first. Requests that named the id before the case
        existed are not among them. 404 unknown case."""
        return await services.list_case_records(case_id=case_id, limit=limit, offset=offset)
