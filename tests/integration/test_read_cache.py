"""Per-process read caches (callers of tokens, notice reads) against real PostgreSQL
notifications: cached answers are used, and dropped the moment a write commits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from media.s3server import free_port
from rescue.changes import feed
from rescue.notices.tables import Notice
from rescue.read_cache import CACHED_TABLES
from tests.integration.helpers import new_notice


async def _sql(statement: str) -> Any:
    return await Notice._meta.db.run_ddl(statement)


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


@contextlib.asynccontextmanager
async def _unnotified(table: str) -> AsyncIterator[None]:
    """Writes to ``table`` inside this block send no notification (trigger disabled),
    which shows whether an answer came from the cache."""
    await _sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_notify_change")
    try:
        yield
    finally:
        await _sql(f"ALTER TABLE {table} ENABLE TRIGGER {table}_notify_change")


async def _name(client: Any, headers: dict[str, str], notice_id: int) -> str:
    response = await client.get(f"/api/notices/{notice_id}", headers=headers)
    assert response.status_code == 200
    return str(response.json()["name"])


async def test_every_cached_table_notifies_its_writes(client: Any) -> None:
    rows = await Notice.raw(
        "SELECT c.relname AS table FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname = c.relname || '_notify_change'"
    )
    notifying = {r["table"] for r in rows}
    assert CACHED_TABLES, "no route is cached"
    assert CACHED_TABLES | {"users", "api_tokens"} <= notifying


async def test_notice_reads_are_cached_and_dropped_when_a_write_commits(
    client: Any, staff: dict[str, str]
) -> None:
    assert feed.live
    notice = await new_notice(client, staff, name="王某")
    assert await _name(client, staff, notice["id"]) == "王某"
    listing = await client.get("/api/notices", headers=staff)
    assert listing.json()["total"] == 1

    async with _unnotified("notices"):
        await Notice.update({Notice.name: "silent"}).where(Notice.id == notice["id"])
        # no notification: the cached answer is served (this is what the cache saves)
        assert await _name(client, staff, notice["id"]) == "王某"

    # a notified write by another connection (the worker, the CLI, another API process)
    await Notice.update({Notice.name: "李某"}).where(Notice.id == notice["id"])

    async def renamed() -> bool:
        return await _name(client, staff, notice["id"]) == "李某"

    assert await _eventually(renamed)

    # a write through this process's API is seen by the very next read
    second = await new_notice(client, staff, name="张某")
    listing = await client.get("/api/notices", headers=staff)
    assert listing.json()["total"] == 2
    assert listing.json()["items"][0]["id"] == second["id"]


async def test_revoked_token_is_refused_at_once_despite_the_cache(
    client: Any, admin: dict[str, str]
) -> None:
    from rescue.users.tables import ApiToken

    for _ in range(2):  # the second request is answered from the cached caller
        assert (await client.get("/api/notices", headers=admin)).status_code == 200
    token = admin["Authorization"].removeprefix("Bearer ")
    from rescue.users.services import _digest

    await ApiToken.update({ApiToken.revoked_at: ApiToken.created_at}).where(
        ApiToken.token_hash == _digest(token)
    )

    async def refused() -> bool:
        return (await client.get("/api/notices", headers=admin)).status_code == 401

    assert await _eventually(refused, within=1.0)


async def test_cached_caller_is_used_until_users_change(client: Any, staff: dict[str, str]) -> None:
    from rescue.users.tables import User

    assert (await client.get("/api/notices", headers=staff)).status_code == 200
    async with _unnotified("users"):
        await User.update({User.active: False}).where(User.id > 0)
        # un-notified: the caller cached from the first request still passes
        assert (await client.get("/api/notices", headers=staff)).status_code == 200
    await User.update({User.active: False}).where(User.id > 0)  # notified

    async def refused() -> bool:
        return (await client.get("/api/notices", headers=staff)).status_code == 401

    assert await _eventually(refused, within=1.0)


async def test_caches_are_bypassed_while_notifications_are_down(
    client: Any, staff: dict[str, str]
) -> None:
    notice = await new_notice(client, staff, name="before")
    assert await _name(client, staff, notice["id"]) == "before"
    # Keep the feed down for the checks: its reconnects (every RECONNECT_SECONDS)
    # go to a closed port until the address is given back. Without this, a
    # reconnect falling right after the kill left no window to look through.
    config = feed._config
    assert config is not None
    feed._config = {**config, "host": "127.0.0.1", "port": free_port()}
    try:
        pid = feed._connection.get_server_pid()
        await _sql(f"SELECT pg_terminate_backend({pid})")

        async def down() -> bool:
            return not feed.live

        assert await _eventually(down)
        async with _unnotified("notices"):
            await Notice.update({Notice.name: "after"}).where(Notice.id == notice["id"])
            # un-notified, yet read fresh: nothing is cached while the feed is down
            assert await _name(client, staff, notice["id"]) == "after"
            assert await _name(client, staff, notice["id"]) == "after"
        assert not feed.live
    finally:
        feed._config = config

    async def back() -> bool:
        return feed.live

    assert await _eventually(back, within=10)
    # reconnected: nothing cached before the outage is served
    assert await _name(client, staff, notice["id"]) == "after"
