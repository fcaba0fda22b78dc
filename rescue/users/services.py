"""Users, bearer tokens and password login.

API tokens are 32 random bytes (URL-safe base64). Only their SHA-256 digest is
stored: a token is high-entropy, so a fast hash suffices (no password hashing
needed), and a database leak reveals no usable token.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106 "second
recommended" parameters). Failed logins are counted per username and per client
address in the ``login_throttle`` table; after ``LOGIN_FREE_ATTEMPTS`` failures
each further attempt must wait 2^(n - free) seconds (capped), answered 429 with
``Retry-After`` (OWASP Authentication Cheat Sheet, "Login Throttling").
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rescue import clock
from rescue.changes import feed
from rescue.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    is_unique_violation,
)
from rescue.i18n import _
from rescue.settings import AuthSettings
from rescue.users.tables import ApiToken, LoginThrottle, Role, User

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "Principal",
    "authenticate",
    "check_password",
    "create_user",
    "deactivate_user",
    "issue_token",
    "list_tokens",
    "list_users",
    "login",
    "normalise_username",
    "revoke_token",
    "set_password",
]

#: NIST SP 800-63B §5.1.1.2: memorised secrets of at least 8 characters; we ask 12.
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
#: Verified against when the username is unknown, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request.

    Station scoping (docs/privacy.md "Who sees what"):

    - ``admin`` sees every station;
    - ``station_staff`` see only their own ``station``;
    - ``reviewer`` and ``police_liaison`` see their own station plus ``scope``:
      station names, or ``"*"`` for every station (their assignment).
    """

    user_id: int
    username: str
    role: Role
    station: str
    scope: tuple[str, ...] = ()

    def visible_stations(self) -> list[str] | None:
        """Stations whose cases this caller may see; ``None`` means all."""
        if self.role == Role.admin:
            return None
        if self.role == Role.station_staff:
            return [self.station]
        if "*" in self.scope:
            return None
        return sorted({self.station, *self.scope})

    def sees_station(self, station: str) -> bool:
        visible = self.visible_stations()
        return visible is None or station in visible


def parse_scope(raw: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in raw.split(",") if s.strip())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: Unicode categories refused in usernames: controls (Cc), formatting characters
#: (Cf: bidirectional overrides such as U+202E, zero-width joiners), separators
#: other than the ASCII space (Zl, Zp), unassigned, private-use and surrogates.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})


def normalise_username(raw: str) -> str:
    """The one spelling of a username: Unicode NFKC (full-width ``ＡＢＣ`` and
    compatibility forms become ``ABC``), then case-folded (``Alice`` and ``ALICE``
    are ``alice``), surrounding spaces removed. Two accounts whose names look the
    same on a page or in the audit trail therefore cannot both exist (Unicode
    Technical Standard #39 §5, "identifier normalisation"; issue 11 item 13).

    Raises:
        InvalidInput: empty, or with a control, formatting (bidirectional
            override, zero-width) or unassigned character, or inner whitespace
            other than single spaces.
    """
    import unicodedata

    name = unicodedata.normalize("NFKC", raw).casefold().strip()
    name = unicodedata.normalize("NFKC", name)  # casefold can undo NFKC (e.g. U+0130)
    if not name:
        raise InvalidInput(_("username must not be empty"), accepted=_("1 to 100 characters"))
    bad = [ch for ch in name if unicodedata.category(ch) in _REFUSED_CATEGORIES]
    if bad or any(ch.isspace() and ch != " " for ch in name) or "  " in name:
        code = f"U+{ord(bad[0]):04X}" if bad else _("whitespace")
        raise InvalidInput(
            _("username contains a character that is not allowed ({code})", code=code),
            accepted=_(
                "letters, digits, punctuation and single spaces; no control, "
                "bidirectional or zero-width characters"
            ),
        )
    if len(name) > 100:
        raise InvalidInput(
            _("username has {count} characters", count=len(name)),
            accepted=_("1 to 100 characters"),
        )
    return name


async def create_user(
    *,
    username: str,
    role: str,
    station: str = "",
    display_name: str = "",
    scope: str = "",
    password: str | None = None,
) -> int:
    """Create a user; returns its id.

    Args:
        scope: for reviewers and police liaison, the stations they cover besides
            their own (comma-separated, or ``*`` for all); ignored for other roles.
        password: optional; enables ``POST /auth/login`` (≥ 12 characters).

    The username is stored normalised (:func:`normalise_username`); the
    unique index on it decides between concurrent creations of one name.

    Raises:
        InvalidInput: unknown role, station staff without a station,
            a username that is empty or has a refused character, or too short a
            password.
        Conflict: the username (normalised) exists.
    """
    try:
        role_value = Role(role)
    except ValueError as exc:
        raise InvalidInput(
            _("unknown role {role!r}", role=role), accepted=[r.value for r in Role]
        ) from exc
    station = station.strip()
    _require_station(role_value, station)
    username = normalise_username(username)
    taken = Conflict(
        _("user {username!r} already exists", username=username),
        accepted=_("a username not used yet (names are compared case-insensitively)"),
    )
    if await User.exists().where(User.username == username):
        raise taken
    password_hash = await _hash_password(password) if password is not None else None
    try:
        rows = await _insert_user(
            username=username,
            role_value=role_value,
            station=station,
            display_name=display_name,
            scope=scope,
            password_hash=password_hash,
        )
    except Exception as exc:
        if is_unique_violation(exc):  # created meanwhile by a concurrent request
            raise taken from None
        raise
    return int(rows[0]["id"])


def _require_station(role: Role, station: str) -> None:
    """One rule for the API, the pages and the CLI: station staff work on their
    station's people only (rescue.permissions), so they need a station."""
    if role == Role.station_staff and not station:
        raise InvalidInput(
            _("station staff belong to a station: give the station"),
            field="station",
            accepted=_("the name of the user's station, e.g. north"),
        )


def _scope_of(role: Role, scope: str) -> str:
    """Stored scope: reviewers and police liaison only (others see their station)."""
    return ",".join(parse_scope(scope)) if role in (Role.reviewer, Role.police_liaison) else ""


async def _insert_user(
    *,
    username: str,
    role_value: Role,
    station: str,
    display_name: str,
    scope: str,
    password_hash: str | None,
) -> list[dict[str, Any]]:
    return await User.insert(
        User(
            username=username,
            role=role_value.value,
            station=station,
            scope=_scope_of(role_value, scope),
            display_name=display_name or username,
            password_hash=password_hash,
        )
    ).returning(User.id)


async def _hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            _("the password has {size} characters", size=len(password)),
            accepted=_("at least {n} characters", n=MIN_PASSWORD_LENGTH),
        )
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def set_password(*, username: str, password: str) -> None:
    """Set (or replace) a user's password.

    Raises:
        NotFound: no such user.
        InvalidInput: shorter than :data:`MIN_PASSWORD_LENGTH`.
    """
    hashed = await _hash_password(password)
    username = normalise_username(username)
    updated = (
        await User.update({User.password_hash: hashed})
        .where(User.username == username)
        .returning(User.id)
    )
    if not updated:
        raise NotFound(_("user {username} does not exist", username=username))


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def _check_throttle(keys: list[str], now: datetime) -> None:
    rows = await LoginThrottle.select(LoginThrottle.blocked_until).where(
        LoginThrottle.key.is_in(keys)
    )
    waits = [r["blocked_until"] for r in rows if r["blocked_until"] and r["blocked_until"] > now]
    if waits:
        retry = math.ceil((max(waits) - now).total_seconds())
        raise TooManyRequests(
            _("too many failed logins; try again in {seconds} s", seconds=retry),
            accepted=_("wait for Retry-After seconds"),
            retry_after=retry,
        )


async def _record_failure(keys: list[str], now: datetime, settings: AuthSettings) -> None:
    for key in keys:
        await LoginThrottle.insert(LoginThrottle(key=key, failures=0)).on_conflict(
            target=LoginThrottle.key, action="DO NOTHING"
        )
        row = (
            await LoginThrottle.select(LoginThrottle.failures)
            .where(LoginThrottle.key == key)
            .first()
        )
        failures = int(row["failures"] if row else 0) + 1
        over = failures - settings.login_free_attempts
        blocked = (
            now + timedelta(seconds=min(2 ** min(over, 30), settings.login_max_delay_seconds))
            if over > 0
            else None
        )
        await LoginThrottle.update(
            {
                LoginThrottle.failures: failures,
                LoginThrottle.last_failed_at: now,
                LoginThrottle.blocked_until: blocked,
            }
        ).where(LoginThrottle.key == key)


async def check_password(
    *, username: str, password: str, client: str, settings: AuthSettings
) -> int:
    """Check a user's password under the login back-off; returns the user's id.

    Used by ``POST /auth/login`` (token) and the login page (session) alike.
    Times are :func:`rescue.clock.now` (tests move them).

    The username is compared normalised (:func:`normalise_username`). A
    failure's back-off is counted from when the failure is recorded, after the
    password check (Argon2 takes ~0.1-2 s, more on a loaded machine), so the
    wait a client is told is the wait it gets (issue 11 item 17). Times come
    from :mod:`rescue.clock`.

    Raises:
        TooManyRequests: (429) this username or address is backing off.
        NotAuthenticated: (401) wrong username or password, no password set, or
            user deactivated (one message for all, so usernames are not revealed).
    """
    try:
        username = normalise_username(username)
    except InvalidInput:
        username = ""  # no account has it: answered like a wrong username
    keys = [f"user:{username}"[:200], f"addr:{client}"[:200]]
    await _check_throttle(keys, clock.now())
    row = (
        await User.select(User.id, User.password_hash, User.active)
        .where(User.username == username)
        .first()
    )
    stored = row["password_hash"] if row else None
    ok = await anyio.to_thread.run_sync(_verify, stored, password)
    if not ok or row is None or not row["active"]:
        await _record_failure(keys, clock.now(), settings)
        raise NotAuthenticated(
            _("wrong username or password"),
            accepted=_("the username and password of an active user who has a password"),
        )
    await LoginThrottle.delete().where(LoginThrottle.key.is_in(keys))
    return int(row["id"])


async def login(
    *, username: str, password: str, client: str, settings: AuthSettings
) -> tuple[str, datetime]:
    """Check a password (:func:`check_password`) and issue a short-lived token;
    returns (token, expires_at). Raises as :func:`check_password`."""
    user_id = await check_password(
        username=username, password=password, client=client, settings=settings
    )
    ttl = timedelta(hours=settings.login_token_ttl_hours)
    token = secrets.token_urlsafe(32)
    expires = clock.now() + ttl
    await ApiToken.insert(
        ApiToken(user=user_id, token_hash=_digest(token), label="login", expires_at=expires)
    )
    return token, expires


async def issue_token(*, user_id: int, ttl_days: int, label: str = "") -> str:
    """Create a bearer token for a user; the plaintext is returned once, never stored."""
    token = secrets.token_urlsafe(32)
    expires = clock.now() + timedelta(days=ttl_days) if ttl_days > 0 else None
    await ApiToken.insert(
        ApiToken(user=user_id, token_hash=_digest(token), label=label, expires_at=expires)
    )
    return token


#: Tables a cached caller depends on (their writes drop the cache, see rescue.changes).
_AUTH_TABLES = ("users", "api_tokens")
#: Most callers cached per process; beyond it the cache starts over.
_CACHED_CALLERS_MAX = 10_000
#: token digest -> (table versions when read, caller, token expiry)
_callers: dict[str, tuple[tuple[int, ...], Principal, datetime | None]] = {}


async def authenticate(token: str) -> Principal:
    """Resolve a bearer token to its user.

    A valid token's caller is kept in this process's memory (keyed by the token's
    SHA-256, never the token) until a write to ``users`` or ``api_tokens`` is
    notified (:mod:`rescue.changes`) or the token expires, so a revocation or
    deactivation takes effect at once. Failed lookups are never cached.

    Raises:
        NotAuthenticated: unknown, revoked or expired token, or inactive user.
    """
    digest = _digest(token)
    stamp = feed.stamp(_AUTH_TABLES)
    if stamp is not None and (hit := _callers.get(digest)) is not None:
        read_under, principal, expires_at = hit
        if read_under == stamp and (expires_at is None or expires_at > clock.now()):
            return principal
    principal, expires_at = await _lookup(digest)
    if stamp is not None:
        if len(_callers) >= _CACHED_CALLERS_MAX:
            _callers.clear()
        _callers[digest] = (stamp, principal, expires_at)
    return principal


@functools.cache
def _auth_columns() -> tuple[Any, ...]:
    """Built once: Piccolo copies columns to follow a foreign key (``ApiToken.user.id``),
    a large share of an uncached request's CPU (py-spy, bench/e2e.py)."""
    return (
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiToken.user.id,
        ApiToken.user.username,
        ApiToken.user.role,
        ApiToken.user.station,
        ApiToken.user.scope,
        ApiToken.user.active,
    )


async def _lookup(digest: str) -> tuple[Principal, datetime | None]:
    row = await ApiToken.select(*_auth_columns()).where(ApiToken.token_hash == digest).first()
    if row is None:
        raise NotAuthenticated(_("unknown token"))
    if row["revoked_at"] is not None:
        raise NotAuthenticated(_("token has been revoked"))
    expires = row["expires_at"]
    if expires is not None and expires <= clock.now():
        raise NotAuthenticated(_("token has expired"))
    if not row["user.active"]:
        raise NotAuthenticated(_("user is deactivated"))
    principal = Principal(
        user_id=int(row["user.id"]),
        username=row["user.username"],
        role=Role(row["user.role"]),
        station=row["user.station"],
        scope=parse_scope(row["user.scope"] or ""),
    )
    return principal, expires


_TOKEN_FIELDS = (
    ApiToken.id,
    ApiToken.user.id,
    ApiToken.user.username,
    ApiToken.label,
    ApiToken.created_at,
    ApiToken.expires_at,
    ApiToken.revoked_at,
)


async def list_tokens(*, by: Principal, all_users: bool = False) -> list[dict[str, Any]]:
    """Tokens (never their secret or hash): the caller's own, or with ``all_users``
    (admin only) everyone's. Newest first.

    Raises:
        PermissionDenied: ``all_users`` by a non-admin.
    """
    query = ApiToken.select(*_TOKEN_FIELDS).order_by(ApiToken.id, ascending=False)
    if all_users:
        if by.role != Role.admin:
            raise PermissionDenied(_("only an admin may list every user's tokens"))
    else:
        query = query.where(ApiToken.user == by.user_id)
    return list(await query)


async def revoke_token(*, token_id: int, by: Principal) -> None:
    """Revoke a token (idempotent). Users revoke their own; an admin any.

    Raises:
        NotFound: no such token, or (for a non-admin) not one of theirs.
    """
    where: Any = ApiToken.id == token_id
    if by.role != Role.admin:
        where = where & (ApiToken.user == by.user_id)
    if not await ApiToken.exists().where(where):
        raise NotFound(_("token {token_id} does not exist or is not yours", token_id=token_id))
    await ApiToken.update({ApiToken.revoked_at: clock.now()}).where(
        where & ApiToken.revoked_at.is_null()
    )


_USER_FIELDS = (
    User.id,
    User.username,
    User.display_name,
    User.role,
    User.station,
    User.scope,
    User.active,
    User.created_at,
)


async def list_users(*, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Users (never password hashes), by id; returns (rows, total)."""
    rows = await User.select(*_USER_FIELDS).order_by(User.id).limit(limit).offset(offset)
    rows = [{**r, "has_password": False} for r in rows]
    with_pw = {
        r["id"]
        for r in await User.select(User.id).where(
            User.id.is_in([r["id"] for r in rows] or [0]) & User.password_hash.is_not_null()
        )
    }
    for r in rows:
        r["has_password"] = r["id"] in with_pw
    return rows, await User.count()


async def get_user(*, user_id: int) -> dict[str, Any]:
    """One user (no password hash). Raises NotFound."""
    row = await User.select(*_USER_FIELDS).where(User.id == user_id).first()
    if row is None:
        raise NotFound(_("user {user_id} does not exist", user_id=user_id))
    row["has_password"] = await User.exists().where(
        (User.id == user_id) & User.password_hash.is_not_null()
    )
    return row


async def deactivate_user(*, user_id: int, by: Principal) -> dict[str, Any]:
    """Deactivate a user and revoke all their tokens (idempotent).

    Raises:
        NotFound: no such user.
        Conflict: an admin deactivating themselves (would lock the station out).
    """
    await get_user(user_id=user_id)
    if user_id == by.user_id:
        raise Conflict(_("you cannot deactivate yourself"), accepted=_("another user's id"))
    now = clock.now()
    async with User._meta.db.transaction():
        await User.update({User.active: False}).where(User.id == user_id)
        await ApiToken.update({ApiToken.revoked_at: now}).where(
            (ApiToken.user == user_id) & ApiToken.revoked_at.is_null()
        )
    return await get_user(user_id=user_id)


async def change_assignment(
    *, user_id: int, role: str, station: str, scope: str, by: Principal
) -> dict[str, Any]:
    """Change a user's role, station and covered stations (``scope``, as in
    :func:`create_user`). Takes effect on the user's next request: sessions and
    tokens read the user's row each time (tokens through the read cache, which
    the ``users`` change notification clears).

    Raises:
        NotFound: no such user.
        InvalidInput: unknown role; station staff without a station.
        Conflict: an administrator changing their own role (they could lock
            every administrator out).
    """
    current = await get_user(user_id=user_id)
    try:
        role_value = Role(role)
    except ValueError as exc:
        raise InvalidInput(
            _("unknown role {role!r}", role=role), field="role", accepted=[r.value for r in Role]
        ) from exc
    station = station.strip()
    _require_station(role_value, station)
    if user_id == by.user_id and role_value.value != str(current["role"]):
        raise Conflict(
            _("you cannot change your own role"), accepted=_("another administrator does it")
        )
    await User.update(
        {
            User.role: role_value.value,
            User.station: station,
            User.scope: _scope_of(role_value, scope),
        }
    ).where(User.id == user_id)
    return await get_user(user_id=user_id)


async def set_locale(*, user_id: int, locale: str) -> None:
    """Set a user's page language: ``zh_CN``, ``en`` or ``""`` (the browser's).

    Raises:
        InvalidInput: another value.
    """
    from rescue.settings import LOCALES

    if locale not in ("", *LOCALES):
        raise InvalidInput(_("unknown language {locale}", locale=locale), accepted=["", *LOCALES])
    await User.update({User.locale: locale}).where(User.id == user_id)


async def change_own_password(
    *, by: Principal, current: str, new: str, client: str, settings: AuthSettings
) -> None:
    """Replace the caller's password after checking the current one (under the
    same back-off as login).

    Raises:
        NotAuthenticated: the current password is wrong.
        TooManyRequests: backing off after failures.
        InvalidInput: the new password is too short.
    """
    await check_password(username=by.username, password=current, client=client, settings=settings)
    await set_password(username=by.username, password=new)
