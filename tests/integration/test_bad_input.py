"""Bad input gets a clear 4xx and leaves nothing behind, on the real services."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.integration.helpers import new_case, new_notice
from tests.support import OBAMA_A, photo


def _objects() -> list[str]:
    from rescue.runtime import get_store

    store = get_store()
    return [
        o.object_name
        for o in store.client.list_objects(store.bucket, prefix="photos/", recursive=True)
    ]


async def _photo_count() -> int:
    from rescue.photos.tables import Photo

    return await Photo.count()


async def _post(client, headers, case_id, data: bytes, name: str = "x.jpg"):
    return await client.post(
        f"/api/cases/{case_id}/photos", files={"file": (name, data, "image/jpeg")}, headers=headers
    )


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 0).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@pytest.fixture
async def case(client, staff):
    return await new_case(client, staff)


async def _assert_nothing_kept(before_objects: list[str]) -> None:
    assert await _photo_count() == 0
    assert _objects() == before_objects


async def test_non_image_bytes_are_415(client, staff, case):
    before = _objects()
    response = await _post(client, staff, case["id"], b"%PDF-1.4 not a photo at all", "scan.jpg")
    assert response.status_code == 415
    body = response.json()
    assert body["reason"] == "not_an_image"
    assert "image/jpeg" in body["accepted"]["media_types"]
    await _assert_nothing_kept(before)


async def test_unsupported_image_format_is_415(client, staff, case):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="GIF")
    response = await _post(client, staff, case["id"], buf.getvalue(), "x.gif")
    assert response.status_code == 415
    assert response.json()["reason"] == "unsupported_format"


@pytest.mark.parametrize("keep", [200, 20_000, 150_000])
async def test_truncated_jpeg_is_400(client, staff, case, keep):
    before = _objects()
    response = await _post(client, staff, case["id"], photo(OBAMA_A)[:keep])
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["reason"] == "corrupt"
    assert "truncated" in body["detail"]
    await _assert_nothing_kept(before)


async def test_empty_file_is_400(client, staff, case):
    response = await _post(client, staff, case["id"], b"")
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


async def test_file_over_byte_limit_is_413(client, staff, case):
    from rescue.settings import get_settings

    limit = get_settings().upload.max_bytes
    before = _objects()
    # A real JPEG padded past the limit.
    response = await _post(client, staff, case["id"], photo(OBAMA_A) + b"\0" * limit)
    assert response.status_code == 413
    body = response.json()
    assert body["accepted"]["max_bytes"] == limit
    await _assert_nothing_kept(before)


async def test_body_far_over_limit_is_413_json(client, staff, case):
    from rescue.settings import get_settings

    response = await _post(
        client, staff, case["id"], b"\0" * (get_settings().upload.max_bytes * 2 + 1)
    )
    assert response.status_code == 413
    assert response.json()["status_code"] == 413


async def test_decompression_bomb_is_413(client, staff, case):
    from rescue.settings import get_settings

    max_pixels = get_settings().upload.max_pixels
    bomb = _png(10_000, max_pixels // 10_000 + 10)  # tiny file, too many pixels
    assert len(bomb) < 1_000_000
    before = _objects()
    response = await _post(client, staff, case["id"], bomb, "bomb.png")
    assert response.status_code == 413
    body = response.json()
    assert body["reason"] == "too_many_pixels"
    assert str(max_pixels) in body["detail"]
    await _assert_nothing_kept(before)


async def test_missing_file_field_is_400(client, staff, case):
    response = await client.post(
        f"/api/cases/{case['id']}/photos",
        files={"photo": ("x.jpg", photo(OBAMA_A), "image/jpeg")},
        headers=staff,
    )
    assert response.status_code == 400
    assert "file" in response.text


async def test_bad_taken_on_is_400(client, staff, case):
    response = await client.post(
        f"/api/cases/{case['id']}/photos",
        files={"file": ("x.jpg", photo(OBAMA_A), "image/jpeg")},
        data={"taken_on": "last spring"},
        headers=staff,
    )
    assert response.status_code == 400
    assert await _photo_count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/cases/999999",
        "/api/notices/999999",
        "/api/photos/999999",
        "/api/cases/999999/candidates",
        "/api/notices/999999/candidates",
    ],
)
async def test_unknown_ids_are_404(client, staff, path):
    response = await client.get(path, headers=staff)
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


async def test_upload_to_unknown_owner_is_404_and_stores_nothing(client, staff):
    before = _objects()
    for owner in ("cases", "notices"):
        response = await client.post(
            f"/api/{owner}/999999/photos",
            files={"file": ("x.jpg", photo(OBAMA_A), "image/jpeg")},
            headers=staff,
        )
        assert response.status_code == 404
    await _assert_nothing_kept(before)


async def test_same_photo_twice_is_409(client, staff, case):
    first = await _post(client, staff, case["id"], photo(OBAMA_A))
    assert first.status_code == 202
    again = await _post(client, staff, case["id"], photo(OBAMA_A))
    assert again.status_code == 409
    assert again.json()["photo_id"] == first.json()["id"]
    assert await _photo_count() == 1


async def test_database_failure_after_store_removes_object(client, staff, case):
    """A real PostgreSQL error on the photo insert: the stored object is removed again."""
    from rescue.photos.tables import Photo

    db = Photo._meta.db
    await db.run_ddl(
        "CREATE FUNCTION reject_photo() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'simulated outage'; END $$ LANGUAGE plpgsql"
    )
    await db.run_ddl(
        "CREATE TRIGGER reject_photo BEFORE INSERT ON photos "
        "FOR EACH ROW EXECUTE FUNCTION reject_photo()"
    )
    before = _objects()
    try:
        response = await _post(client, staff, case["id"], photo(OBAMA_A))
    finally:
        await db.run_ddl("DROP TRIGGER reject_photo ON photos")
        await db.run_ddl("DROP FUNCTION reject_photo()")
    assert response.status_code == 500
    assert "simulated outage" not in response.text  # internals are logged, not shown
    await _assert_nothing_kept(before)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"sex": "robot"}, "sex"),
        ({"estimated_age": -3}, "estimated_age"),
        ({"age_low": 60, "age_high": 40}, "age_low"),
        ({"estimated_age": 20, "age_low": 30, "age_high": 40}, "estimated_age"),
        ({"found_at": "yesterday"}, "found_at"),
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_bad_case_fields_are_400(client, staff, body, needle):
    response = await client.post("/api/cases", json=body, headers=staff)
    assert response.status_code == 400, response.text
    assert needle in response.text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"source": "family"}, "name"),
        ({"name": "x", "source": "rumour"}, "source"),
        ({"name": "x", "source": "family", "missing_since": "2999-01-01"}, "future"),
        (
            {
                "name": "x",
                "source": "family",
                "date_of_birth": "2000-01-01",
                "missing_since": "1990-01-01",
            },
            "before date_of_birth",
        ),
    ],
)
async def test_bad_notice_fields_are_400(client, staff, body, needle):
    response = await client.post("/api/notices", json=body, headers=staff)
    assert response.status_code == 400, response.text
    assert needle in response.text


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic abc"])
async def test_missing_or_bad_token_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = await client.get("/api/cases", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


async def test_notice_photo_bad_input_is_rejected_too(client, staff):
    notice = await new_notice(client, staff)
    response = await client.post(
        f"/api/notices/{notice['id']}/photos",
        files={"file": ("x.jpg", b"GIF89a nonsense", "image/jpeg")},
        headers=staff,
    )
    assert response.status_code == 415


async def test_bad_enum_value_lists_the_accepted_values(client, staff):
    response = await client.post("/api/cases", json={"sex": "robot"}, headers=staff)
    assert response.status_code == 400
    assert response.json()["accepted"] == {"sex": ["male", "female", "unknown"]}
    response = await client.post(
        "/api/notices", json={"name": "x", "source": "rumour"}, headers=staff
    )
    assert response.status_code == 400
    assert response.json()["accepted"] == {"source": ["family", "police", "station", "external"]}


async def test_malformed_json_says_so(client, staff):
    response = await client.post(
        "/api/cases",
        content=b'{"sex": "male", "estimated_age": 4',
        headers={**staff, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    assert response.json()["error"] == "invalid_json"
    bad_byte = await client.post(
        "/api/cases",
        content=b'{"sex": male}',
        headers={**staff, "content-type": "application/json"},
    )
    assert bad_byte.status_code == 400
    assert bad_byte.json()["error"] == "invalid_json"


async def test_an_empty_intake_is_refused_naming_what_it_needs(client, staff):
    """Issue 10 item 4: where the person was found or who brought them; the API and
    the intake page apply the same rule (rescue.cases.services.intake_problems)."""
    response = await client.post("/api/cases", json={}, headers=staff)
    assert response.status_code == 400, response.text
    assert set(response.json()["fields"]) == {"found_place", "brought_by"}
    blank = await client.post("/api/cases", json={"found_place": "  "}, headers=staff)
    assert blank.status_code == 400
    alone = await client.post("/api/cases", json={"brought_by": "本人"}, headers=staff)
    assert alone.status_code == 201, alone.text
