"""Per-process cache of read responses, kept exact by :mod:`rescue.changes`.

A route opts in with ``**cached_read("notices", "photos")``, naming every table
its answer is read from. The answer is cached under the caller's role and
stations, the path and query, and the versions of those tables at the moment
the request *began* (before anything was read), so an answer read before a write
committed can never be served after that write was notified. Guards (role and
station checks) and the audit trail still run on every request; only the
handler's queries and serialisation are skipped.

What is cached holds personal data of notices (PIPL): it stays in the memory of
the API process that read it (never Redis or disk), at most
``READ_CACHE_ENTRIES`` answers, each for at most :data:`MAX_AGE_SECONDS`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.config.response_cache import ResponseCacheConfig
from litestar.stores.base import Store

from rescue.changes import feed

__all__ = [
    "CACHED_TABLES",
    "MAX_AGE_SECONDS",
    "STORE_NAME",
    "ReadCacheStore",
    "cached_read",
    "response_cache_config",
]

STORE_NAME = "rescue_reads"
#: Upper bound on an entry's life even without any write (belt and braces).
MAX_AGE_SECONDS = 300
_KEY = "rescue.read_cache_key"
#: Every table some cached route reads (each needs the change trigger).
CACHED_TABLES: set[str] = set()


class ReadCacheStore(Store):
    """A bounded in-memory store (oldest entry dropped first); the empty key means
    "do not cache" and is never stored or found.

    Litestar's ``MemoryStore`` has no size bound (expired entries stay until read),
    and what is cached here is personal data that must stay bounded. No lock is
    needed: the event loop's single thread makes each dict operation atomic.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}  # key -> (expires at, value)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        entry = self._entries.get(key) if key else None
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        if not key or self.max_entries <= 0:
            return
        while len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)), None)
        seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
        data = value.encode() if isinstance(value, str) else value
        self._entries[key] = (time.monotonic() + (seconds or MAX_AGE_SECONDS), data)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def delete_all(self) -> None:
        self._entries.clear()

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        entry = self._entries.get(key)
        return None if entry is None else max(0, int(entry[0] - time.monotonic()))

    def with_namespace(self, namespace: str) -> ReadCacheStore:
        return ReadCacheStore(self.max_entries)


def _key_builder(tables: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def build(request: Request[Any, Any, Any]) -> str:
        state = request.scope.setdefault("state", {})  # type: ignore[typeddict-item]
        if _KEY in state:  # the answer is stored under the key it was looked up with
            return str(state[_KEY])
        stamp = feed.stamp(tables)
        if stamp is None:
            key = ""
        else:
            user = request.scope.get("user")
            stations = user.visible_stations() if user is not None else []
            scope = request.scope
            key = (
                f"{getattr(getattr(user, 'role', None), 'value', '-')}|{stations}|{stamp}|"
                f"{scope['path']}?{scope.get('query_string', b'').decode('latin-1')}"
            )
        state[_KEY] = key
        return key

    return build


def cached_read(*tables: str) -> dict[str, Any]:
    """Route-decorator keyword arguments caching a GET route's answers.

    Args:
        tables: every table the answer is read from; each must carry the change
            trigger (tests/integration/test_read_cache.py checks it).
    """
    CACHED_TABLES.update(tables)
    return {"cache": MAX_AGE_SECONDS, "cache_key_builder": _key_builder(tables)}


def response_cache_config() -> ResponseCacheConfig:
    return ResponseCacheConfig(store=STORE_NAME, default_expiration=MAX_AGE_SECONDS)
