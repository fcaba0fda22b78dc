"""What a hostile or careless client can send gets a clear 4xx, never a 500
(issue 11 items 5, 6, 7, 12), on the real services.

Each test covers a class over every route where the class can occur (taken from
the app's own route table), so a new route that brings the class back fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import make_token
from tests.integration.helpers import new_case
from tests.support import OBAMA_A, photo

HUGE = [2**64, 2**63, 2**31, -(2**64)]
#: Routes called with bearer tokens here; pages (session login) answer them with a
#: redirect to the login page, and take ids in the path through the same PathId.
API_PREFIXES = ("/api", "/public", "/auth")


def _routes(prefix: str = "/") -> list[tuple[str, str]]:
    from rescue.app import create_app

    found = []
    for route in create_app().routes:
        if not route.path.startswith(prefix) or ":int}" not in route.path:
            continue
        if not route.path.startswith(API_PREFIXES):
            continue
        for method in getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}:
            found.append((method, route.path))
    return sorted(found)


async def _call(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    if method in {"POST", "PUT", "PATCH"}:
        return await client.request(method, path, json={}, headers=headers)
    return await client.request(method, path, headers=headers)


async def test_out_of_range_path_ids_are_400_or_404_on_every_route(client):
    """Every ``{x:int}`` route, public ones included, as admin and as a reviewer."""
    routes = _routes()
    assert len(routes) > 30  # the route table was read
    tokens = [
        {"Authorization": f"Bearer {await make_token(role)}"} for role in ("admin", "reviewer")
    ]
    problems = []
    for method, template in routes:
        for number in HUGE:
            path = re.sub(r"\{\w+:int\}", str(number), template)
            for headers in tokens:
                response = await _call(client, method, path, headers)
                if response.status_code not in (400, 403, 404):
                    problems.append(f"{method} {path}: {response.status_code}")
    assert problems == []


async def test_out_of_range_path_id_says_the_accepted_range(client, staff):
    response = await client.get(f"/api/cases/{2**64}", headers=staff)
    assert response.status_code == 400
    assert "2147483647" in response.text
    public = await client.get(f"/public/announcements/{2**70}")
    assert public.status_code in (400, 404)


@pytest.mark.parametrize(
    "query",
    [
        {"offset": 2**64},
        {"offset": 2**63},
        {"offset": -1},
        {"limit": 2**64},
        {"case_id": 2**64},
        {"user_id": 2**63},
        {"case_id": 2**31},
    ],
)
async def test_out_of_range_query_numbers_are_400(client, admin, query):
    from rescue.app import create_app

    problems = []
    for route in create_app().routes:
        if "{" in route.path or "GET" not in getattr(route, "methods", set()):
            continue
        if not route.path.startswith(API_PREFIXES):
            continue
        handler = next(h for h in route.route_handlers if "GET" in h.http_methods)  # type: ignore[attr-defined]
        params = handler.parsed_fn_signature.parameters
        if not set(query) & set(params):
            continue
        response = await client.get(route.path, params=query, headers=admin)
        if response.status_code != 400:
            problems.append(f"GET {route.path}?{query}: {response.status_code}")
    assert problems == []


async def test_out_of_range_ids_in_bodies_are_400(client, staff, reviewer):
    case = await new_case(client, staff)
    response = await client.post(
        f"/api/cases/{case['id']}/announcement", json={"photo_id": 2**64}, headers=staff
    )
    assert response.status_code == 400, response.text
    response = await client.post(
        "/api/candidates",
        files={
            "kind": (None, "staff"),
            "values": (None, '{"summary": "seen"}'),
            "case_id": (None, str(2**64)),
            "notice_id": (None, str(2**64)),
        },
        headers=staff,
    )
    assert response.status_code == 400, response.text


def _nested(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [200, 10_000, 100_000])
async def test_deeply_nested_json_is_400(client, staff, depth):
    body = _nested(depth)
    for path, headers in (
        ("/auth/login", {}),
        ("/api/cases", staff),
        ("/api/notices", staff),
    ):
        response = await client.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 400, (path, response.status_code, response.text[:300])
        assert response.json()["error"] in ("invalid_json", "validation_failed")


async def test_deeply_nested_json_inside_a_form_field_is_400(client, staff):
    response = await client.post(
        "/api/candidates",
        files={"kind": (None, "staff"), "values": (None, _nested(100_000).decode())},
        headers=staff,
    )
    assert response.status_code == 400, response.text


def _multipart(parts: list[bytes], boundary: str = "XyZ") -> tuple[bytes, dict[str, str]]:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


_JPEG = photo(OBAMA_A)


@pytest.mark.parametrize(
    ("part", "needle"),
    [
        # a text part in GB18030, no charset given
        (
            b'Content-Disposition: form-data; name="taken_on"\r\n\r\n'
            + "二〇二六年".encode("gb18030"),
            "UTF-8",
        ),
        # a text part with a charset nobody knows
        (
            b'Content-Disposition: form-data; name="taken_on"\r\n'
            b"Content-Type: text/plain; charset=klingon-8\r\n\r\n2026-01-01",
            "charset",
        ),
        # a file part whose filename is given only in RFC 2231 form
        (
            b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E7%85%A7.jpg\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + _JPEG,
            "filename",
        ),
        # a file part with an empty filename
        (
            b'Content-Disposition: form-data; name="file"; filename=""\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + _JPEG,
            "filename",
        ),
        # a file part whose filename is not UTF-8
        (
            b'Content-Disposition: form-data; name="file"; filename="'
            + "照片.jpg".encode("gb18030")
            + b'"\r\nContent-Type: image/jpeg\r\n\r\n'
            + _JPEG,
            "filename",
        ),
    ],
)
async def test_malformed_multipart_is_400_saying_what(client, staff, part, needle):
    from rescue.photos.tables import Photo

    case = await new_case(client, staff)
    body, headers = _multipart([part])
    response = await client.post(
        f"/api/cases/{case['id']}/photos", content=body, headers={**staff, **headers}
    )
    assert response.status_code == 400, response.text
    assert needle.lower() in response.json()["detail"].lower(), response.text
    assert await Photo.count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n",  # no name
        b"--XyZ\r\nno headers at all",  # never ends
        b"not multipart at all",
    ],
)
async def test_broken_multipart_framing_is_400(client, staff, raw):
    case = await new_case(client, staff)
    response = await client.post(
        f"/api/cases/{case['id']}/photos",
        content=raw,
        headers={**staff, "content-type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code == 400, response.text


async def test_error_bodies_do_not_echo_large_input(client, staff):
    """A 50 KB query string (or body) is not sent back; control characters are not either."""
    junk = "A" * 50_000
    for response in (
        await client.get("/api/cases", params={"status": junk}, headers=staff),
        await client.get("/api/cases", params={"offset": junk}, headers=staff),
        await client.get(f"/api/cases/{junk}", headers=staff),
        await client.post("/api/cases", json={"sex": junk}, headers=staff),
        await client.post("/api/cases", json={"sex": "\x1b[31mred\u202e"}, headers=staff),
    ):
        assert 400 <= response.status_code < 500, response.status_code
        assert len(response.content) < 4_000, (response.status_code, len(response.content))
        assert "\x1b" not in response.text
        assert "\u202e" not in response.text
