"""How pages answer errors: the same domain errors as the API (rescue.errors),
shown as pages in the user's language instead of JSON.

- no session, or an expired one: to the login page, then back (``next``);
  an htmx request gets ``HX-Redirect`` so the whole page goes there;
- 403 (role, another station's case, a refused CSRF token), 404, other 4xx:
  an error page that says what happened and where to go; the detail of a
  403 is not shown (it may name another station);
- anything else: 500 page; the error is logged (never personal data).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from rescue.errors import DomainError, NotAuthenticated, NotFound, PermissionDenied
from rescue.i18n import _

__all__ = ["login_url", "page_exception_handlers", "safe_next", "unknown_address"]

log = logging.getLogger("rescue.web")


def safe_next(target: str | None) -> str:
    """A local path to return to after login (never another site: ``//x``, ``http:``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_url(request: Request[Any, Any, Any]) -> str:
    """The login page, returning to this request's page (the page itself for htmx)."""
    here = request.headers.get("hx-current-url") or str(request.url)
    # Keep only path and query of where the user was.
    from urllib.parse import urlsplit

    parts = urlsplit(here)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    url = f"/login?next={quote(safe_next(target), safe='')}"
    # "Your session has ended" only to someone who had one (a first visit has no cookie).
    return url + "&expired=1" if "rescue_session" in request.cookies else url


def _to_login(request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    url = login_url(request)
    if request.headers.get("hx-request"):
        return Response(content="", status_code=200, headers={"HX-Redirect": url})
    return Redirect(path=url, status_code=303)


#: Paths of the public pages (families, no login): their errors use the public
#: layout, never the staff navigation.
_PUBLIC_PAGES = ("/family", "/public")


def _page(request: Request[Any, Any, Any], status: int, title: str, detail: str) -> Template:
    public = request.url.path.startswith(_PUBLIC_PAGES)
    return Template(
        template_name="family/error.html" if public else "error.html",
        context={"status": status, "title": title, "detail": detail},
        status_code=status,
    )


def _forbidden(request: Request[Any, Any, Any], exc: Exception) -> Template:
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return _page(
            request,
            403,
            _("This form has expired"),
            _("The form could not be verified (CSRF check). Reload the page and send it again."),
        )
    return _page(
        request,
        403,
        _("Not allowed"),
        _("Your role or station does not allow this page or action."),
    )


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Template:
    return _page(request, 404, _("Not found"), _("There is nothing at this address."))


def unknown_address(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    """An address no route serves: the "not found" page for a browser (it asks
    for ``text/html``), the API's JSON error body for everyone else, and always
    JSON under ``/api/``."""
    from rescue.errors import exception_handlers

    accept = request.headers.get("accept", "")
    if "text/html" in accept and not request.url.path.startswith("/api/"):
        return _not_found(request, exc)
    handler = exception_handlers[HTTPException]
    return handler(request, exc)  # type: ignore[no-any-return]


def _domain(request: Request[Any, Any, Any], exc: DomainError) -> Template:
    return _page(request, exc.status_code, _("The request was refused"), exc.detail)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Template:
    return _page(request, exc.status_code, _("The request was refused"), str(exc.detail))


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Template:
    log.exception("page error on %s", request.scope.get("path_template", ""), exc_info=exc)
    return _page(
        request,
        500,
        _("Something went wrong"),
        _("The error has been logged. Try again; if it repeats, tell the administrator."),
    )


page_exception_handlers: dict[Any, Any] = {
    NotAuthorizedException: _to_login,
    NotAuthenticated: _to_login,
    PermissionDenied: _forbidden,
    PermissionDeniedException: _forbidden,
    NotFound: _not_found,
    NotFoundException: _not_found,
    DomainError: _domain,
    HTTPException: _http,
    HTTP_500_INTERNAL_SERVER_ERROR: _internal,
}
