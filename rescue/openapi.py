"""The OpenAPI document: readable operation ids, route docstrings, and every
error status a route answers, with the real error body (issue 11, issue 15).

Errors are answered by the one mapping in :mod:`rescue.errors`, so which
statuses a route can answer follows from what the route is, and is written
here once instead of on every handler (:func:`document_errors`):

=====  ==========================================================  ==================
code   when                                                        routes
=====  ==========================================================  ==================
400    a parameter or body is not accepted (``problems`` lists     with parameters
       which)                                                      or a body
401    no valid bearer token                                       ``/api``
403    the role or the station scope does not allow it             ``/api``
404    an id in the path (or in the body) names nothing            with ids
409    the state forbids it, or the same thing exists              writes
413    the body is larger than the upload limit                    with a body
415    a file is not one of the accepted image/document types      multipart
429    login back-off (``Retry-After``)                            ``/auth/login``
503    a backing service is busy or unreachable (``Retry-After``)  all
=====  ==========================================================  ==================

``tests/e2e/test_fuzz.py`` (schemathesis against a served app) fails on any
status a route answers that is not documented here.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import Method

__all__ = ["ErrorBody", "document_errors", "operation_id"]


class ErrorBody(msgspec.Struct):
    """Every error answer (rescue.errors): ``detail`` says what was wrong and
    ``accepted`` (when present) what the service accepts instead; validation
    errors list ``problems`` (``key``, ``source``, ``message``). Some errors add
    fields of their own (e.g. ``reason``, ``current``, ``photo_id``)."""

    status_code: int
    error: str
    detail: str
    accepted: Any | None = None
    problems: list[dict[str, Any]] | None = None
    reason: str | None = None


_DESCRIPTIONS = {
    400: "Bad input: a parameter or the body is not accepted (see detail, problems, accepted)",
    401: "Not authenticated: no valid bearer token (or, at login, wrong username or password)",
    403: "Forbidden: the role or the station scope does not allow this",
    404: "Not found: an id names nothing (or nothing visible to the caller)",
    409: "Conflict: the current state forbids this, or the same thing already exists",
    413: "Payload too large: the body or a file is over the limit (accepted gives it)",
    415: "Unsupported media: the file is not an accepted type (accepted lists them)",
    429: "Too many requests: login back-off; wait Retry-After seconds",
    503: "Service unavailable: the database, object store or broker is busy or down; retry "
    "after Retry-After seconds. Nothing was changed, unless the body says otherwise: "
    '`applied: "unknown"` (audit_failed: the database failed while committing and could '
    'not be asked; look before retrying) or `stored: "unknown"` (a photo upload)',
}

#: Routes that answer 404 for ids given in the body or query, not the path.
_BODY_IDS = {("POST", "/api/candidates")}
#: Parameters Litestar injects that are not client input.
_INJECTED = {"request", "state", "scope", "headers", "cookies", "socket", "self"}


def operation_id(
    route_handler: HTTPRouteHandler, http_method: Method, path_components: list[Any]
) -> str:
    """``<domain>.<handler>``, e.g. ``cases.detail``, ``candidates.decide``: the
    controller's name without ``Controller`` in snake case, then the function's."""
    bound = getattr(route_handler.fn, "__self__", None)  # the controller instance
    name = type(bound).__name__ if bound is not None else ""
    domain = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Controller")).lower() or "app"
    handler = route_handler.handler_name
    if len(route_handler.http_methods) > 1:
        handler = f"{handler}_{str(http_method).lower()}"
    return f"{domain}.{handler}"


def _statuses(method: str, path: str, handler: HTTPRouteHandler) -> set[int]:
    params = set(handler.parsed_fn_signature.parameters) - _INJECTED
    statuses = {503}
    if params:
        statuses.add(400)
    if path.startswith("/api"):
        statuses |= {401, 403}
    if "{" in path or (method, path) in _BODY_IDS:
        statuses.add(404)
    if method in {"POST", "PUT", "PATCH", "DELETE"} and path != "/auth/login":
        statuses.add(409)
    if method in {"POST", "PUT", "PATCH"}:
        # Any body may be refused (also one a handler reads itself, e.g. a PFIF
        # file), and the app-wide body limit answers 413 on every write.
        statuses |= {400, 413}
    if "data" in params:
        statuses |= {400, 413}
        if handler.parsed_fn_signature.parameters["data"].kwarg_definition is not None:
            media = getattr(
                handler.parsed_fn_signature.parameters["data"].kwarg_definition, "media_type", None
            )
            if str(getattr(media, "value", media)) == "multipart/form-data":
                statuses.add(415)
    if path == "/auth/login":
        statuses |= {401, 429}
    return statuses


def document_errors(app: Litestar) -> None:
    """Give every route's OpenAPI operation the error statuses it answers, each
    with :class:`ErrorBody` (see the module docstring)."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            codes: set[int] = set()
            for method in handler.http_methods:
                codes |= _statuses(str(method), route.path, handler)
            handler.responses = {
                **{
                    code: ResponseSpec(
                        data_container=ErrorBody,
                        description=_DESCRIPTIONS[code],
                        generate_examples=False,
                    )
                    for code in sorted(codes)
                },
                **(handler.responses or {}),
            }
