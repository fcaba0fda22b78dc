"""Writing and reading the audit trail.

What is audited (:func:`audit_kind`), for every route of the API and of the
pages (not static files, /schema, /health, /metrics, /public):

- every write (any method but GET, HEAD, OPTIONS), whatever its outcome;
- every read of a photo, of face data, of a candidate, of a case's identity
  (身份证号), of a handover (the receiver's ID number) or of a placement document
  (a GET whose route template names ``photo``, ``face``, ``candidate``,
  ``identity``, ``handover``, ``document``, ``shared`` or ``return-plan``: the
  case summary and return plan another station reads, rescue.stations);
- every read of one online search request (its text and the family's contact:
  a route under :data:`SENSITIVE_ITEMS`).

A write's record is written in the write's own transaction, after the
handler and before the commit (rescue.audit.unit, rescue.audit.middleware): the
write and its record commit together or not at all. A read's record is written
after the read, before its answer is sent (:func:`write_record`).

PIPL art. 51 (security measures) and art. 55–56 (impact assessment of processing
sensitive personal information) call for a record of who processed it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rescue.audit.schemas import AuditOut
from rescue.audit.tables import AuditRecord
from rescue.schemas import Page, require_timezone, stored_id

__all__ = [
    "SAFE_METHODS",
    "audit_kind",
    "case_of_write",
    "describe",
    "list_case_records",
    "list_records",
    "write_record",
]

#: Methods that change nothing (RFC 9110 §9.2.1 "safe methods").
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes never audited (no personal data).
_NOT_AUDITED = ("/static", "/schema", "/health", "/metrics", "/public")
#: Route words whose reads are audited (sensitive data: photos, faces, candidates).
SENSITIVE_READS = (
    "photo",
    "face",
    "candidate",
    "identity",
    "handover",
    "document",
    # What another station reads of a case it takes part in (rescue.stations).
    "shared",
    "return-plan",
)
#: Route prefixes whose reads of one item are audited: an online search
#: request's text and the family's contact (issue 14), on the API and the page.
#: Their lists carry neither and are not audited.
SENSITIVE_ITEMS = ("/api/family-requests/{", "/search-requests/{")


def audit_kind(method: str, route: str) -> str | None:
    """``"write"``, ``"read"`` or None (not audited) for a request's method and route template."""
    if not route or route.startswith(_NOT_AUDITED):
        return None
    if method.upper() == "OPTIONS":  # CORS pre-flight: no data
        return None
    if method.upper() not in SAFE_METHODS:
        return "write"
    if any(word in route for word in SENSITIVE_READS) or route.startswith(SENSITIVE_ITEMS):
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
    from rescue.cases.tables import Case
    from rescue.matching.tables import Candidate
    from rescue.photos.tables import Photo

    if "case_id" in path_params:
        # Only a case that exists: a request naming an id that names nothing
        # (404) is not about any case, and must not appear in the trail of a
        # case created later under that id, maybe at another station.
        case_id = stored_id(path_params["case_id"])
        if case_id is None or not await Case.exists().where(Case.id == case_id):
            return None
        return case_id
    if (photo_id := stored_id(path_params.get("photo_id"))) is not None:
        row = await Photo.select(Photo.case).where(Photo.id == photo_id).first()
        return row["case"] if row else None
    if (candidate_id := stored_id(path_params.get("candidate_id"))) is not None:
        row = await Candidate.select(Candidate.case).where(Candidate.id == candidate_id).first()
        return row["case"] if row else None
    if route.rstrip("/") == "/api/cases" and created_id is not None:
        return stored_id(created_id)
    # Other ids through their case (DNA results, search actions, placements,
    # documents, handovers, tasks): the one map of rescue.permissions.
    from rescue.permissions import _case_of as case_columns

    for param, column in case_columns().items():
        if (value := stored_id(path_params.get(param))) is not None:
            chain = column._meta.call_chain
            table = chain[0]._meta.table if chain else column._meta.table
            row = await table.select(column.as_alias("case")).where(table.id == value).first()
            return stored_id(row["case"]) if row else None
    return None


def _body_case_id(body: bytes) -> int | None:
    """The case a write's answer names (``case_id``, or ``candidate.case_id`` of a
    candidate submission): links writes on routes without a case in the path."""
    if not body or not body.startswith(b"{"):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    nested = value.get("candidate")
    if "case_id" not in value and isinstance(nested, dict):
        value = nested
    return stored_id(value.get("case_id"))


def _created_id(body: bytes) -> str | None:
    if not body or not body.startswith(b"{"):
        return None
    try:
        value = json.loads(body).get("id")
    except ValueError:
        return None
    return str(value) if isinstance(value, int) else None


async def case_of_write(path_params: dict[str, Any], route: str) -> int | None:
    """The case a write's path names (read before the write runs: a write that
    deletes its row still belongs to that case's trail); None if none."""
    return await _case_of(path_params, route, None)


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
    case_id: int | None = None,
) -> int:
    """Append one complete record; returns its id. Any failure propagates (the
    request must fail).

    ``case_id``: the case found before a write ran (:func:`case_of_write`);
    else the case is looked up now from the path, the id a write created, or the
    case its answer names (a candidate submission).
    """
    resource_type, resource_id = describe(route, path_params)
    created = _created_id(body) if method != "GET" and 200 <= status_code < 300 else None
    if case_id is None:
        case_id = await _case_of(path_params, route, created)
    if case_id is None and kind == "write" and 200 <= status_code < 300:
        case_id = _body_case_id(body)
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
            resource_id=None if resource_id is None else resource_id[:40],
            created_id=created,
            case_id=case_id,
            client=client[:100],
            status_code=status_code,
        )
    ).returning(AuditRecord.id)
    return int(rows[0]["id"])


async def list_case_records(*, case_id: int, limit: int, offset: int) -> Page[AuditOut]:
    """The trail of one case, newest first.

    Raises:
        NotFound: no such case.
    """
    from rescue.cases.tables import Case
    from rescue.errors import NotFound
    from rescue.i18n import _

    if not await Case.exists().where(Case.id == case_id):
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    return await list_records(limit=limit, offset=offset, case_id=case_id)


async def list_records(
    *,
    limit: int,
    offset: int,
    user_id: int | None = None,
    case_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditOut]:
    """Records, newest first, filtered by user, case and time (``since`` ≤ at < ``until``).

    Raises:
        InvalidInput: ``since`` or ``until`` without a timezone offset.
    """
    require_timezone(since, "since")
    require_timezone(until, "until")
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
