"""Bearer-token authentication for ``/api`` routes (Litestar middleware); pages
authenticate with a session instead (rescue.web.sessions)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.types import Receive, Scope, Send

from rescue.errors import NotAuthenticated
from rescue.i18n import _
from rescue.users.services import Principal, authenticate

__all__ = ["Principal", "auth_middleware"]


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to a :class:`Principal` or answers 401.

    Only for ``/api``: pages authenticate with a session (rescue.web.sessions)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if path != "/api" and not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated(
                _("missing bearer token"),
                accepted=(
                    _(
                        "header 'Authorization: Bearer <token>' "
                        "(`rescue users create NAME --role ROLE` prints one)"
                    )
                ),
            )
        principal = await authenticate(token.strip())
        return AuthenticationResult(user=principal, auth=token)


auth_middleware = DefineMiddleware(
    BearerTokenMiddleware, exclude=["^/schema", "^/health", "^/metrics", "^/public", "^/auth/login"]
)
