"""Wiring of the workbench into the one Litestar app (called by rescue.app.create_app).

How to add a page (see also README "Pages"):

1. In the domain folder, ``pages.py``: a ``Controller`` with
   ``include_in_schema = False``, handlers returning
   ``Template(template_name="<domain>/<screen>.html", context={...})``, each
   with ``guards=[allow(Action.X)]`` (the same permission table as the API;
   station scoping of ``case_id``/``photo_id``/... path parameters included),
   calling the domain's services as the JSON controller does.
2. The template in ``rescue/templates/<domain>/``, extending ``base.html``.
3. Add the controller to ``_controllers()`` below.
4. Forms: ``method="post"``, ``{{ csrf_input }}``, and for forms that create
   something ``{{ form_key() }}`` + ``rescue.web.forms.once``; read with
   ``read_form``, check with ``parse`` (the API's msgspec Struct), re-render
   with ``errors``/``values`` on failure, ``Redirect(..., status_code=303)`` on
   success.
5. A browser test in ``tests/browser/`` with a page object in
   ``tests/browser/pages.py``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from rescue.settings import Settings
from rescue.web.errors import page_exception_handlers
from rescue.web.sessions import STORE_NAME, DatabaseSessionStore, session_auth

__all__ = [
    "csrf_config",
    "page_router",
    "schema_render_plugins",
    "secret_key",
    "session_auth",
    "static_routers",
    "web_stores",
]

log = logging.getLogger("rescue.web")

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
#: npm packages served under /static/vendor/<name>/ (package.json, `make install`).
VENDOR = {"htmx": "htmx.org/dist", "swagger-ui": "swagger-ui-dist"}


def _controllers() -> list[Any]:
    from rescue.announcements.pages import AnnouncementPages
    from rescue.backlog.pages import BacklogPages
    from rescue.cases.pages import CasePages
    from rescue.duplicates.pages import DuplicatePages
    from rescue.escorts.pages import EscortPages, HandoverPages, TaskPages
    from rescue.family_requests.pages import PublicPages, SearchRequestPages
    from rescue.imports.pages import ImportPages, WarningPages
    from rescue.matching.pages import LeadPages, MatchFilterPages, ReviewPages
    from rescue.notices.pages import NoticePages
    from rescue.photos.pages import PhotoPages
    from rescue.placements.pages import PlacementPages
    from rescue.searches.pages import DnaResultPages, SearchPages
    from rescue.stations.pages import TransferPages
    from rescue.stats.pages import StatsPages
    from rescue.users.admin_pages import AdminPages
    from rescue.users.pages import AccountPages, LoginPages
    from rescue.web.pages import HomePages

    return [
        LoginPages,
        AccountPages,
        HomePages,
        CasePages,
        BacklogPages,
        PhotoPages,
        AnnouncementPages,
        ReviewPages,
        MatchFilterPages,
        LeadPages,
        PlacementPages,
        EscortPages,
        TaskPages,
        HandoverPages,
        TransferPages,
        AdminPages,
        ImportPages,
        WarningPages,
        StatsPages,
        DuplicatePages,
        NoticePages,
        SearchPages,
        DnaResultPages,
        PublicPages,
        SearchRequestPages,
    ]


def page_router() -> Router:
    """Every page, with page-style error answers (rescue.web.errors)."""
    return Router(
        path="/",
        route_handlers=_controllers(),
        exception_handlers=page_exception_handlers,
        include_in_schema=False,
    )


def static_routers(settings: Settings) -> list[Any]:
    """/static/app/ (written here) and /static/vendor/<pkg>/ (from npm at install)."""
    routers: list[Any] = [
        create_static_files_router(
            path="/static/app", directories=[STATIC_DIR], include_in_schema=False, name="static"
        )
    ]
    base = settings.web.assets_dir
    for name, sub in VENDOR.items():
        folder = (base / sub) if base else None
        if folder is None or not folder.is_dir():
            log.error("browser assets %s missing under %s: run `make install` (npm ci)", name, base)
            continue
        routers.append(
            create_static_files_router(
                path=f"/static/vendor/{name}",
                directories=[folder],
                include_in_schema=False,
                name=f"vendor-{name}",
            )
        )
    return routers


def schema_render_plugins() -> list[Any]:
    """/schema as Swagger UI from the npm package served here (works offline)."""
    base = "/static/vendor/swagger-ui"
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
        )
    ]


def secret_key(settings: Settings) -> str:
    """``SECRET_KEY``, or one kept in ``DATA_DIR/secret_key`` (created once, mode 600)."""
    if settings.web.secret_key:
        return settings.web.secret_key
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def csrf_config(settings: Settings) -> CSRFConfig:
    """CSRF (double-submit cookie, HMAC-signed) on every page form; the JSON API
    (bearer tokens, no cookies) and ``/auth/login`` are outside it."""
    return CSRFConfig(
        secret=secret_key(settings),
        cookie_name="rescue_csrf",
        cookie_secure=settings.web.secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        exclude=["^/api", "^/auth/", "^/health", "^/metrics"],
    )


def web_stores() -> dict[str, Any]:
    return {STORE_NAME: DatabaseSessionStore()}
