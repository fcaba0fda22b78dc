"""The client's address behind trusted proxies (``TRUSTED_PROXIES``): one rule for
every per-address limit, the public pages' rate limits and the login back-off."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["Network", "client_address"]

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
