"""Domain errors and their one mapping to HTTP.

Services raise these; controllers never build error responses themselves.
Every error body is JSON: ``{"status_code", "error", "detail", "accepted"?}``,
where ``detail`` says what was wrong and ``accepted`` (when present) what the
service accepts instead.

Hierarchy::

    DomainError                 (400)
    ├── InvalidInput            (400)
    │   ├── UnsupportedMedia    (415)
    │   └── PayloadTooLarge     (413)
    ├── NotAuthenticated        (401)
    ├── PermissionDenied        (403)
    ├── NotFound                (404)
    ├── Conflict                (409)
    ├── TooManyRequests         (429)
    └── ServiceUnavailable      (503, with ``Retry-After``)

A backing service that fails while a request is served (the object store
unreachable or timing out, the PostgreSQL connection lost) is answered like
:class:`ServiceUnavailable`: 503 with ``Retry-After`` and ``error:
"service_unavailable"``, never 500 (:func:`is_unavailable` says which failures
count).
"""

from __future__ import annotations

from typing import Any

import asyncpg.exceptions as pg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from media.storage import StorageUnavailable

__all__ = [
    "UNAVAILABLE_TYPES",
    "Conflict",
    "DomainError",
    "InvalidInput",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ServiceUnavailable",
    "TooManyRequests",
    "UnsupportedMedia",
    "exception_handlers",
    "is_unavailable",
]


class DomainError(Exception):
    """Base of every error the service reports to a client."""

    status_code = 400
    error = "bad_request"

    def __init__(self, detail: str, *, accepted: Any = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.accepted = accepted
        self.extra = extra

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status_code": self.status_code,
            "error": self.error,
            "detail": self.detail,
        }
        if self.accepted is not None:
            body["accepted"] = self.accepted
        body.update(self.extra)
        return body


class InvalidInput(DomainError):
    status_code = 400
    error = "invalid_input"


class UnsupportedMedia(InvalidInput):
    status_code = 415
    error = "unsupported_media"


class PayloadTooLarge(InvalidInput):
    status_code = 413
    error = "payload_too_large"


class NotAuthenticated(DomainError):
    status_code = 401
    error = "not_authenticated"


class PermissionDenied(DomainError):
    status_code = 403
    error = "forbidden"


class NotFound(DomainError):
    status_code = 404
    error = "not_found"


class Conflict(DomainError):
    status_code = 409
    error = "conflict"


class TooManyRequests(DomainError):
    status_code = 429
    error = "too_many_requests"


class ServiceUnavailable(DomainError):
    """A backing service (database, object store, broker) failed; nothing was
    changed unless the body says otherwise. ``retry_after`` (seconds) becomes the
    ``Retry-After`` header."""

    status_code = 503
    error = "service_unavailable"


#: Failures of a backing service (see :func:`is_unavailable`).
UNAVAILABLE_TYPES: tuple[type[BaseException], ...] = (
    StorageUnavailable,
    pg.PostgresConnectionError,  # class 08: connection lost or refused
    pg.OperatorInterventionError,  # class 57: terminated by an administrator, shutting down
    ConnectionError,
    TimeoutError,
)


def is_unavailable(exc: BaseException) -> bool:
    """True if ``exc`` is a backing service being unreachable, cut off or too slow:
    transient, so the same work may succeed later (the API answers 503; a worker
    retries). asyncpg reports a connection closed under it as ``InterfaceError``
    "connection is closed"."""
    if isinstance(exc, UNAVAILABLE_TYPES):
        return True
    return isinstance(exc, pg.InterfaceError) and "closed" in str(exc)


def _retry_after() -> int:
    from rescue.settings import get_settings

    return get_settings().recovery.retry_after_seconds


def _domain_handler(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = None
    if isinstance(exc, TooManyRequests | ServiceUnavailable) and "retry_after" in exc.extra:
        headers = {"Retry-After": str(exc.extra["retry_after"])}
    return Response(content=exc.to_body(), status_code=exc.status_code, headers=headers)


def _unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    import logging

    from rescue.i18n import _

    if not is_unavailable(exc):
        return _internal_handler(request, exc)
    logging.getLogger("rescue").warning(
        "backing service unavailable: %s: %s", type(exc).__name__, exc
    )
    return _domain_handler(
        request,
        ServiceUnavailable(
            _("the object store is unavailable; try again later")
            if isinstance(exc, StorageUnavailable)
            else _("the database is unavailable; try again later"),
            retry_after=_retry_after(),
        ),
    )


def _accepted_values(request: Request[Any, Any, Any], problems: Any) -> dict[str, list[str]]:
    """For body fields that take one of fixed values (enums), the values accepted,
    keyed by field name: ``{"sex": ["male", "female", "unknown"]}``."""
    import re
    import typing
    from enum import Enum

    try:
        data = request.route_handler.parsed_fn_signature.parameters.get("data")
    except Exception:  # noqa: BLE001 - no handler or no body: nothing to add
        return {}
    model = getattr(data, "annotation", None)
    hints = typing.get_type_hints(model) if isinstance(model, type) else {}
    accepted: dict[str, list[str]] = {}
    for problem in problems if isinstance(problems, list) else []:
        match = re.search(r"`\$\.(\w+)`", str(problem.get("message", "")))
        name = str(problem.get("key") or (match.group(1) if match else ""))
        if name not in hints:
            continue
        for arg in (hints[name], *typing.get_args(hints[name])):
            if isinstance(arg, type) and issubclass(arg, Enum):
                accepted[name] = [str(member.value) for member in arg]
    return accepted


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    body: dict[str, Any] = {
        "status_code": exc.status_code,
        "error": "validation_failed" if isinstance(exc, ValidationException) else "http_error",
        "detail": exc.detail,
    }
    if exc.extra:
        body["problems"] = exc.extra
        if accepted := _accepted_values(request, exc.extra):
            body["accepted"] = accepted
    detail = str(exc.detail)
    if detail == "Input data was truncated" or detail.startswith("JSON is malformed"):
        # msgspec's words for a broken JSON body
        reason = "it ends too early" if "truncated" in detail else detail
        body.update(
            error="invalid_json",
            detail=f"the request body is not valid JSON ({reason})",
            accepted="a JSON object as documented at /schema",
        )
    return Response(content=body, status_code=exc.status_code, headers=exc.headers)


def _internal_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    import logging

    logging.getLogger("rescue").exception("unhandled error", exc_info=exc)
    return Response(
        content={
            "status_code": 500,
            "error": "internal_error",
            "detail": "internal error; it has been logged",
        },
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


exception_handlers: dict[Any, Any] = {
    DomainError: _domain_handler,
    **dict.fromkeys(UNAVAILABLE_TYPES, _unavailable_handler),
    pg.InterfaceError: _unavailable_handler,
    HTTPException: _http_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: _internal_handler,
}
