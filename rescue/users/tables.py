"""Users and their API tokens."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Role(StrEnum):
    """Who a user is to the station (see docs/glossary.md)."""

    station_staff = "station_staff"
    police_liaison = "police_liaison"
    reviewer = "reviewer"
    admin = "admin"


class User(Table, tablename="users"):
    id: Serial
    username = Varchar(length=100, unique=True)
    display_name = Varchar(length=200, default="")
    role = Varchar(length=32, choices=Role)
    station = Varchar(length=100, default="")
    #: Stations a reviewer or police liaison covers besides their own: comma-separated
    #: names, or ``*`` for all stations (see rescue/users/services.Principal.sees_station).
    scope = Varchar(length=500, default="")
    #: Argon2id hash (argon2-cffi, PHC string); NULL: the user logs in with API tokens only.
    password_hash = Varchar(length=200, null=True, default=None)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    #: Language of the user's pages (``zh_CN`` or ``en``); empty: the browser's
    #: Accept-Language, else DEFAULT_LOCALE.
    locale = Varchar(length=10, default="")


class ApiToken(Table, tablename="api_tokens"):
    """A bearer token. Only its SHA-256 digest is stored; the token is shown once."""

    id: Serial
    user = ForeignKey(references=User)
    token_hash = Varchar(length=64, unique=True)
    label = Varchar(length=100, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class LoginThrottle(Table, tablename="login_throttle"):
    """Failed-login counters per key (``user:NAME`` or ``addr:IP``) for login backoff.

    Kept in the database so the backoff holds across API processes and in
    embedded mode (SQLite) alike, with no Redis needed.
    """

    id: Serial
    key = Varchar(length=200, unique=True)
    failures = Integer(default=0)
    last_failed_at = Timestamptz(null=True, default=None)
    blocked_until = Timestamptz(null=True, default=None)
