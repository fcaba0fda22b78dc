"""The Litestar application: ``create_app()`` wires routes, auth, errors and lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from rescue.alerts.controllers import AlertController, CalendarController
from rescue.announcements.controllers import AnnouncementController, PublicAnnouncementController
from rescue.audit.controllers import AuditController
from rescue.audit.middleware import audit_middleware
from rescue.auth import auth_middleware
from rescue.backlog.controllers import BacklogController, HistoryController
from rescue.cases.controllers import CaseController, ReportController
from rescue.changes import feed, local_writes_middleware
from rescue.duplicates.controllers import CaseDuplicatesController, DuplicateController
from rescue.errors import StationRequest, answer_errors_middleware, exception_handlers
from rescue.escorts.controllers import EscortController
from rescue.family_requests.controllers import FamilyRequestController
from rescue.forms import form_middleware
from rescue.health import HEALTH_ROUTES
from rescue.i18n.middleware import locale_middleware
from rescue.imports.controllers import ImportController
from rescue.logs import configure_logging, request_context_middleware, request_id_middleware
from rescue.matching.controllers import (
    CandidateController,
    CandidateLedgerController,
    MatchFilterController,
    ReencodeController,
    RematchController,
)
from rescue.metrics import metrics, prometheus_config
from rescue.notices.controllers import NoticeController
from rescue.openapi import document_errors, operation_id
from rescue.pfif.controllers import PfifController
from rescue.photos.controllers import PhotoController
from rescue.placements.controllers import PlacementController
from rescue.read_cache import STORE_NAME, ReadCacheStore, response_cache_config
from rescue.searches.controllers import SearchController
from rescue.settings import Settings, SettingsError, get_settings
from rescue.stations.controllers import StationController
from rescue.stats.controllers import StatsController
from rescue.users.controllers import AdminUserController, LoginController, TokenController
from rescue.web import app as web
from rescue.web.errors import unknown_address
from rescue.web.templating import template_config

__all__ = ["create_app"]

log = logging.getLogger("rescue")


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from piccolo.engine.postgres import PostgresEngine

        from rescue.cases.tables import Case
        from rescue.db import close_pool, start_pool
        from rescue.runtime import get_store

        engine = Case._meta.db
        pooled = await start_pool(settings.database.pool_max_size)
        if isinstance(engine, PostgresEngine) and settings.database.read_cache:
            from rescue.db import postgres_config

            await feed.start(postgres_config(settings.database.url))
        get_store()  # fail fast if the object store is unreachable
        worker = scheduler = None
        if settings.inprocess_worker:
            from rescue.scheduler import build_scheduler

            worker = await _start_inprocess_worker()
            scheduler = build_scheduler(blocking=False)  # embedded: daily retention
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if worker is not None:
                worker.stop()
            await feed.stop()
            if pooled:
                await close_pool()

    return lifespan


async def _start_inprocess_worker():  # type: ignore[no-untyped-def]
    """Embedded mode: run the Dramatiq actors in this process and re-queue photos
    left pending by a previous run."""
    from dramatiq import Worker

    from rescue.photos.services import pending_photo_ids, queue_photos
    from workers.actors import send_photo
    from workers.broker import broker

    worker = Worker(broker, worker_threads=1)
    worker.start()
    await queue_photos(photo_ids=await pending_photo_ids(), send=send_photo)
    return worker


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app. Routes under ``/api`` need a bearer token; pages (rescue.web) a
    session; docs at ``/schema``.

    A malformed setting ends the process with one line on stderr (exit status 2),
    never a traceback (rescue.doctor). Face detection is never imported here: only
    the workers load its models (rescue.matching.embedding).
    """
    if settings is None:
        try:
            settings = get_settings()
        except SettingsError as exc:
            from rescue.doctor import exit_with

            exit_with(exc)
    configure_logging(settings.ops)
    app = Litestar(
        route_handlers=[
            *HEALTH_ROUTES,
            metrics,
            CaseController,
            ReportController,
            NoticeController,
            PhotoController,
            CandidateController,
            CandidateLedgerController,
            MatchFilterController,
            ReencodeController,
            RematchController,
            LoginController,
            TokenController,
            AdminUserController,
            AuditController,
            AnnouncementController,
            PublicAnnouncementController,
            PlacementController,
            SearchController,
            EscortController,
            StationController,
            AlertController,
            CaseDuplicatesController,
            DuplicateController,
            PfifController,
            ImportController,
            BacklogController,
            HistoryController,
            StatsController,
            CalendarController,
            FamilyRequestController,
            web.page_router(),
            *web.static_routers(settings),
        ],
        # Order matters: the request id and metrics see every answer; the request's
        # language (messages of every layer); an error raised by a middleware
        # below is answered here, so those above see its status; a write advances
        # the read caches' versions before its answer leaves; authentication, the
        # caller's id in the log context, then the audit trail (which needs the
        # caller); a multipart body is read last, by the one reader that answers 400s.
        middleware=[
            request_id_middleware,
            prometheus_config().middleware,
            locale_middleware,
            answer_errors_middleware,
            local_writes_middleware,
            auth_middleware,
            request_context_middleware,
            audit_middleware,
            form_middleware,
        ],
        stores={
            STORE_NAME: ReadCacheStore(settings.database.read_cache_entries),
            **web.web_stores(),
        },
        # Pages: templates, session login (its middleware runs first), CSRF on forms.
        template_config=template_config(),
        on_app_init=[web.session_auth(settings).on_app_init],
        csrf_config=web.csrf_config(settings),
        response_cache_config=response_cache_config(),
        exception_handlers={**exception_handlers, NotFoundException: unknown_address},
        request_class=StationRequest,
        lifespan=[_lifespan(settings)],
        request_max_body_size=settings.upload.max_bytes * 2,
        openapi_config=OpenAPIConfig(
            title="Rescue station: intake, family search and reunion",
            version="0.1.0",
            path="/schema",
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"BearerToken": []}],
            use_handler_docstrings=True,
            operation_id_creator=operation_id,
            render_plugins=web.schema_render_plugins(),
        ),
        debug=settings.debug,
        # Logging is rescue.logs' one format; Litestar must not install its own.
        logging_config=None,
    )
    document_errors(app)
    _import_body_limits(app, settings)
    return app


def _import_body_limits(app: Litestar, settings: Settings) -> None:
    """Routes marked ``opt={BODY_LIMIT: "import"}`` (an import run's upload: a list
    and its photos ZIP, up to ``IMPORT_MAX_BYTES`` each) take bodies up to
    :func:`rescue.forms.import_body_limit` plus a margin; every other route keeps
    the app's 2 x ``UPLOAD_MAX_BYTES``. The form reader (rescue.forms) refuses a
    body over the import limit first, naming it; Litestar's limit is the backstop
    (also for a form Litestar's CSRF check reads before the reader)."""
    from litestar.types import Empty

    from rescue.forms import BODY_LIMIT, FORM_OVERHEAD

    limit = 2 * settings.upload.import_max_bytes + 2 * FORM_OVERHEAD
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if handler.opt.get(BODY_LIMIT) == "import":
                handler.request_max_body_size = limit
                handler._resolved_request_max_body_size = Empty
