"""Users and bearer tokens.

API tokens are 32 random bytes (URL-safe base64). Only their SHA-256 digest is
stored: a token is high-entropy, so a fast hash suffices (no password hashing
needed), and a database leak reveals no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rescue.errors import Conflict, InvalidInput, NotAuthenticated
from rescue.users.tables import ApiToken, Role, User

__all__ = ["Principal", "authenticate", "create_user", "issue_token"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: int
    username: str
    role: Role
    station: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    *, username: str, role: str, station: str = "", display_name: str = ""
) -> int:
    """Create a user; returns its id.

    Raises:
        InvalidInput: unknown role or empty username.
        Conflict: the username exists.
    """
    try:
        role_value = Role(role)
    except ValueError as exc:
        raise InvalidInput(f"unknown role {role!r}", accepted=[r.value for r in Role]) from exc
    if not username.strip():
        raise InvalidInput("username must not be empty")
    if await User.exists().where(User.username == username):
        raise Conflict(f"user {username!r} already exists")
    rows = await User.insert(
        User(
            username=username,
            role=role_value.value,
            station=station,
            display_name=display_name or username,
        )
    ).returning(User.id)
    return int(rows[0]["id"])


async def issue_token(*, user_id: int, ttl_days: int, label: str = "") -> str:
    """Create a bearer token for a user; the plaintext is returned once, never stored."""
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(days=ttl_days) if ttl_days > 0 else None
    await ApiToken.insert(
        ApiToken(user=user_id, token_hash=_digest(token), label=label, expires_at=expires)
    )
    return token


async def authenticate(token: str) -> Principal:
    """Resolve a bearer token to its user.

    Raises:
        NotAuthenticated: unknown, revoked or expired token, or inactive user.
    """
    row = (
        await ApiToken.select(
            ApiToken.expires_at,
            ApiToken.revoked_at,
            ApiToken.user.id,
            ApiToken.user.username,
            ApiToken.user.role,
            ApiToken.user.station,
            ApiToken.user.active,
        )
        .where(ApiToken.token_hash == _digest(token))
        .first()
    )
    if row is None:
        raise NotAuthenticated("unknown token")
    if row["revoked_at"] is not None:
        raise NotAuthenticated("token has been revoked")
    expires = row["expires_at"]
    if expires is not None and expires <= datetime.now(UTC):
        raise NotAuthenticated("token has expired")
    if not row["user.active"]:
        raise NotAuthenticated("user is deactivated")
    return Principal(
        user_id=int(row["user.id"]),
        username=row["user.username"],
        role=Role(row["user.role"]),
        station=row["user.station"],
    )
