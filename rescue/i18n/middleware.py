"""Per-request locale: ``Accept-Language`` (or the session user's setting, which
pages put in ``scope["state"]["locale"]``, or ``?lang=`` on a page) decides the
language of messages."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from rescue.i18n import negotiate, use_locale

__all__ = ["locale_middleware"]


def _query_lang(scope: Scope) -> str | None:
    """``?lang=en`` / ``?lang=zh_CN`` on a public page (no account to hold a setting);
    a link away keeps it, so the choice is part of each cached URL."""
    from urllib.parse import parse_qs

    raw = scope.get("query_string", b"")
    values = parse_qs(raw.decode("latin-1")).get("lang") if raw else None
    return values[0] if values else None


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
        preferred = (scope.get("state") or {}).get("locale") or _query_lang(scope)
        with use_locale(negotiate(header, preferred)):
            await app(scope, receive, send)

    return middleware
