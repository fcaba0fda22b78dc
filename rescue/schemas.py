"""Schemas shared by every domain: paging, and the one datetime type of requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

__all__ = ["AwareDatetime", "Limit", "Offset", "Page", "require_timezone"]

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
Offset = Annotated[int, QueryParameter(ge=0, description="items to skip")]


class Page(msgspec.Struct, Generic[T]):
    """A page of a list: ``items`` in order, ``total`` across all pages."""

    items: list[T]
    total: int
    limit: int
    offset: int
