"""Schemas shared by every domain: bounded ids and paging.

Every integer a client sends (a path id, ``offset``/``limit``, an id filter or
an id in a body) has a range the database can hold, so an out-of-range number
is a 400 that names the range, never a database error (issue 11 item 5). Ids
are PostgreSQL ``SERIAL`` (int4) columns: 1..2,147,483,647.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import PathParameter, QueryParameter

T = TypeVar("T")

__all__ = ["MAX_ID", "Id", "Limit", "Offset", "Page", "PathId", "QueryId", "stored_id"]

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
