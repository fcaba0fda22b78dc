"""Committed-write notifications from PostgreSQL, for the per-process read caches.

A trigger on each cached table (migration 2026-11-29T15:00:00) sends
``NOTIFY rescue_changes, '<table>'`` when a statement writing it commits, from
whatever process wrote it. Each API process LISTENs on one connection of its own
and keeps a version counter per table; a cache entry records the versions it was
read under and is used only while they are unchanged (:meth:`ChangeFeed.stamp`).

Consistency, stated plainly:

- a write through this process's API advances every version before its answer
  is sent (:meth:`ChangeFeed.local_write`), so a client reads its own writes;
- a write by another process (API, worker, CLI) is seen once its notification
  arrives: after its commit, by the time a notification takes over the loopback
  or LAN (sub-millisecond on one host);
- while the LISTEN connection is down, :attr:`ChangeFeed.live` is false and every
  cache is bypassed; on reconnecting every version advances (all entries drop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rescue.audit.services import SAFE_METHODS

__all__ = ["CHANNEL", "ChangeFeed", "feed", "local_writes_middleware"]

log = logging.getLogger("rescue.changes")

#: Channel the triggers notify (rescue/piccolo_migrations/rescue_2026_11_29t15_00_00_000000.py).
CHANNEL = "rescue_changes"
#: Seconds between attempts to re-open the LISTEN connection.
RECONNECT_SECONDS = 1.0


class ChangeFeed:
    """Version counters of tables, advanced by PostgreSQL notifications."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._epoch = 0  # advanced by local writes and reconnects: invalidates every table
        self.live = False
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None
        self._config: dict[str, object] | None = None

    # -- versions ---------------------------------------------------------------

    def stamp(self, tables: Iterable[str]) -> tuple[int, ...] | None:
        """The versions of ``tables`` now, or None when the feed is not live (do not cache)."""
        if not self.live:
            return None
        return (self._epoch, *(self._versions.get(t, 0) for t in tables))

    def changed(self, table: str) -> None:
        self._versions[table] = self._versions.get(table, 0) + 1

    def local_write(self) -> None:
        """This process wrote something: no entry read before it may be used again."""
        self._epoch += 1

    # -- connection -------------------------------------------------------------

    async def start(self, config: dict[str, object]) -> None:
        """Open the LISTEN connection (asyncpg keyword arguments) and keep it open."""
        await self.stop()  # a previous app in this process (tests) may have left one
        self._config = config
        await self._connect()
        self._task = asyncio.create_task(self._keep_alive(), name="rescue-changes")

    async def stop(self) -> None:
        self.live = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.remove_termination_listener(self._on_terminated)  # not a loss
            with contextlib.suppress(Exception):
                await connection.close()

    async def _connect(self) -> None:
        import asyncpg

        assert self._config is not None
        try:
            connection = await asyncpg.connect(**self._config)  # type: ignore[arg-type]
            await connection.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("change notifications unavailable, read caches off: %s", exc)
            return
        connection.add_termination_listener(self._on_terminated)
        self._connection = connection
        self._epoch += 1  # anything cached before now may have missed notifications
        self.live = True

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.changed(payload)

    def _on_terminated(self, _connection: Any) -> None:
        log.warning("change-notification connection lost, read caches off until it is back")
        self.live = False
        self._connection = None

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(RECONNECT_SECONDS)
            if self._connection is None or self._connection.is_closed():
                self.live = False
                self._connection = None
                await self._connect()


#: The process's feed (one LISTEN connection per API process).
feed = ChangeFeed()


class LocalWritesMiddleware:
    """Advances the feed when this process answers a write request, before the
    answer leaves: the client's next read cannot be served from before its write."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET") in SAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_after_write(message: Message) -> None:
            if message["type"] == "http.response.start":
                feed.local_write()
            await send(message)

        await self.app(scope, receive, send_after_write)


local_writes_middleware = DefineMiddleware(LocalWritesMiddleware)
