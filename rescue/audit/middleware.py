"""ASGI middleware recording audited requests (see rescue.audit.services).

It runs after routing and authentication (so it knows the route template, path
parameters and caller).

- **Writes**: the record is written *before* the handler runs (``status_code``
  0, in progress). If it cannot be written the handler does not run and the
  client gets 503 ``audit_failed`` with ``applied: false``: nothing was changed.
  After the handler, the record is completed with the outcome before the answer
  is sent. If only that completion fails, the write stands (it is on record as
  attempted) and the client gets the handler's real answer, with the header
  ``Audit-Outcome: unrecorded``; the failure is logged.
- **Reads** (of photos, faces, candidates): the record is written after the
  handler and before the answer; if it cannot be written the client gets 503
  ``audit_failed`` instead of the data.

401 answers (no valid token) are given by the authentication middleware before
this one runs and are not recorded.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rescue.audit.services import audit_kind, begin_record, complete_record, write_record
from rescue.i18n import _
from rescue.settings import get_settings

__all__ = ["audit_middleware"]

log = logging.getLogger("rescue.audit")


async def _refuse(send: Send, detail: str) -> None:
    """Answer 503 ``audit_failed``: nothing was done or shown."""
    body = json.dumps(
        {"status_code": 503, "error": "audit_failed", "detail": detail, "applied": False},
        ensure_ascii=False,
    ).encode()
    retry_after = str(get_settings().recovery.retry_after_seconds).encode()
    await send(
        {  # type: ignore[arg-type]
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry_after),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})  # type: ignore[arg-type]


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        route = str(scope.get("path_template", "") or "")
        kind = audit_kind(method, route)
        if kind is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        where = {
            "method": method,
            "route": route,
            "path": str(scope.get("path", "")),
            "path_params": dict(scope.get("path_params") or {}),
            "principal": scope.get("user"),
            "client": client[0] if client else "unknown",
        }
        record_id: int | None = None
        if kind == "write":
            try:
                record_id = await begin_record(**where)
            except Exception:
                log.exception("audit record for %s %s could not be written", method, route)
                await _refuse(
                    send,
                    _(
                        "the audit record could not be written, so the request was not "
                        "carried out; nothing was changed; try again later"
                    ),
                )
                return
        held: dict[str, Any] = {}  # the response start, held back until recorded
        state = {"recorded": False, "failed": False}

        async def record(start: Message, body: bytes) -> bool:
            status = int(start["status"])  # type: ignore[typeddict-item]
            try:
                if record_id is not None:
                    await complete_record(
                        record_id=record_id, route=route, status_code=status, body=body
                    )
                else:
                    await write_record(kind=kind, status_code=status, body=body, **where)
            except Exception:
                log.exception("audit record for %s %s could not be completed", method, route)
                return False
            return True

        async def audited_send(message: Message) -> None:
            if state["failed"]:
                return
            if message["type"] == "http.response.start":
                held["start"] = message
                return
            if message["type"] == "http.response.body" and not state["recorded"]:
                state["recorded"] = True
                start = held.pop("start")
                more = bool(message.get("more_body", False))
                if not await record(start, b"" if more else bytes(message.get("body", b""))):
                    if record_id is None:  # a read: withhold the data
                        state["failed"] = True
                        await _refuse(
                            send,
                            _("the audit record could not be written, so the data is withheld"),
                        )
                        return
                    start = {
                        **start,
                        "headers": [*start.get("headers", []), (b"audit-outcome", b"unrecorded")],
                    }
                await send(start)
            await send(message)

        await self.app(scope, receive, audited_send)


audit_middleware = DefineMiddleware(AuditMiddleware)
