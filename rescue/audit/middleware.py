"""ASGI middleware recording audited requests (see rescue.audit.services).

It runs after routing and authentication (so it knows the route template, path
parameters and caller).

- **Writes** run in one database transaction with their audit record
  (rescue.audit.unit): the transaction is opened before the handler; the
  handler's answer is held back; its record is added and both commit together,
  then the answer is sent. So a write is never applied without its record, and
  a record never claims a write that did not happen:

  - the transaction cannot be opened, or the record cannot be written: nothing
    is applied; the client gets 503 ``audit_failed`` with ``applied: false``;
  - the handler answers 5xx: its changes are rolled back (nothing half-written)
    and the failure is recorded on its own;
  - the handler refused (4xx) after a database error that spoiled the
    transaction: rolled back, the refusal recorded on its own, and the refusal
    sent (nothing was applied);
  - the commit itself fails: the database is asked, on a new connection,
    whether the record (and so the write) was committed; the answer is the
    handler's if it was, 503 ``applied: false`` if it was not, and 503
    ``applied: "unknown"`` if the database cannot be asked.

  Work that others would see (queue messages) runs only after the commit; an
  object stored for a rolled-back row is removed.
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

import anyio
import anyio.to_thread
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rescue.audit.services import audit_kind, case_of_write, write_record
from rescue.audit.tables import AuditRecord
from rescue.audit.unit import Unit, open_unit
from rescue.i18n import _
from rescue.settings import get_settings

__all__ = ["audit_middleware"]

log = logging.getLogger("rescue.audit")


async def _refuse(send: Send, detail: str, applied: bool | str = False) -> None:
    """Answer 503 ``audit_failed``: nothing was done or shown (``applied`` False),
    or whether it was is unknown (``"unknown"``)."""
    body = json.dumps(
        {"status_code": 503, "error": "audit_failed", "detail": detail, "applied": applied},
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
        if kind == "write":
            await _audited_write(self.app, scope, receive, send, where)
            return
        await _audited_read(self.app, scope, receive, send, where)


async def _audited_read(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, where: dict[str, Any]
) -> None:
    """Send the answer only once its read is on record (else 503 ``audit_failed``)."""
    held: dict[str, Any] = {}
    state = {"recorded": False, "failed": False}

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
            try:
                await write_record(
                    kind="read",
                    status_code=int(start["status"]),
                    body=b"" if more else bytes(message.get("body", b"")),
                    **where,
                )
            except Exception:
                log.exception("audit record for %s %s could not be written", *_what(where))
                state["failed"] = True
                await _refuse(
                    send, _("the audit record could not be written, so the data is withheld")
                )
                return
            await send(start)
        await send(message)

    await app(scope, receive, audited_send)


def _what(where: dict[str, Any]) -> tuple[str, str]:
    return str(where["method"]), str(where["route"])


def _not_changed() -> str:
    return _(
        "the audit record could not be written, so the request was not carried out; "
        "nothing was changed; try again later"
    )


async def _audited_write(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, where: dict[str, Any]
) -> None:
    """Run a write and its audit record in one transaction (module docstring)."""
    engine = AuditRecord._meta.db
    unit: Unit | None = None
    try:
        unit = await open_unit(engine)
        # The case is read before the write: a write that deletes its row still
        # belongs to that case's trail.
        case_id = await case_of_write(where["path_params"], where["route"])
    except Exception:
        log.exception("audit record for %s %s could not be begun", *_what(where))
        if unit is not None:
            await unit.rollback()
            await unit.close()
        await _refuse(send, _not_changed())
        return

    messages: list[Message] = []

    async def held_send(message: Message) -> None:
        messages.append(message)

    try:
        await app(scope, receive, held_send)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await unit.rollback()
            await unit.close()
        raise
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    if start is None:  # the client went away before an answer: nothing applied
        await unit.rollback()
        await unit.close()
        return
    status = int(start["status"])  # type: ignore[typeddict-item]
    body = b"".join(
        bytes(m.get("body", b"")) for m in messages if m["type"] == "http.response.body"
    )
    record = {**where, "kind": "write", "status_code": status, "body": body, "case_id": case_id}

    if status >= 500:
        # Nothing half-written: the handler failed, its changes go.
        await unit.rollback()
        await unit.close()
        await _record_alone(record)
        await _send_all(send, messages)
        return
    try:
        record_id = await write_record(**record)
    except Exception:
        log.exception("audit record for %s %s could not be written", *_what(where))
        await unit.rollback()
        await unit.close()
        if status >= 400 and await _record_alone(record):
            await _send_all(send, messages)  # a refusal: nothing was applied
        else:
            await _refuse(send, _not_changed())
        return
    with anyio.CancelScope(shield=True):
        try:
            await unit.commit()
        except Exception:
            log.exception("commit of %s %s failed", *_what(where))
            await unit.close()
            committed = await _was_committed(record_id)
            if committed is None:
                await _refuse(
                    send,
                    _(
                        "the database failed while saving; whether the request was "
                        "carried out is unknown; look before trying again"
                    ),
                    applied="unknown",
                )
                return
            if not committed:
                await unit.undo()
                await _refuse(send, _not_changed())
                return
        else:
            await unit.close()
        await anyio.to_thread.run_sync(unit.run_committed)
    await _send_all(send, messages)


async def _send_all(send: Send, messages: list[Message]) -> None:
    for message in messages:
        await send(message)


async def _record_alone(record: dict[str, Any]) -> bool:
    """Write the record of a write that changed nothing, in its own transaction;
    False (logged) if it cannot be written."""
    try:
        await write_record(**record)
    except Exception:
        log.exception("audit record for %s %s could not be written", *_what(record))
        return False
    return True


async def _was_committed(record_id: int) -> bool | None:
    """Whether the record ``record_id`` (and so its write) is in the database;
    None if the database cannot be asked (a few tries over ~4 s)."""
    for wait in (0.0, 0.5, 1.0, 2.5):
        await anyio.sleep(wait)
        try:
            return bool(await AuditRecord.exists().where(AuditRecord.id == record_id))
        except Exception as exc:  # noqa: BLE001 - any failure: ask again
            log.warning("cannot ask whether a write was committed yet: %r", exc)
    return None


audit_middleware = DefineMiddleware(AuditMiddleware)
