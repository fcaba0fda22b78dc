"""HTTP routes for login, tokens and user administration."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromQuery, JSONBody

from rescue.errors import NotAuthenticated, TooManyRequests
from rescue.metrics import login_failed
from rescue.permissions import Action, allow
from rescue.schemas import Limit, Offset, Page, PathId
from rescue.settings import get_settings
from rescue.users import services
from rescue.users.schemas import (
    LoginIn,
    LoginOut,
    TokenOut,
    UserAssignment,
    UserCreate,
    UserOut,
)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The client's address for the login back-off: the socket peer, or behind a
    proxy listed in ``TRUSTED_PROXIES`` the right-most untrusted
    ``X-Forwarded-For`` hop (the same rule as the public pages' limits,
    :func:`rescue.clients.client_address`)."""
    from rescue.clients import client_address as address_of
    from rescue.settings import get_settings

    return address_of(
        request.client.host if request.client else None,
        request.headers.getall("x-forwarded-for", []),
        get_settings().public.trusted_proxies,
    )


def _token(row: dict[str, Any]) -> TokenOut:
    return TokenOut(
        id=row["id"],
        user_id=row["user.id"],
        username=row["user.username"],
        label=row["label"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class LoginController(Controller):
    path = "/auth"
    tags = ("auth",)

    @post("/login", summary="Exchange a password for a short-lived token", security=[{}])
    async def login(self, data: JSONBody[LoginIn], request: Request[Any, Any, Any]) -> LoginOut:
        """201 with a token valid ``LOGIN_TOKEN_TTL_HOURS`` (default 12 h).

        401 wrong username or password (one message for both); 429 with
        ``Retry-After`` after ``LOGIN_FREE_ATTEMPTS`` failures for this username
        or this address (backoff 2^n s, capped at ``LOGIN_MAX_DELAY_SECONDS``).
        """
        try:
            token, expires = await services.login(
                username=data.username,
                password=data.password,
                client=client_address(request),
                settings=get_settings().auth,
            )
        except (NotAuthenticated, TooManyRequests) as exc:
            login_failed("throttled" if isinstance(exc, TooManyRequests) else "bad_credentials")
            raise
        return LoginOut(token=token, expires_at=expires)


class TokenController(Controller):
    path = "/api/tokens"
    tags = ("auth",)

    @get(
        "/",
        summary="Your tokens (admin: everyone's with all=true)",
        guards=[allow(Action.token_manage)],
    )
    async def index(
        self, request: Request[Any, Any, Any], all: FromQuery[bool] = False
    ) -> list[TokenOut]:
        """Newest first; never the token itself. 403 for ``all=true`` unless admin."""
        rows = await services.list_tokens(by=request.user, all_users=all)
        return [_token(r) for r in rows]

    @delete(
        "/{token_id:int}",
        summary="Revoke a token",
        guards=[allow(Action.token_manage)],
        status_code=204,
    )
    async def revoke(self, token_id: PathId, request: Request[Any, Any, Any]) -> None:
        """Your own tokens; an admin any. 404 if unknown (or not yours). Idempotent."""
        await services.revoke_token(token_id=token_id, by=request.user)


class AdminUserController(Controller):
    path = "/api/admin/users"
    tags = ("admin",)

    @post("/", summary="Create a user", guards=[allow(Action.user_admin)])
    async def create(self, data: JSONBody[UserCreate]) -> UserOut:
        """201 with the user; without ``password`` also a first API token (shown once).
        400 bad role/too short a password; 409 username taken."""
        user_id = await services.create_user(
            username=data.username,
            role=data.role.value,
            station=data.station,
            display_name=data.display_name,
            scope=data.scope,
            password=data.password,
        )
        token = None
        if data.password is None:
            token = await services.issue_token(
                user_id=user_id, ttl_days=get_settings().token_ttl_days, label="admin"
            )
        return UserOut(**await services.get_user(user_id=user_id), token=token)

    @get("/", summary="Users (paged)", guards=[allow(Action.user_admin)])
    async def index(self, limit: Limit = 50, offset: Offset = 0) -> Page[UserOut]:
        """Users by id, never password hashes; ``has_password`` says who can log in."""
        rows, total = await services.list_users(limit=limit, offset=offset)
        return Page(items=[UserOut(**r) for r in rows], total=total, limit=limit, offset=offset)

    @put(
        "/{user_id:int}/assignment",
        summary="Change a user's role, station and covered stations",
        guards=[allow(Action.user_admin)],
        status_code=200,
    )
    async def assign(
        self, user_id: PathId, data: JSONBody[UserAssignment], request: Request[Any, Any, Any]
    ) -> UserOut:
        """Takes effect on the user's next request. 400 station staff without a
        station; 404 unknown user; 409 changing your own role."""
        return UserOut(
            **await services.change_assignment(
                user_id=user_id,
                role=data.role.value,
                station=data.station,
                scope=data.scope,
                by=request.user,
            )
        )

    @post(
        "/{user_id:int}/deactivate",
        summary="Deactivate a user and revoke their tokens",
        guards=[allow(Action.user_admin)],
        status_code=200,
    )
    async def deactivate(self, user_id: PathId, request: Request[Any, Any, Any]) -> UserOut:
        """Idempotent. 404 unknown user; 409 deactivating yourself."""
        return UserOut(**await services.deactivate_user(user_id=user_id, by=request.user))
