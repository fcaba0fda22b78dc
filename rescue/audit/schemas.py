"""Response body of the audit trail."""

from __future__ import annotations

from datetime import datetime

import msgspec


class AuditOut(msgspec.Struct):
    id: int
    at: datetime
    user_id: int | None
    username: str
    role: str
    kind: str
    method: str
    route: str
    path: str
    resource_type: str
    resource_id: str | None
    created_id: str | None
    case_id: int | None
    client: str
    status_code: int
