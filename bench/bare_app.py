"""The bare baselines of the API benchmark: Litestar routes with no application logic.

``BARE_PAYLOADS`` names a JSON file ``{"list": <body>, "get": <body>}`` holding the
exact bodies the real routes returned; ``GET /list`` and ``GET /get`` return them
from memory with no database, no auth and no validation: the floor of Litestar +
uvicorn. ``GET /get-db`` returns the same body after one ``SELECT 1`` round trip to
PostgreSQL (asyncpg pool on ``DATABASE_URL``): the floor of any route that reads
the database at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Response, get

_PAYLOADS: dict[str, bytes] = {}
_POOL: dict[str, Any] = {}


@get("/list", sync_to_thread=False)
def list_route() -> Response[bytes]:
    return Response(_PAYLOADS["list"], media_type="application/json")


@get("/get", sync_to_thread=False)
def get_route() -> Response[bytes]:
    return Response(_PAYLOADS["get"], media_type="application/json")


@get("/get-db")
async def get_db_route() -> Response[bytes]:
    async with _POOL["pool"].acquire() as conn:
        await conn.fetchval("SELECT 1")
    return Response(_PAYLOADS["get"], media_type="application/json")


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    _POOL["pool"] = await asyncpg.create_pool(os.environ["DATABASE_URL"], max_size=10)
    try:
        yield
    finally:
        await _POOL["pool"].close()


def create_app() -> Litestar:
    with open(os.environ["BARE_PAYLOADS"]) as fh:
        for name, body in json.load(fh).items():
            _PAYLOADS[name] = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Litestar(route_handlers=[list_route, get_route, get_db_route], lifespan=[_lifespan])
