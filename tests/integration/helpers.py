"""Shared steps of the integration tests, driven through the HTTP API."""

from __future__ import annotations

from typing import Any

from tests.conftest import wait_for_photo
from tests.support import photo


async def new_case(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"sex": "male", "estimated_age": 50, "found_place": "G318 roadside", **fields}
    response = await client.post("/api/cases", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def new_notice(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "李四", "sex": "male", "source": "family", **fields}
    response = await client.post("/api/notices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def upload(
    client: Any,
    headers: dict[str, str],
    owner: str,
    owner_id: int,
    data: bytes,
    *,
    filename: str = "photo.jpg",
    wait: bool = True,
    **form: str,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/{owner}s/{owner_id}/photos",
        files={"file": (filename, data, "application/octet-stream")},
        data=form,
        headers=headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    return await wait_for_photo(client, headers, body["id"]) if wait else body


async def upload_file(
    client: Any, headers: dict[str, str], owner: str, owner_id: int, rel: str, **form: str
) -> dict[str, Any]:
    return await upload(
        client, headers, owner, owner_id, photo(rel), filename=rel.rsplit("/", 1)[-1], **form
    )


async def candidates(
    client: Any, headers: dict[str, str], owner: str, owner_id: int
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/{owner}s/{owner_id}/candidates", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])
