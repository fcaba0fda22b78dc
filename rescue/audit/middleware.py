"""ASGI middleware recording audited requests (see rescue.audit.services).

It runs after routing and authentication (so it knows the route template, path
parameters and caller) and holds back the response until the record is
written: the record is committed *before* the client sees the answer. If it
cannot be written, the client gets 500 ``audit_failed`` instead of the answer
(a write the handler already committed is then not acknowledged: the client
must check before retrying). 401 answers (no valid token) are given by the
authentication middleware before this one runs and are not recorded.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rescue.audit.services import audit_kind, write_record

__all__ = ["audit_middleware"]

log = logging.getLogger("rescue.audit")

_FAILED_BODY = json.dumps(
    {
        "status_code": 500,
        "error": "audit_failed",
        "detail": "the audit record could not be written, so the answer is withheld; "
        "the operation may have been applied: check before retrying",
    }
).encode()


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
        held: dict[str, Any] = {}  # the response start, held back until recorded
        state = {"recorded": False, "failed": False}

        async def record(start: Message, body: bytes) -> bool:
            client = scope.get("client")
            try:
                await write_record(
                    kind=kind,
                    method=method,
                    route=route,
                    path=str(scope.get("path", "")),
                    path_params=dict(scope.get("path_params") or {}),
                    principal=scope.get("user"),
                    client=client[0] if client else "unknown",
                    status_code=int(start["status"]),  # type: ignore[typeddict-item]
                    body=body,
                )
            except Exception:
                log.exception("audit record for %s %s could not be written", method, route)
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
                    state["failed"] = True
                    await send(
                        {  # type: ignore[arg-type]
                            "type": "http.response.start",
                            "status": 500,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(_FAILED_BODY)).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": _FAILED_BODY})  # type: ignore[arg-type]
                    return
                await send(start)
            await send(message)

        await self.app(scope, receive, audited_send)


audit_middleware = DefineMiddleware(AuditMiddleware)
