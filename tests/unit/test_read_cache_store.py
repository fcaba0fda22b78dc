"""The bounded response store of the read cache, and the change feed's versions."""

from __future__ import annotations

import time

from rescue.changes import ChangeFeed
from rescue.read_cache import ReadCacheStore


async def test_store_is_bounded_oldest_first():
    store = ReadCacheStore(max_entries=2)
    for key in ("a", "b", "c"):
        await store.set(key, key.encode(), expires_in=60)
    assert await store.get("a") is None
    assert await store.get("b") == b"b"
    assert await store.get("c") == b"c"


async def test_empty_key_is_never_stored():
    store = ReadCacheStore(max_entries=10)
    await store.set("", b"x", expires_in=60)
    assert await store.get("") is None


async def test_entries_expire(monkeypatch):
    store = ReadCacheStore(max_entries=10)
    await store.set("k", b"v", expires_in=5)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6)
    assert await store.get("k") is None


def test_feed_stamps_only_while_live_and_moves_with_changes():
    feed = ChangeFeed()
    assert feed.stamp(["notices"]) is None  # not live: nothing may be cached
    feed.live = True
    first = feed.stamp(["notices", "photos"])
    feed.changed("users")
    assert feed.stamp(["notices", "photos"]) == first  # another table
    feed.changed("photos")
    second = feed.stamp(["notices", "photos"])
    assert second != first
    feed.local_write()
    assert feed.stamp(["notices", "photos"]) != second
