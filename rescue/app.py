"""The Litestar application: ``create_app()`` wires routes, auth, errors and lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from rescue.alerts.controllers import AlertController
from rescue.announcements.controllers import AnnouncementController, PublicAnnouncementController
from rescue.audit.controllers import AuditController
from rescue.audit.middleware import audit_middleware
from rescue.auth import auth_middleware
from rescue.cases.controllers import CaseController
from rescue.changes import feed, local_writes_middleware
from rescue.duplicates.controllers import CaseDuplicatesController, DuplicateController
from rescue.errors import exception_handlers
from rescue.escorts.controllers import EscortController
from rescue.i18n.middleware import locale_middleware
from rescue.imports.controllers import ImportController
from rescue.matching.controllers import (
    CandidateController,
    CandidateLedgerController,
    RematchController,
)
from rescue.notices.controllers import NoticeController
from rescue.pfif.controllers import PfifController
from rescue.photos.controllers import PhotoController
from rescue.placements.controllers import PlacementController
from rescue.read_cache import STORE_NAME, ReadCacheStore, response_cache_config
from rescue.searches.controllers import SearchController
from rescue.settings import Settings, get_settings
from rescue.stats.controllers import StatsController
from rescue.users.controllers import AdminUserController, LoginController, TokenController

__all__ = ["create_app"]

log = logging.getLogger("rescue")


@get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from piccolo.engine.postgres import PostgresEngine

        from rescue.cases.tables import Case
        from rescue.runtime import get_store

        engine = Case._meta.db
        pooled = isinstance(engine, PostgresEngine) and settings.database.pool_max_size > 0
        if pooled:
            assert isinstance(engine, PostgresEngine)
            size = settings.database.pool_max_size
            # asyncpg opens min_size (default 10) at once and refuses min > max.
            await engine.start_connection_pool(min_size=min(size, 10), max_size=size)  # type: ignore[call-arg]
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
                await engine.close_connection_pool()

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
    """Build the API. Routes under ``/api`` need a bearer token; docs at ``/schema``."""
    settings = settings or get_settings()
    return Litestar(
        route_handlers=[
            health,
            CaseController,
            NoticeController,
            PhotoController,
            CandidateController,
            CandidateLedgerController,
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
            AlertController,
            CaseDuplicatesController,
            DuplicateController,
            PfifController,
            ImportController,
            StatsController,
        ],
        # Order matters: the request's language first (messages of every layer);
        # a write advances the read caches' versions before its answer leaves;
        # authentication, then the audit trail (which needs the caller).
        middleware=[locale_middleware, local_writes_middleware, auth_middleware, audit_middleware],
        stores={STORE_NAME: ReadCacheStore(settings.database.read_cache_entries)},
        response_cache_config=response_cache_config(),
        exception_handlers=exception_handlers,
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
        ),
        debug=settings.debug,
    )
