"""The bare baseline of the API benchmark: a Litestar app that returns fixed JSON from memory.

``BARE_PAYLOADS`` names a JSON file ``{"list": <body>, "get": <body>}`` holding the
exact bodies the real routes returned; ``GET /list`` and ``GET /get`` return them
with no database, no auth and no validation: the floor of Litestar + uvicorn.
"""

from __future__ import annotations

import json
import os

from litestar import Litestar, Response, get

_PAYLOADS: dict[str, bytes] = {}


@get("/list", sync_to_thread=False)
def list_route() -> Response[bytes]:
    return Response(_PAYLOADS["list"], media_type="application/json")


@get("/get", sync_to_thread=False)
def get_route() -> Response[bytes]:
    return Response(_PAYLOADS["get"], media_type="application/json")


def create_app() -> Litestar:
    with open(os.environ["BARE_PAYLOADS"]) as fh:
        for name, body in json.load(fh).items():
            _PAYLOADS[name] = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Litestar(route_handlers=[list_route, get_route])
