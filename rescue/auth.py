"""Bearer-token authentication for ``/api`` routes (Litestar middleware)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware

from rescue.errors import NotAuthenticated
from rescue.users.services import Principal, authenticate

__all__ = ["Principal", "auth_middleware"]


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to a :class:`Principal` or answers 401."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated(
                "missing bearer token",
                accepted=(
                    "header 'Authorization: Bearer <token>' "
                    "(`rescue users create NAME --role ROLE` prints one)"
                ),
            )
        principal = await authenticate(token.strip())
        return AuthenticationResult(user=principal, auth=token)


auth_middleware = DefineMiddleware(
    BearerTokenMiddleware, exclude=["^/schema", "^/health", "^/metrics", "^/public", "^/auth/login"]
)
