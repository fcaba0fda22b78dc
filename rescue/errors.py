"""Domain errors and their one mapping to HTTP.

Services raise these; controllers never build error responses themselves.
Every error body is JSON: ``{"status_code", "error", "detail", "accepted"?}``,
where ``detail`` says what was wrong and ``accepted`` (when present) what the
service accepts instead.

Hierarchy::

    DomainError                 (400)
    ├── InvalidInput            (400)
    │   ├── InvalidJSON         (400, a body the parser cannot read or hold)
    │   ├── UnsupportedMedia    (415)
    │   └── PayloadTooLarge     (413)
    ├── NotAuthenticated        (401)
    ├── PermissionDenied        (403)
    ├── NotFound                (404)
    ├── Conflict                (409)
    ├── TooManyRequests         (429)
    └── ServiceUnavailable      (503, with ``Retry-After``)

A unique-constraint violation raised by the database (two clients creating the
same thing at once) is answered like :class:`Conflict` on SQLite and PostgreSQL
alike. Error bodies quote client input only cleaned and capped
(:func:`clean_quote`): no control or bidirectional-formatting characters, at most
:data:`QUOTE_MAX` characters per text (issue 11 item 12).

A backing service that fails while a request is served (the object store
unreachable or timing out, the PostgreSQL connection lost) is answered like
:class:`ServiceUnavailable`: 503 with ``Retry-After`` and ``error:
"service_unavailable"``, never 500 (:func:`is_unavailable` says which failures
count).
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from typing import Any

import asyncpg.exceptions as pg
from litestar import Request, Response
from litestar._asgi.utils import wrap_in_exception_handler
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from media.storage import StorageUnavailable

__all__ = [
    "QUOTE_MAX",
    "UNAVAILABLE_TYPES",
    "Conflict",
    "DomainError",
    "InvalidInput",
    "InvalidJSON",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ServiceUnavailable",
    "StationRequest",
    "TooManyRequests",
    "UnsupportedMedia",
    "answer_errors_middleware",
    "clean_quote",
    "exception_handlers",
    "is_unavailable",
    "is_unique_violation",
    "too_deep",
]

#: Longest text an error body carries (characters); longer texts are cut.
QUOTE_MAX = 300
#: Most entries of a list an error body carries (e.g. validation problems).
LIST_MAX = 20


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


class InvalidJSON(InvalidInput):
    """A JSON body (or JSON form field) that is malformed or nested too deeply."""

    error = "invalid_json"


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
    """A backing service (database, object store, broker) failed or is busy;
    nothing was changed unless the body says otherwise. ``retry_after``
    (seconds) becomes the ``Retry-After`` header."""

    status_code = 503
    error = "service_unavailable"


def clean_quote(text: str, limit: int = QUOTE_MAX) -> str:
    """``text`` fit to quote in an error body: control and formatting characters
    (Unicode Cc, Cf: escape sequences, bidirectional overrides, zero-width
    characters) shown as U+FFFD, and at most ``limit`` characters with the
    length of what was cut."""
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit} more characters)"
    return "".join(
        " " if ch in "\t\n\r" else "\ufffd" if unicodedata.category(ch) in ("Cc", "Cf") else ch
        for ch in text
    )


def _clean(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return clean_quote(value)
    if depth > 4:
        return None
    if isinstance(value, dict):
        items = list(value.items())[:LIST_MAX]
        return {clean_quote(str(k), 100): _clean(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value[:LIST_MAX]]
    return value


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
    "connection is closed", or, when the server ended a pooled connection while
    it was idle, as ``InternalClientError`` "another operation is in progress"
    (seen in tests/faults with ``pg_terminate_backend``)."""
    if isinstance(exc, UNAVAILABLE_TYPES):
        return True
    if isinstance(exc, pg.InternalClientError):
        # e.g. "cannot switch to state 12; another operation (2) is in progress":
        # the server ended the connection (57P01) while it sat idle in the pool.
        return "another operation" in str(exc)
    # "connection is closed"; or "connection has been released back to the pool":
    # the server ended a pooled connection that a request's transaction holds
    # (rescue.audit.unit), and asyncpg handed it back to the pool on closing.
    return isinstance(exc, pg.InterfaceError) and (
        "closed" in str(exc) or "released back to the pool" in str(exc)
    )


def _retry_after() -> int:
    from rescue.settings import get_settings

    return get_settings().recovery.retry_after_seconds


def _domain_handler(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = None
    if isinstance(exc, TooManyRequests | ServiceUnavailable) and "retry_after" in exc.extra:
        headers = {"Retry-After": str(exc.extra["retry_after"])}
    return Response(content=_clean(exc.to_body()), status_code=exc.status_code, headers=headers)


def _unique_column(exc: Exception) -> str:
    """The column(s) of a unique violation, from the database's message, never its
    values: PostgreSQL ``Key (username)=(…)``, SQLite ``UNIQUE constraint failed:
    users.username``."""
    import re

    text = str(getattr(exc, "detail", None) or exc)
    if match := re.search(r"Key \(([^)]*)\)", text):
        return match.group(1)
    if match := re.search(r"UNIQUE constraint failed: ([\w., ]+)", text):
        return ", ".join(part.rsplit(".", 1)[-1] for part in match.group(1).split(", "))
    return ""


def is_unique_violation(exc: BaseException) -> bool:
    """True for a unique-constraint violation, on PostgreSQL or SQLite."""
    return isinstance(exc, pg.UniqueViolationError) or (
        isinstance(exc, sqlite3.IntegrityError) and "UNIQUE constraint failed" in str(exc)
    )


def _integrity_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A unique violation (concurrent creation of the same thing) is 409 on both
    databases; other integrity errors are the service's own bugs (500)."""
    from rescue.i18n import _

    if not is_unique_violation(exc):
        return _internal_handler(request, exc)
    column = _unique_column(exc)
    return _domain_handler(
        request,
        Conflict(
            _("a record with this {column} already exists", column=column)
            if column
            else _("this record already exists"),
            accepted=_("a value not used yet"),
        ),
    )


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


def _problems_text(problems: Any) -> str:
    """``key (source): message; …`` of Litestar's validation problems."""
    parts = []
    for problem in problems if isinstance(problems, list) else []:
        if isinstance(problem, dict):
            where = " ".join(
                str(getattr(problem[k], "value", problem[k]))
                for k in ("key", "source")
                if problem.get(k) is not None
            )
            parts.append(f"{where}: {problem.get('message', '')}" if where else "")
    return "; ".join(p for p in parts if p)


#: Litestar's text for a required parameter left out (it puts no ``extra`` on it).
_MISSING_PARAMETER = re.compile(r"Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    from rescue.i18n import _

    detail = str(exc.detail)
    if isinstance(exc, ValidationException):
        # Litestar's own text quotes the raw path ("Validation failed for GET
        # /api/cases/<anything>"); say which values were refused instead.
        problems = _problems_text(exc.extra)
        missing = _MISSING_PARAMETER.match(str(exc.detail))
        if problems:
            detail = _(
                "the request has values that are not accepted: {problems}", problems=problems
            )
        elif missing:  # Litestar: "Missing required query parameter 'date_from' for path …"
            detail = _(
                "the {source} parameter {name} is required",
                source=missing["source"],
                name=missing["name"],
            )
        else:
            detail = _("the request is not valid")
    body: dict[str, Any] = {
        "status_code": exc.status_code,
        "error": "validation_failed" if isinstance(exc, ValidationException) else "http_error",
        "detail": detail,
    }
    if exc.extra:
        body["problems"] = exc.extra
        if accepted := _accepted_values(request, exc.extra):
            body["accepted"] = accepted
    raw = str(exc.detail)
    if raw == "Input data was truncated" or raw.startswith("JSON is malformed"):
        # msgspec's words for a broken JSON body
        reason = _("it ends too early") if "truncated" in raw else raw
        body.update(
            error="invalid_json",
            detail=_("the request body is not valid JSON ({reason})", reason=reason),
            accepted=_("a JSON object as documented at /schema"),
        )
    return Response(content=_clean(body), status_code=exc.status_code, headers=exc.headers)


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


class StationRequest(Request[Any, Any, Any]):
    """The app's request class: a JSON body nested deeper than the parser can
    hold (msgspec raises RecursionError) is a 400, not a crash (issue 11 item 7)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as exc:
            raise too_deep(_body_name()) from exc


def _body_name() -> str:
    from rescue.i18n import _

    return _("the request body")


def too_deep(what: str) -> InvalidJSON:
    """The error for JSON nested deeper than the parser holds (``what``: which JSON)."""
    from rescue.i18n import _

    return InvalidJSON(
        _("{what} is nested too deeply to be read", what=what),
        accepted=_("JSON nested at most a few levels, as documented at /schema"),
    )


exception_handlers: dict[Any, Any] = {
    DomainError: _domain_handler,
    pg.IntegrityConstraintViolationError: _integrity_handler,
    sqlite3.IntegrityError: _integrity_handler,
    **dict.fromkeys(UNAVAILABLE_TYPES, _unavailable_handler),
    pg.InterfaceError: _unavailable_handler,
    pg.InternalClientError: _unavailable_handler,
    HTTPException: _http_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: _internal_handler,
}

#: Litestar's own exception handling (the ``ExceptionHandlerMiddleware`` it puts
#: between a route's middleware and its handler, and around the router), as an
#: entry of the app's middleware list (takes ``app``, returns the wrapped ASGI
#: app). Litestar answers an error raised *by a middleware* (authentication's
#: 401, CSRF's 403, the form reader's 400 and 413, Litestar's body limit met
#: there) only in its outermost layer, outside every middleware of the list:
#: that answer passes through none of their ``send`` wrappers, so the request
#: log line (rescue.logs) said 500, the request metrics 200, and the answer had
#: no ``X-Request-ID``. Put right after
#: the middleware that must see every answer, such an error is answered here,
#: with the same handlers (:data:`exception_handlers`, resolved per route), and
#: its answer goes out through them.
answer_errors_middleware = wrap_in_exception_handler
