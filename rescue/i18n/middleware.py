"""Per-request locale: ``Accept-Language`` (or the session user's setting, which
pages put in ``scope["state"]["locale"]``) decides the language of messages."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from rescue.i18n import negotiate, use_locale

__all__ = ["locale_middleware"]


def locale_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware activating the negotiated locale for the whole request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"accept-language"),
            None,
        )
        preferred = (scope.get("state") or {}).get("locale")
        with use_locale(negotiate(header, preferred)):
            await app(scope, receive, send)

    return middleware
