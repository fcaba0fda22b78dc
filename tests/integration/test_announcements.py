"""The public family-search announcement (寻亲公告): exactly the published fields."""

from __future__ import annotations

import io

from PIL import Image

from tests.integration.helpers import new_case, upload, upload_file
from tests.support import BIDEN, OBAMA_A, photo

SECRET_PLACE = "幸福路 18 号 3 单元 502"  # an exact address: never served
ANNOUNCED = {
    "height_cm": 172,
    "physical_features": "左眉上有疤",
    "mental_state": "言语不清，情绪紧张",
    "clothing": "蓝色夹克，黑色布鞋",
    "found_date": "2026-11-20",
    "found_place": "城西区 G318 附近",
    "station_contact": "城西救助站 010-12345678",
}


async def _case(client, staff):  # type: ignore[no-untyped-def]
    return await new_case(
        client,
        staff,
        found_place=SECRET_PLACE,
        brought_by="派出所 张警官 139 1111 2222",
        description="内部备注：疑似走失",
        estimated_age=60,
    )


async def test_public_view_shows_exactly_the_published_fields(client, staff):
    case = await _case(client, staff)
    uploaded = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    response = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={**ANNOUNCED, "photo_id": uploaded["id"], "internal": ["mental_state"]},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    staff_view = response.json()
    assert staff_view["fields"]["mental_state"] == ANNOUNCED["mental_state"]
    assert staff_view["internal"] == ["mental_state"]
    public_id = staff_view["id"]

    listed = await client.get("/public/announcements")  # no token
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["items"]] == [public_id]
    one = await client.get(f"/public/announcements/{public_id}")
    assert one.status_code == 200
    body = one.json()
    expected = {
        "id": public_id,
        "published_at": body["published_at"],
        "name": case["placeholder_name"],
        "sex": "male",
        "estimated_age": 60,
        **{k: v for k, v in ANNOUNCED.items() if k != "mental_state"},
        "photo_url": f"/public/announcements/{public_id}/photo",
        "thumb_url": f"/public/announcements/{public_id}/photo?size=thumb",
    }
    assert body == expected
    assert listed.json()["items"][0] == expected
    text = one.text + listed.text
    for private in [SECRET_PLACE, "139 1111 2222", "内部备注", ANNOUNCED["mental_state"], "X-Amz"]:
        assert private not in text

    image = await client.get(f"/public/announcements/{public_id}/photo")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content != photo(OBAMA_A)  # a clean copy, never the original file
    assert Image.open(io.BytesIO(image.content)).size == (820, 1024)  # 910x1137, ≤ 1024


async def test_public_photo_carries_no_metadata(client, staff):
    """A phone photo's EXIF (GPS position, time, orientation) never reaches the public."""
    case = await new_case(client, staff)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display
    exif[0x9003] = "2026:11:01 08:15:00"  # DateTimeOriginal
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 5.0), 3: "E", 4: (121.0, 28.0, 9.0)}  # GPS
    buf = io.BytesIO()
    Image.open(io.BytesIO(photo(OBAMA_A))).save(buf, format="JPEG", exif=exif.tobytes())
    uploaded = await upload(client, staff, "case", case["id"], buf.getvalue())
    response = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={"found_place": "城西", "photo_id": uploaded["id"]},
        headers=staff,
    )
    assert response.status_code in (200, 201), response.text
    public_id = response.json()["id"]
    image = await client.get(f"/public/announcements/{public_id}/photo")
    served = Image.open(io.BytesIO(image.content))
    assert dict(served.getexif()) == {}
    assert served.info.get("exif") is None
    assert b"Exif" not in image.content[:4096]
    assert served.size[0] > served.size[1]  # turned upright (the original is portrait)


async def test_photo_can_be_internal_and_must_be_the_cases(client, staff):
    case = await _case(client, staff)
    other = await _case(client, staff)
    others_photo = await upload_file(client, staff, "case", other["id"], BIDEN)
    wrong = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={"found_place": "城西", "photo_id": others_photo["id"]},
        headers=staff,
    )
    assert wrong.status_code == 400
    no_place = await client.post(f"/api/cases/{case['id']}/announcement", json={}, headers=staff)
    assert no_place.status_code == 400
    mine = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    published = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={"found_place": "城西", "photo_id": mine["id"], "internal": ["photo", "name"]},
        headers=staff,
    )
    public_id = published.json()["id"]
    body = (await client.get(f"/public/announcements/{public_id}")).json()
    assert "photo_url" not in body
    assert "name" not in body
    assert (await client.get(f"/public/announcements/{public_id}/photo")).status_code == 404


async def test_unpublished_when_identified_closed_or_dead(client, staff, reviewer):
    from rescue.cases.flows import transition
    from rescue.cases.tables import CaseStatus
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    by = Principal(user_id=1, username="s", role=Role.station_staff, station="north")
    rev = Principal(user_id=2, username="r", role=Role.reviewer, station="north")
    outcomes = {
        CaseStatus.identified: rev,
        CaseStatus.deceased: by,
        CaseStatus.left_self: by,
    }
    for status, who in outcomes.items():
        case = await _case(client, staff)
        published = await client.post(
            f"/api/cases/{case['id']}/announcement", json={"found_place": "城西"}, headers=staff
        )
        public_id = published.json()["id"]
        await transition(case_id=case["id"], to=CaseStatus.searching, by=by, reason="t")
        assert (await client.get(f"/public/announcements/{public_id}")).status_code == 200
        data = {"ticket": "K1234 to 成都"} if status == CaseStatus.left_self else None
        await transition(case_id=case["id"], to=status, by=who, reason="t", data=data)
        gone = await client.get(f"/public/announcements/{public_id}")
        assert gone.status_code == 404, status
        assert public_id not in [
            a["id"] for a in (await client.get("/public/announcements")).json()["items"]
        ]
        again = await client.post(
            f"/api/cases/{case['id']}/announcement", json={"found_place": "城西"}, headers=staff
        )
        assert again.status_code == 409  # not re-published for an identified/closed case


async def test_staff_unpublish_and_unpublished_never_served(client, staff):
    case = await _case(client, staff)
    published = await client.post(
        f"/api/cases/{case['id']}/announcement", json={"found_place": "城西"}, headers=staff
    )
    public_id = published.json()["id"]
    response = await client.delete(f"/api/cases/{case['id']}/announcement", headers=staff)
    assert response.status_code == 204
    staff_view = (await client.get(f"/api/cases/{case['id']}/announcement", headers=staff)).json()
    assert staff_view["published"] is False
    assert staff_view["unpublish_reason"] == "unpublished by staff"
    assert staff_view["public_url"] is None
    assert (await client.get(f"/public/announcements/{public_id}")).status_code == 404
    assert (await client.get("/public/announcements")).json()["total"] == 0
    # Other cases never appear: the public side only knows announcements.
    assert (await client.get(f"/public/announcements/{case['id'] + 1000}")).status_code == 404
    assert (await client.get("/public/cases")).status_code == 404
