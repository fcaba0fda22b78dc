"""Schemas shared by every domain: paging."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

__all__ = ["Limit", "Offset", "Page"]

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
