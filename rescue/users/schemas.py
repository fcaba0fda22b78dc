"""Request and response bodies for users, tokens and login."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from rescue.users.tables import Role

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Name
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class LoginOut(msgspec.Struct):
    """A bearer token (shown once) and when it expires (UTC)."""

    token: str
    expires_at: datetime
    token_type: str = "bearer"  # noqa: S105 - the scheme's name


class TokenOut(msgspec.Struct):
    """A token's record; never its secret or hash."""

    id: int
    user_id: int
    username: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new user. ``scope`` (reviewers, police liaison): stations covered besides
    their own, comma-separated, or ``*`` for all. ``password``: ≥ 12 characters,
    enables ``POST /auth/login``; without it, the response carries an API token."""

    username: Name
    role: Role
    station: Annotated[str, msgspec.Meta(max_length=100)] = ""
    display_name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    scope: Annotated[str, msgspec.Meta(max_length=500)] = ""
    password: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class UserAssignment(msgspec.Struct, forbid_unknown_fields=True):
    """A user's role, station and covered stations (``scope``: reviewers and police
    liaison, comma-separated or ``*``)."""

    role: Role
    station: Annotated[str, msgspec.Meta(max_length=100)] = ""
    scope: Annotated[str, msgspec.Meta(max_length=500)] = ""


class UserOut(msgspec.Struct):
    id: int
    username: str
    display_name: str
    role: Role
    station: str
    scope: str
    active: bool
    has_password: bool
    created_at: datetime
    #: Only in the answer to creation without a password: the user's first API token.
    token: str | None = None
