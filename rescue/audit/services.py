"""Writing and reading the audit trail.

What is audited (:func:`audit_kind`), for every route of the API and of the
pages (not static files, /schema, /health, /metrics, /public):

- every write (any method but GET, HEAD, OPTIONS), whatever its outcome;
- every read of a photo, of face data or of a candidate (a GET whose route
  template names ``photo``, ``face`` or ``candidate``).

PIPL art. 51 (security measures) and art. 55–56 (impact assessment of processing
sensitive personal information) call for a record of who processed it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rescue.audit.schemas import AuditOut
from rescue.audit.tables import AuditRecord
from rescue.schemas import Page

__all__ = ["SAFE_METHODS", "audit_kind", "describe", "list_records", "write_record"]

#: Methods that change nothing (RFC 9110 §9.2.1 "safe methods").
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes never audited (no personal data).
_NOT_AUDITED = ("/static", "/schema", "/health", "/metrics", "/public")
#: Route words whose reads are audited (sensitive data: photos, faces, candidates).
SENSITIVE_READS = ("photo", "face", "candidate")


def audit_kind(method: str, route: str) -> str | None:
    """``"write"``, ``"read"`` or None (not audited) for a request's method and route template."""
    if not route or route.startswith(_NOT_AUDITED):
        return None
    if method.upper() == "OPTIONS":  # CORS pre-flight: no data
        return None
    if method.upper() not in SAFE_METHODS:
        return "write"
    if any(word in route for word in SENSITIVE_READS):
        return "read"
    return None


def _param_name(segment: str) -> str | None:
    if segment.startswith("{") and segment.endswith("}"):
        return segment[1:-1].split(":", 1)[0]
    return None


def describe(route: str, path_params: dict[str, Any]) -> tuple[str, str | None]:
    """(resource_type, resource_id) of a route: its last path parameter
    (``photo_id`` → ``("photo", "17")``), or else its last segment (``"cases"`` → ``"case"``)."""
    segments = [s for s in route.split("/") if s]
    for segment in reversed(segments):
        name = _param_name(segment)
        if name is not None:
            value = path_params.get(name)
            return name.removesuffix("_id"), None if value is None else str(value)
    last = segments[-1] if segments else ""
    return last.removesuffix("s"), None


async def _case_of(path_params: dict[str, Any], route: str, created_id: str | None) -> int | None:
    from rescue.matching.tables import Candidate
    from rescue.photos.tables import Photo

    if "case_id" in path_params:
        return int(path_params["case_id"])
    if "photo_id" in path_params:
        row = await Photo.select(Photo.case).where(Photo.id == path_params["photo_id"]).first()
        return row["case"] if row else None
    if "candidate_id" in path_params:
        row = (
            await Candidate.select(Candidate.case)
            .where(Candidate.id == path_params["candidate_id"])
            .first()
        )
        return row["case"] if row else None
    if route.rstrip("/") == "/api/cases" and created_id is not None:
        return int(created_id)
    return None


def _created_id(body: bytes) -> str | None:
    if not body or not body.startswith(b"{"):
        return None
    try:
        value = json.loads(body).get("id")
    except ValueError:
        return None
    return str(value) if isinstance(value, int) else None


async def write_record(
    *,
    kind: str,
    method: str,
    route: str,
    path: str,
    path_params: dict[str, Any],
    principal: Any,
    client: str,
    status_code: int,
    body: bytes,
) -> int:
    """Append one record; returns its id. Any failure propagates (the request must fail)."""
    resource_type, resource_id = describe(route, path_params)
    created = _created_id(body) if method != "GET" and 200 <= status_code < 300 else None
    rows = await AuditRecord.insert(
        AuditRecord(
            user_id=getattr(principal, "user_id", None),
            username=getattr(principal, "username", ""),
            role=str(getattr(getattr(principal, "role", None), "value", "")),
            kind=kind,
            method=method,
            route=route[:300],
            path=path[:500],
            resource_type=resource_type[:40],
            resource_id=resource_id,
            created_id=created,
            case_id=await _case_of(path_params, route, created),
            client=client[:100],
            status_code=status_code,
        )
    ).returning(AuditRecord.id)
    return int(rows[0]["id"])


async def list_records(
    *,
    limit: int,
    offset: int,
    user_id: int | None = None,
    case_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditOut]:
    """Records, newest first, filtered by user, case and time (``since`` ≤ at < ``until``)."""
    where: Any = AuditRecord.id > 0
    if user_id is not None:
        where = where & (AuditRecord.user_id == user_id)
    if case_id is not None:
        where = where & (AuditRecord.case_id == case_id)
    if since is not None:
        where = where & (AuditRecord.at >= since)
    if until is not None:
        where = where & (AuditRecord.at < until)
    rows = (
        await AuditRecord.select()
        .where(where)
        .order_by(AuditRecord.id, ascending=False)
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=[AuditOut(**r) for r in rows],
        total=await AuditRecord.count().where(where),
        limit=limit,
        offset=offset,
    )
