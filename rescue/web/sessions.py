"""Page sessions: Litestar's server-side sessions in the database, and who they belong to.

- :class:`DatabaseSessionStore` is a Litestar :class:`~litestar.stores.base.Store`
  over the ``web_sessions`` table, so every API process sees the same sessions
  (PostgreSQL in production, SQLite embedded). Expiry is measured with
  :func:`rescue.clock.now` (tests move it with ``rescue.clock.advance``).
- The session cookie is HttpOnly, SameSite=Lax, ``Secure`` with
  ``SECURE_COOKIES``; it is renewed by every page request and ends after
  ``SESSION_IDLE_SECONDS`` without one (OWASP Session Management Cheat Sheet,
  "idle timeout").
- :func:`session_auth` builds Litestar's ``SessionAuth``: pages (everything but
  ``/api``, ``/auth/login``, ``/login``, ``/static``, ``/schema``, ``/health``,
  ``/public``) need a session; ``/api`` keeps its bearer tokens
  (rescue.auth). The session holds only the user id; the user is read on each
  request, so a deactivation ends their sessions at once.
- At login the session id is replaced (session fixation, OWASP).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.security.session_auth import SessionAuth
from litestar.stores.base import Store

from rescue import clock
from rescue.settings import Settings
from rescue.users.services import Principal, parse_scope
from rescue.users.tables import Role, User
from rescue.web.tables import WebSession

__all__ = [
    "PAGE_EXCLUDE",
    "STORE_NAME",
    "DatabaseSessionStore",
    "purge_expired",
    "rotate_session",
    "session_auth",
]

#: Name of the session store in the app's store registry.
STORE_NAME = "web_sessions"
#: Paths that are not pages (no session needed or used).
PAGE_EXCLUDE = [
    "^/api",
    "^/auth/",
    "^/login",
    "^/static/",
    "^/schema",
    "^/health",
    "^/public",
    "^/family(/|$)",
    "^/metrics",
]
#: Paths where the session cookie is neither read nor written (no store access).
_NO_SESSION = ["^/api", "^/auth/", "^/static/", "^/schema", "^/health", "^/metrics"]
_ROTATE = "rescue_rotate_session"


def _interval(value: int | timedelta | None) -> timedelta | None:
    if value is None:
        return None
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


class DatabaseSessionStore(Store):
    """Litestar store on the ``web_sessions`` table (shared by all API processes)."""

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        data = value.encode() if isinstance(value, str) else value
        ttl = _interval(expires_in)
        expires = clock.now() + ttl if ttl is not None else None
        await WebSession.insert(WebSession(key=key, data=data, expires_at=expires)).on_conflict(
            target=WebSession.key,
            action="DO UPDATE",
            values=[WebSession.data, WebSession.expires_at],
        )

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        row = (
            await WebSession.select(WebSession.data, WebSession.expires_at)
            .where(WebSession.key == key)
            .first()
        )
        if row is None:
            return None
        now = clock.now()
        if row["expires_at"] is not None and row["expires_at"] <= now:
            await WebSession.delete().where(WebSession.key == key)
            return None
        ttl = _interval(renew_for)
        if ttl is not None and row["expires_at"] is not None:
            await WebSession.update({WebSession.expires_at: now + ttl}).where(WebSession.key == key)
        return bytes(row["data"])

    async def delete(self, key: str) -> None:
        await WebSession.delete().where(WebSession.key == key)

    async def delete_all(self) -> None:
        await WebSession.delete(force=True)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = await WebSession.select(WebSession.expires_at).where(WebSession.key == key).first()
        if row is None or row["expires_at"] is None:
            return None
        return int((row["expires_at"] - clock.now()).total_seconds())


async def purge_expired(*, now: datetime) -> int:
    """Delete expired sessions and once-only form keys older than a day (daily
    retention job); returns how many sessions went."""
    from rescue.web.tables import FormSubmission

    gone = await WebSession.delete().where(WebSession.expires_at <= now).returning(WebSession.id)
    await FormSubmission.delete().where(FormSubmission.created_at < now - timedelta(days=1))
    return len(gone)


class _RotatingBackend(ServerSideSessionBackend):
    """Issues a new session id when :func:`rotate_session` was called (at login)."""

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        state = connection.scope.setdefault("state", {})  # type: ignore[typeddict-item]
        if state.get(_ROTATE):
            new_id = state.get(_ROTATE + "_id")
            if new_id is None:
                new_id = state[_ROTATE + "_id"] = self.generate_session_id()
            return str(new_id)
        return super().get_session_id(connection)

    async def store_in_message(self, scope_session: Any, message: Any, connection: Any) -> None:
        state = connection.scope.setdefault("state", {})
        old = connection.cookies.get(self.config.key)
        if state.get(_ROTATE) and old and old != "null":
            await self.delete(old, store=self.config.get_store_from_app(connection.scope["app"]))
        await super().store_in_message(scope_session, message, connection)


class _SessionConfig(ServerSideSessionConfig):
    _backend_class = _RotatingBackend  # type: ignore[assignment]


def rotate_session(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Give this connection's session a fresh id when the response is sent (login)."""
    connection.scope.setdefault("state", {})[_ROTATE] = True  # type: ignore[typeddict-item]


async def _retrieve_user(
    session: dict[str, Any], connection: ASGIConnection[Any, Any, Any, Any]
) -> Principal | None:
    """The active user of a session, or None (the session is then cleared).

    Also puts the user's language setting where rescue.i18n.middleware reads it.
    """
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    row = (
        await User.select(
            User.id, User.username, User.role, User.station, User.scope, User.active, User.locale
        )
        .where(User.id == user_id)
        .first()
    )
    if row is None or not row["active"]:
        return None
    if row["locale"]:
        connection.scope.setdefault("state", {})["locale"] = row["locale"]  # type: ignore[typeddict-item]
    return Principal(
        user_id=int(row["id"]),
        username=row["username"],
        role=Role(row["role"]),
        station=row["station"],
        scope=parse_scope(row["scope"] or ""),
    )


def session_auth(settings: Settings) -> SessionAuth[Principal, Any]:
    """Litestar's session authentication for pages (see the module docstring)."""
    config = _SessionConfig(
        key="rescue_session",
        max_age=settings.web.session_idle_seconds,
        renew_on_access=True,
        secure=settings.web.secure_cookies,
        httponly=True,
        samesite="lax",
        store=STORE_NAME,
        exclude=_NO_SESSION,
    )
    return SessionAuth[Principal, Any](
        retrieve_user_handler=_retrieve_user,
        session_backend_config=config,
        exclude=PAGE_EXCLUDE,
    )
