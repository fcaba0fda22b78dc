"""Schemas shared by every domain: bounded ids, paging, and the one datetime type
of requests.

Every integer a client sends (a path id, ``offset``/``limit``, an id filter or
an id in a body) has a range the database can hold, so an out-of-range number
is a 400 that names the range, never a database error (issue 11 item 5). Ids
are PostgreSQL ``SERIAL`` (int4) columns: 1..2,147,483,647.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import PathParameter, QueryParameter

T = TypeVar("T")

__all__ = [
    "MAX_ID",
    "AwareDatetime",
    "Id",
    "Limit",
    "Offset",
    "Page",
    "PathId",
    "QueryId",
    "require_timezone",
    "stored_id",
]

#: Largest id any table holds (PostgreSQL SERIAL is a 4-byte integer).
MAX_ID = 2**31 - 1
#: Largest ``offset`` accepted (no list is that long).
MAX_OFFSET = 2**31 - 1

#: An id in a request body or form: 1..MAX_ID.
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID, description="an id, 1..2147483647")]
#: An id in the path (``/api/cases/{case_id:int}``): 1..MAX_ID, else 400.
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="an id, 1..2147483647")]
#: An optional id filter in the query string: 1..MAX_ID, else 400.
QueryId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="an id, 1..2147483647")]

#: Every datetime a client sends (bodies, forms, query parameters). A time without
#: a timezone offset is refused with 400 ("Expected `datetime` with a timezone
#: component"): read as UTC it would be 8 hours off for a station in China, and
#: guessing CST would be wrong for machine clients sending UTC (issue 11 item 14).
#: Answers give every timestamp in UTC with ``Z`` (docs/workflow.md).
AwareDatetime = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="ISO 8601 with a timezone offset, e.g. 2026-12-02T09:30:00+08:00 "
        "or 2026-12-02T01:30:00Z; a time without an offset is refused (400)",
    ),
]


def require_timezone(value: datetime | None, name: str) -> None:
    """For query parameters (where the framework drops :data:`AwareDatetime`'s
    constraint): refuse a datetime without a timezone offset, as the bodies do.

    Raises:
        InvalidInput: ``value`` has no timezone (400).
    """
    if value is not None and value.tzinfo is None:
        from rescue.errors import InvalidInput
        from rescue.i18n import _

        raise InvalidInput(
            _("{name}: a timezone is required (e.g. +08:00 or Z)", name=name),
            accepted="ISO 8601 with a timezone offset, e.g. 2026-12-02T09:30:00+08:00",
        )


#: Page size for list routes: 1..200 items (query parameter ``limit``, default 50).
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="page size, 1..200")]
#: Items to skip (query parameter ``offset``, default 0).
Offset = Annotated[
    int, QueryParameter(ge=0, le=MAX_OFFSET, description="items to skip, 0..2147483647")
]


def stored_id(value: object) -> int | None:
    """``value`` as an id a table can hold (1..MAX_ID), else None. For code that
    reads path parameters before they are validated (guards, the audit trail):
    an out-of-range id names nothing, and must not reach the database."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= MAX_ID else None


class Page(msgspec.Struct, Generic[T]):
    """A page of a list: ``items`` in order, ``total`` across all pages."""

    items: list[T]
    total: int
    limit: int
    offset: int
