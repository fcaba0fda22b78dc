"""One log format for the API, the workers and the command line (structlog).

Every process calls :func:`configure_logging` once: the API in ``create_app``,
each Dramatiq worker process when it imports ``workers.broker``, the CLI in its
entry point. All records, ours and those of uvicorn, Dramatiq, Piccolo and
APScheduler, go through the standard library's root logger and one
``structlog.stdlib.ProcessorFormatter``, so they share one shape:

- ``LOG_FORMAT=json`` (default with PostgreSQL, i.e. production): one JSON
  object per line with ``timestamp`` (UTC ISO 8601), ``level``, ``logger``,
  ``event`` and the context below;
- ``LOG_FORMAT=text`` (default in the embedded set-up): the same fields as
  readable ``key=value`` text.

Context (structlog context variables): ``request_id`` and ``user_id`` for an
API request (:func:`request_context_middleware`, after authentication), and
``job_id`` and ``actor`` for a Dramatiq job (``workers.lifecycle.JobContext``).
The API answers each request with its ``X-Request-ID`` header, so a user's
report can be matched to the server's lines.

What is never logged (docs/privacy.md; PIPL arts. 28-29): names, contacts, ID
numbers, face encodings, photos, passwords and tokens. Log calls pass ids, never
records; as a second line of defence :func:`_redact` drops values under
secret-looking keys and masks the password of any URL in a message. uvicorn's
access log (which prints query strings, where a search could carry a name) is
replaced by one ``request`` line per request with the route *template*, the
status and the duration.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rescue.settings import OpsSettings

__all__ = [
    "configure_logging",
    "make_formatter",
    "request_context_middleware",
    "request_id_middleware",
    "uvicorn_formatter",
]

#: Keys whose values are never written, whatever a caller passes.
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|cookie|encoding", re.I)
#: ``scheme://user:password@host`` -> ``scheme://user:***@host``.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.I)
#: An ``X-Request-ID`` sent by a proxy is kept when it looks like an id.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = "***"
    message = event.get("event")
    if isinstance(message, str) and "://" in message:
        event["event"] = _URL_PASSWORD.sub(r"\1***@", message)
    return event


def _drop_color(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _drop_color,
        _redact,
    ]


def make_formatter(settings: OpsSettings) -> logging.Formatter:
    """The one formatter (JSON or text per ``LOG_FORMAT``) for stdlib handlers."""
    json_lines = settings.log_format == "json"
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info
            if json_lines
            else structlog.processors.StackInfoRenderer(),
            structlog.processors.JSONRenderer(ensure_ascii=False)
            if json_lines
            # Plain tracebacks: the default (rich) one prints local variables,
            # which can hold personal data.
            else structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
    )


def uvicorn_formatter() -> logging.Formatter:
    """Formatter factory for uvicorn's ``--log-config rescue/logging.json``, so the
    lines uvicorn's supervisor writes before any app is loaded share the format."""
    from rescue.settings import SettingsError, get_settings

    try:
        return make_formatter(get_settings().ops)
    except SettingsError:  # reported in one line by create_app
        return make_formatter(OpsSettings())


def configure_logging(settings: OpsSettings, *, stream: IO[str] | None = None) -> None:
    """Route every log record of this process through one structlog formatter.

    Idempotent: a second call replaces the first's handler (the stream may change,
    e.g. in a Dramatiq worker process whose stderr is a pipe to its parent).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(settings))
    root = logging.getLogger()
    # Replace console handlers (ours, basicConfig's, Dramatiq's pipe to its parent);
    # keep any other (a file handler, a test runner's capture).
    root.handlers = [h for h in root.handlers if type(h) is not logging.StreamHandler] + [handler]
    root.setLevel(settings.log_level)
    # Piccolo announces its engine version on every start at INFO: noise.
    logging.getLogger("piccolo").setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "dramatiq", "apscheduler"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # uvicorn's access line carries query strings (see the module docstring).
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    shared = _shared()
    structlog.configure(
        processors=[
            *shared[:4],
            _redact,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


_access = logging.getLogger("rescue.request")


class _RequestId:
    """Outermost: gives the request an id (``X-Request-ID``) and logs one line
    when it is answered: method, route template, status, duration.

    The status is the one its ``send`` passed on. Errors raised by a middleware
    are answered below this one (rescue.errors.answer_errors_middleware), so
    that holds for them too; 500 only when no answer was started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _REQUEST_ID.match(sent) else secrets.token_hex(8)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}  # type: ignore[assignment]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not str(scope.get("path", "")).startswith(("/health", "/metrics")):
                _access.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "route": scope.get("path_template") or "unmatched",
                        "status": status["code"],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            structlog.contextvars.clear_contextvars()


class _UserContext:
    """After authentication: adds the caller's ``user_id`` to the log context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user_id = getattr(scope.get("user"), "user_id", None)
        if user_id is not None:
            structlog.contextvars.bind_contextvars(user_id=user_id)
        await self.app(scope, receive, send)


#: Put first in the app's middleware list.
request_id_middleware = DefineMiddleware(_RequestId)
#: Put right after the authentication middleware.
request_context_middleware = DefineMiddleware(_UserContext)
