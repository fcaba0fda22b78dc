"""Online search requests and the public announcement list: API and services on
the real services (PostgreSQL, S3, the worker)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from PIL import Image

from rescue import clock
from rescue.errors import InvalidInput, TooManyRequests, UnsupportedMedia
from rescue.family_requests import services
from rescue.family_requests.schemas import SearchRequestIn
from rescue.family_requests.tables import SearchRequest, SearchRequestPhoto
from rescue.photos.tables import Photo
from rescue.runtime import get_store
from rescue.settings import PublicSettings, get_settings
from tests.integration.helpers import new_case, upload_file
from tests.support import OBAMA_A, OBAMA_B, photo

PUBLIC = PublicSettings(
    regions=(("城西区", "north"),), limit_per_address=3, limit_per_contact=2, lookups_per_hour=5
)


def _data(**fields):  # type: ignore[no-untyped-def]
    base = {
        "missing_name": "李四",
        "reporter_contact": "138 0000 0001",
        "sex": "male",
        "missing_since": date(2020, 3, 1),
        "region": "城西区",
        "consent_personal": True,
        "consent_face": True,
    }
    import msgspec

    return msgspec.convert({**base, **fields}, SearchRequestIn)


async def _submit(data, photos=(), address="10.0.0.1"):  # type: ignore[no-untyped-def]
    return await services.submit(
        data=data,
        photos=[(p, None) for p in photos],
        address=address,
        store=get_store(),
        upload=get_settings().upload,
        public=PUBLIC,
    )


async def test_photos_without_face_consent_are_refused_and_nothing_is_kept():
    with pytest.raises(InvalidInput) as refused:
        await _submit(_data(consent_face=False), [photo(OBAMA_A)])
    assert refused.value.extra["field"] == "consent_face"
    with pytest.raises(InvalidInput):
        await _submit(_data(consent_personal=False))
    assert await SearchRequest.count() == 0


async def test_a_file_that_is_not_an_image_is_refused():
    with pytest.raises(UnsupportedMedia):
        await _submit(_data(), [b"<script>alert(1)</script>" * 10])
    assert await SearchRequest.count() == 0
    assert await SearchRequestPhoto.count() == 0


async def test_submission_is_not_matched_and_goes_to_the_station_by_place():
    done = await _submit(_data(), [photo(OBAMA_A)])
    assert len(done.code) >= 22  # 128 bits, URL-safe
    row = await SearchRequest.select().where(SearchRequest.id == done.id).first()
    assert row["station"] == "north"
    assert row["code_hash"] != done.code
    assert done.code not in str(row)
    assert await Photo.count() == 0  # nothing reaches the matching pipeline


async def test_rate_limits_per_contact_and_per_address_with_the_clock():
    with clock.frozen(datetime(2026, 12, 1, 1, tzinfo=UTC)):
        await _submit(_data(missing_name="甲"))
        await _submit(_data(missing_name="乙"))
        with pytest.raises(TooManyRequests):  # third from the same contact today
            await _submit(_data(missing_name="丙"))
        with pytest.raises(TooManyRequests):  # fourth from the same address today
            await _submit(_data(missing_name="丁", reporter_contact="139 0000 0002"))
        clock.advance(24 * 3600)
        await _submit(_data(missing_name="戊"))  # a new day


async def test_duplicates_are_linked_not_multiplied():
    first = await _submit(_data(), [photo(OBAMA_A)])
    same_photo = await _submit(
        _data(missing_name="另一个名字", reporter_contact="137 0000 0003"),
        [photo(OBAMA_A)],
        address="10.0.0.2",
    )
    same_person = await _submit(_data(reporter_contact="136 0000 0004"), [], address="10.0.0.3")
    assert same_photo.duplicate_of == first.id
    assert same_person.duplicate_of == first.id
    queue = await services.list_queue(stations=["north"], status=None, limit=50, offset=0)
    assert [item.id for item in queue.items] == [first.id]
    assert queue.items[0].duplicates == [same_photo.id, same_person.id]


async def test_status_by_code_reveals_only_the_status_and_is_rate_limited():
    done = await _submit(_data())
    status = await services.status_for_code(code=done.code, address="10.1.1.1", public=PUBLIC)
    assert status.status.value == "received"
    assert set(status.__struct_fields__) == {"status", "message", "updated_at"}
    from rescue.errors import NotFound

    with pytest.raises(NotFound) as wrong:
        await services.status_for_code(code=done.code[:-1] + "x", address="10.1.1.1", public=PUBLIC)
    assert "李四" not in wrong.value.detail
    for _ in range(3):
        with pytest.raises(NotFound):
            await services.status_for_code(code="guess", address="10.1.1.1", public=PUBLIC)
    with pytest.raises(TooManyRequests):
        await services.status_for_code(code=done.code, address="10.1.1.1", public=PUBLIC)


async def test_moderation_api_accept_creates_the_notice_with_photos(client, staff, admin):
    from tests.conftest import make_token

    done = await _submit(_data(), [photo(OBAMA_B)])
    south = {"Authorization": f"Bearer {await make_token('station_staff', 'south')}"}
    assert (await client.get(f"/api/family-requests/{done.id}", headers=south)).status_code == 403
    listed = (await client.get("/api/family-requests", headers=south)).json()
    assert listed["total"] == 0
    refused = await client.post(
        f"/api/family-requests/{done.id}/decision", json={"decision": "reject"}, headers=staff
    )
    assert refused.status_code == 400
    more = await client.post(
        f"/api/family-requests/{done.id}/decision",
        json={"decision": "more_info", "message": "请补充近照"},
        headers=staff,
    )
    assert more.status_code == 200, more.text
    status = await services.status_for_code(code=done.code, address="10.2.2.2", public=PUBLIC)
    assert (status.status.value, status.message) == ("more_info", "请补充近照")
    accepted = await client.post(
        f"/api/family-requests/{done.id}/decision", json={"decision": "accept"}, headers=staff
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "registered"
    assert body["notice_id"]
    notice = (await client.get(f"/api/notices/{body['notice_id']}", headers=staff)).json()
    assert notice["source"] == "family"
    assert len(notice["photos"]) == 1
    again = await client.post(
        f"/api/family-requests/{done.id}/decision", json={"decision": "accept"}, headers=staff
    )
    assert again.status_code == 409


async def test_public_list_filters_pages_and_hides_unpublished(client, staff):
    ids = {}
    for name, sex, age, place, dialect in [
        ("甲", "male", 30, "城西区 G318", "四川话"),
        ("乙", "female", 60, "城东区", "粤语"),
        ("丙", "male", 70, "城西区 南门", "四川话"),
    ]:
        case = await new_case(client, staff, sex=sex, estimated_age=age, dialect=dialect)
        published = await client.post(
            f"/api/cases/{case['id']}/announcement",
            json={"found_place": place, "name": name},
            headers=staff,
        )
        assert published.status_code == 201, published.text
        ids[name] = (case["id"], published.json()["id"])
    got = (
        await client.get(
            "/public/announcements", params={"sex": "male", "dialect": "四川", "age_min": 65}
        )
    ).json()
    assert [a["name"] for a in got["items"]] == ["丙"]
    page = await client.get("/family", params={"place": "城西"})
    assert page.status_code == 200
    assert "public" in page.headers["cache-control"]
    assert "甲" in page.text
    assert "丙" in page.text
    assert "乙" not in page.text
    await client.delete(f"/api/cases/{ids['乙'][0]}/announcement", headers=staff)
    assert (await client.get(f"/family/announcements/{ids['乙'][1]}")).status_code == 404
    assert (await client.get(f"/public/announcements/{ids['乙'][1]}")).status_code == 404


async def test_publish_makes_the_thumbnail_once(client, staff):
    case = await new_case(client, staff)
    uploaded = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    published = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={"found_place": "城西", "photo_id": uploaded["id"]},
        headers=staff,
    )
    from rescue.announcements.tables import Announcement

    keys = await Announcement.select(
        Announcement.public_photo_key, Announcement.public_thumb_key
    ).first()
    assert keys["public_thumb_key"]
    assert keys["public_photo_key"]
    public_id = published.json()["id"]
    first = await client.get(f"/public/announcements/{public_id}/photo?size=thumb")
    second = await client.get(f"/public/announcements/{public_id}/photo?size=thumb")
    assert first.content == second.content  # the stored copy, not a new encoding
    assert max(Image.open(io.BytesIO(first.content)).size) <= 240
    assert first.headers["cache-control"] == "public, max-age=60"
    stored = await get_store().aget(keys["public_thumb_key"])
    assert stored == first.content
