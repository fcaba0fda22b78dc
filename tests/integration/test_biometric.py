"""Face encodings never leave the service; photo links are short-lived and private."""

from __future__ import annotations

import asyncio
import base64
import logging
import re

import httpx
import numpy as np

from tests.conftest import _state, make_token
from tests.integration.helpers import candidates, new_case, new_notice, upload_file
from tests.support import OBAMA_A, OBAMA_B, TWO_PEOPLE, photo

#: 128 numbers in a row, as JSON, a Python list or numpy would print them.
_VECTOR = re.compile(r"(?:-?\d*\.\d+(?:[eE][-+]?\d+)?[\s,;]+){127}-?\d*\.\d+")


def _leaks(text: str, encodings: list[bytes]) -> list[str]:
    found = []
    if _VECTOR.search(text):
        found.append("a sequence of 128 numbers")
    for raw in encodings:
        values = np.frombuffer(raw, dtype="<f8")
        needles = {
            "hex": raw.hex(),
            "hex (part)": raw[:32].hex(),
            "base64": base64.b64encode(raw).decode(),
            "base64 (part)": base64.b64encode(raw[:48]).decode(),
            "urlsafe base64 (part)": base64.urlsafe_b64encode(raw[:48]).decode(),
        }
        for i, value in enumerate(values[:16]):
            needles[f"value {i}"] = repr(float(value))
            needles[f"value {i} (float32)"] = repr(float(np.float32(value)))
        found += [f"{name} of an encoding" for name, needle in needles.items() if needle in text]
    return found


async def test_no_response_or_log_line_contains_an_encoding(client, staff, admin, caplog):
    from rescue.photos.tables import Face

    caplog.set_level(logging.DEBUG)
    police = {"Authorization": f"Bearer {await make_token('police_liaison')}"}
    reviewer = {"Authorization": f"Bearer {await make_token('reviewer')}"}
    bodies: list[str] = []
    binaries: list[bytes] = []

    async def get(path: str, headers: dict[str, str]) -> httpx.Response:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        if response.headers.get("content-type", "").startswith("application/json"):
            bodies.append(response.text)
        else:
            binaries.append(response.content)
        return response

    notice = await new_notice(client, police, reporter_contact="138 0000 0000")
    notice_photo = await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    case = await new_case(client, staff)
    case_photo = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    group = await upload_file(client, staff, "case", case["id"], TWO_PEOPLE)
    bodies += [str(notice), str(notice_photo), str(case), str(case_photo), str(group)]
    assert len(await candidates(client, staff, "case", case["id"])) == 1

    for headers in (staff, police, reviewer, admin):
        for path in [
            f"/api/photos/{case_photo['id']}",
            f"/api/photos/{notice_photo['id']}",
            f"/api/photos/{group['id']}",
            f"/api/cases/{case['id']}/candidates",
            f"/api/notices/{notice['id']}/candidates",
            f"/api/cases/{case['id']}",
            "/api/cases",
            f"/api/notices/{notice['id']}",
            "/api/notices",
        ]:
            await get(path, headers)
    published = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={"found_place": "城西", "photo_id": case_photo["id"]},
        headers=staff,
    )
    bodies.append(published.text)
    public = await get("/public/announcements", {})
    await get(f"/public/announcements/{public.json()['items'][0]['id']}", {})
    await get(f"/public/announcements/{public.json()['items'][0]['id']}/photo", {})
    await get("/api/audit?limit=200", admin)
    await get(f"/api/cases/{case['id']}/audit?limit=200", staff)
    await get("/schema/openapi.json", {})

    encodings = [bytes(r["encoding"]) for r in await Face.select(Face.encoding)]
    assert len(encodings) == 4  # one per single-face photo, two in the group photo
    # Sanity: the scanner does find an encoding when there is one.
    values = np.frombuffer(encodings[0], dtype="<f8")
    assert _leaks(str(values.tolist()), encodings)
    assert _leaks(base64.b64encode(encodings[0]).decode(), encodings)

    await asyncio.sleep(0.5)  # let the worker flush its log
    worker_log = _state["services"].log(tail=10**9)
    logs = "\n".join(r.getMessage() for r in caplog.records) + "\n" + caplog.text
    for name, text in [("responses", "\n".join(bodies)), ("logs", logs), ("worker", worker_log)]:
        assert _leaks(text, encodings) == [], name
    for content in binaries:
        assert all(raw not in content for raw in encodings)
    assert "encoding" not in "\n".join(bodies).replace("content-encoding", "")


async def test_expired_presigned_url_is_refused_by_the_object_store():
    from media.storage import ObjectStore
    from rescue.runtime import get_store

    store = get_store()
    short = ObjectStore(client=store.client, bucket=store.bucket, presign_seconds=1)
    key = "photos/presign-test.jpg"
    await short.aput(key, photo(OBAMA_A), "image/jpeg")
    try:
        url = short.presigned_url(key, seconds=3600)  # asking for more gets the cap
        assert "X-Amz-Expires=1&" in url or url.endswith("X-Amz-Expires=1")
        await asyncio.sleep(2.5)
        async with httpx.AsyncClient() as http:
            expired = await http.get(url)
        assert expired.status_code == 403
        assert expired.content != photo(OBAMA_A)
    finally:
        await store.aremove(key)


async def test_bucket_is_never_public(client, staff):
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    case = await new_case(client, staff)
    uploaded = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    url = (await client.get(f"/api/photos/{uploaded['id']}", headers=staff)).json()["url"]
    unsigned = url.split("?", 1)[0]
    endpoint = get_settings().storage.endpoint
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200  # the signed URL works
        assert (await http.get(unsigned)).status_code == 403
        assert (await http.get(f"http://{endpoint}/{get_store().bucket}")).status_code == 403
        assert (await http.get(f"http://{endpoint}/")).status_code == 403


def test_presign_lifetime_is_capped_at_five_minutes(monkeypatch):
    from rescue.settings import load_settings

    monkeypatch.setenv("PHOTO_URL_TTL_SECONDS", "3600")
    assert load_settings().storage.presign_seconds == 300
    monkeypatch.setenv("PHOTO_URL_TTL_SECONDS", "60")
    assert load_settings().storage.presign_seconds == 60


async def test_photo_url_only_for_users_who_may_see_the_photo(client):
    north = {"Authorization": f"Bearer {await make_token('station_staff', station='north')}"}
    south = {"Authorization": f"Bearer {await make_token('station_staff', station='south')}"}
    case = await new_case(client, north)
    uploaded = await upload_file(client, north, "case", case["id"], OBAMA_A)
    refused = await client.get(f"/api/photos/{uploaded['id']}", headers=south)
    assert refused.status_code == 403
    assert "url" not in refused.json()
    assert "X-Amz" not in refused.text
