"""Health endpoints for load balancers and service managers, and the checks behind them.

- ``GET /health/live``: the process answers (restart it if not).
- ``GET /health/ready``: 200 when the database, the object store and the broker
  each answer within ``HEALTH_TIMEOUT_SECONDS``, else 503 (send it no traffic).
  Both answers report the pending-photo backlog and the age of its oldest photo,
  which tell whether the workers keep up.

The same checks serve ``rescue doctor`` (rescue.doctor). Messages name the
service and the error class, never a URL with its password.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from litestar import Response, get

from rescue.photos.services import Backlog
from rescue.settings import Settings, get_settings, redact_url

__all__ = ["Backlog", "Check", "backlog", "check_broker", "check_database", "check_store"]


@dataclass(frozen=True)
class Check:
    """One backing service's answer: ``ok``, how long it took (ms), and why not."""

    name: str
    ok: bool
    ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, "ms": self.ms}
        if self.error:
            body["error"] = self.error
        return body


async def _timed(name: str, within: float, probe: Any) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), within)
    except TimeoutError:
        error: str | None = f"no answer within {within:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        error = redact_url(f"{type(exc).__name__}: {exc}")[:300]
    else:
        error = None
    return Check(name, error is None, round((time.perf_counter() - started) * 1000, 1), error)


async def check_database(within: float) -> Check:
    """``SELECT 1`` on the service's engine (pool or not)."""
    from rescue.cases.tables import Case

    async def probe() -> None:
        await Case._meta.db.run_ddl("SELECT 1")

    return await _timed("database", within, probe)


async def check_store(settings: Settings, within: float) -> Check:
    """The bucket exists and the keys are accepted (``HEAD`` on the bucket)."""

    async def probe() -> None:
        from rescue.runtime import get_store

        store = await anyio.to_thread.run_sync(get_store, abandon_on_cancel=True)
        if not await anyio.to_thread.run_sync(
            store.client.bucket_exists, store.bucket, abandon_on_cancel=True
        ):
            raise RuntimeError(f"bucket {store.bucket!r} does not exist")

    return await _timed("object_store", within, probe)


async def check_broker(settings: Settings, within: float) -> Check:
    """Redis answers PING; in embedded mode (no ``REDIS_URL``) the in-process
    broker is always there."""

    async def probe() -> None:
        if settings.redis_url:
            # The broker's own client (bounded by BROKER_TIMEOUT_SECONDS).
            from workers.broker import broker_reachable

            if not await anyio.to_thread.run_sync(broker_reachable, abandon_on_cancel=True):
                raise ConnectionError("Redis did not answer PING")

    return await _timed("broker", within, probe)


async def backlog() -> Backlog:
    """The pending-photo backlog (one computation for readiness, metrics and
    ``rescue doctor``: :func:`rescue.photos.services.pending_backlog`)."""
    from rescue.photos.services import pending_backlog

    return await pending_backlog()


@get("/health/live", include_in_schema=False, sync_to_thread=False)
def live() -> dict[str, str]:
    """The process answers (nothing else is checked)."""
    return {"status": "ok"}


@get("/health", include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    """Kept for existing probes: the same as ``/health/live``."""
    return {"status": "ok"}


@get("/health/ready", include_in_schema=False)
async def ready() -> Response[dict[str, Any]]:
    """200 ``{"status": "ready", ...}`` or 503 ``{"status": "not_ready", ...}`` with
    each check (``ok``, ``ms``, ``error``) and the backlog."""
    settings = get_settings()
    timeout = settings.ops.health_timeout_seconds
    checks = await asyncio.gather(
        check_database(timeout), check_store(settings, timeout), check_broker(settings, timeout)
    )
    body: dict[str, Any] = {
        "status": "ready" if all(c.ok for c in checks) else "not_ready",
        "checks": {c.name: c.as_dict() for c in checks},
    }
    if checks[0].ok:
        try:
            queue = await asyncio.wait_for(backlog(), timeout)
            body["photos_pending"] = queue.pending
            body["photos_unqueued"] = queue.unqueued
            body["oldest_pending_age_seconds"] = round(queue.oldest_age_seconds, 1)
        except Exception:  # noqa: BLE001 - SELECT 1 answered but not this: report, not fail
            body["photos_pending"] = None
    return Response(body, status_code=200 if body["status"] == "ready" else 503)


#: Route handlers to register on the app.
HEALTH_ROUTES = [live, health, ready]
