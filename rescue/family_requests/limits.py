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
import ipaddress
from collections.abc import Iterable, Sequence

from rescue import clock
from rescue.errors import TooManyRequests
from rescue.family_requests.tables import RateCounter
from rescue.i18n import _

__all__ = ["client_address", "hit", "identity_key"]


def identity_key(value: str) -> str:
    """SHA-256 hex of a normalised identifier (address, contact): counters and
    duplicate checks never store or index the contact itself."""
    normal = "".join(value.split()).lower()
    return hashlib.sha256(normal.encode()).hexdigest()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]
) -> str:
    """The address the per-address limits count for one request.

    Args:
        peer: the socket peer's address (``None`` when unknown).
        forwarded_for: the request's ``X-Forwarded-For`` header values, in order.
        proxies: ``TRUSTED_PROXIES`` (rescue.settings.PublicSettings).

    Returns:
        ``peer`` unless it is a trusted proxy; then the right-most address of
        ``X-Forwarded-For`` that is not a trusted proxy (each proxy appends the
        address it received the request from, so everything left of the first
        untrusted hop may be written by the client and is ignored); the
        left-most entry when every hop is trusted; ``peer`` when the header is
        absent. "unknown" without a peer.

    Source: the right-most untrusted rule of MDN "X-Forwarded-For, Security and
    privacy concerns" (the left-most value is spoofable) and RFC 7239 §8.3.
    """
    address = (peer or "").strip() or "unknown"
    if not proxies or not _trusted(address, proxies):
        return address
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop[:100]
        address = hop
    return address[:100]


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
