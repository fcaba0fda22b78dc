"""Fixed-window rate limits counted in the database (rate_counters).

Why not Litestar's ``RateLimitConfig``: its middleware reads, then writes a
history through a Store (not atomic across API processes), keys only by
client address (the per-contact limit needs the form's contact field), and
reads the wall clock (tests move ``rescue.clock``). One atomic upsert per hit
(``INSERT … ON CONFLICT DO UPDATE … RETURNING``, PostgreSQL and SQLite ≥ 3.35)
holds across processes and needs no further service.
"""

from __future__ import annotations

import hashlib

from rescue import clock
from rescue.clients import client_address
from rescue.errors import TooManyRequests
from rescue.family_requests.tables import RateCounter
from rescue.i18n import _

__all__ = ["client_address", "hit", "identity_key"]


def identity_key(value: str) -> str:
    """SHA-256 hex of a normalised identifier (address, contact): counters and
    duplicate checks never store or index the contact itself."""
    normal = "".join(value.split()).lower()
    return hashlib.sha256(normal.encode()).hexdigest()


async def hit(*, scope: str, who: str, limit: int, window_seconds: int) -> int:
    """Count one hit of ``who`` in ``scope``; returns the hits in this window.

    Raises:
        TooManyRequests: (429, ``retry_after`` seconds) over ``limit`` in the
            current window; the refused hit is counted too.
    """
    now = int(clock.now().timestamp())
    window = now // window_seconds
    expires = (window + 1) * window_seconds
    key = f"{scope}:{identity_key(who)}:{window}"
    rows = await RateCounter.raw(
        "INSERT INTO rate_counters (key, hits, expires_at) VALUES ({}, 1, {}) "
        "ON CONFLICT (key) DO UPDATE SET hits = rate_counters.hits + 1 RETURNING hits",
        key,
        expires,
    )
    hits = int(rows[0]["hits"])
    if hits == 1 and window % 16 == 0:  # now and then: forget finished windows
        await RateCounter.delete().where(RateCounter.expires_at <= now)
    if hits > limit:
        raise TooManyRequests(
            _(
                "Too many attempts. Please try again in {minutes} minutes.",
                minutes=max(1, (expires - now + 59) // 60),
            ),
            retry_after=expires - now,
        )
    return hits
