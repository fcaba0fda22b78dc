"""Intake → photo in object storage → faces → candidates, on the real services."""

from __future__ import annotations

import hashlib

import pytest

from rescue.settings import get_settings
from tests.integration.helpers import candidates, new_case, new_notice, upload, upload_file
from tests.support import BIDEN, OBAMA_A, OBAMA_B, TWO_PEOPLE, no_face_jpeg, photo


async def test_case_photo_matches_earlier_notice_of_same_person(client, staff):
    notice = await new_notice(client, staff, missing_since="2015-03-01")
    notice_photo = await upload_file(
        client, staff, "notice", notice["id"], OBAMA_B, taken_on="2014-06-01"
    )
    assert notice_photo["status"] == "processed"

    case = await new_case(client, staff)
    case_photo = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    assert case_photo["status"] == "processed"
    assert len(case_photo["faces"]) == 1

    found = await candidates(client, staff, "case", case["id"])
    assert [c["notice_id"] for c in found] == [notice["id"]]
    candidate = found[0]
    assert candidate["case_photo_id"] == case_photo["id"]
    assert candidate["notice_photo_id"] == notice_photo["id"]
    threshold = get_settings().matching.threshold
    assert 0 < candidate["best_distance"] <= threshold
    assert f"threshold {threshold:.2f}" in candidate["explanation"]
    assert "encoding" not in str(found)
    # The same candidate seen from the notice's side.
    assert [c["id"] for c in await candidates(client, staff, "notice", notice["id"])] == [
        candidate["id"]
    ]


async def test_notice_registered_later_finds_person_in_care(client, staff):
    case = await new_case(client, staff)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    assert await candidates(client, staff, "case", case["id"]) == []

    notice = await new_notice(client, staff)
    await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    found = await candidates(client, staff, "notice", notice["id"])
    assert [c["case_id"] for c in found] == [case["id"]]


async def test_different_people_give_no_candidate(client, staff):
    case = await new_case(client, staff)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    notice = await new_notice(client, staff)
    processed = await upload_file(client, staff, "notice", notice["id"], BIDEN)
    assert processed["status"] == "processed"
    assert await candidates(client, staff, "notice", notice["id"]) == []
    assert await candidates(client, staff, "case", case["id"]) == []


async def test_photo_without_face_ends_no_face(client, staff):
    case = await new_case(client, staff)
    result = await upload(client, staff, "case", case["id"], no_face_jpeg())
    assert result["status"] == "no_face"
    assert result["faces"] == []


async def test_group_photo_yields_two_faces(client, staff):
    case = await new_case(client, staff)
    result = await upload_file(client, staff, "case", case["id"], TWO_PEOPLE)
    assert result["status"] == "processed"
    assert len(result["faces"]) == 2
    boxes = {(f["top"], f["left"]) for f in result["faces"]}
    assert len(boxes) == 2


async def test_original_bytes_kept_and_metadata_sniffed(client, staff):
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store

    case = await new_case(client, staff)
    data = photo(OBAMA_A)
    # The client lies about the type: the record keeps what the bytes are.
    response = await client.post(
        f"/api/cases/{case['id']}/photos",
        files={"file": ("obama.png", data, "image/png")},
        headers=staff,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["media_type"] == "image/jpeg"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size_bytes"] == len(data)
    assert (body["width"], body["height"]) == (910, 1137)
    row = await Photo.select(Photo.object_key).where(Photo.id == body["id"]).first()
    assert get_store().get(row["object_key"]) == data

    detail = (await client.get(f"/api/photos/{body['id']}", headers=staff)).json()
    assert detail["url"].startswith("http")
    assert detail["url_expires_in"] <= 300
    import httpx

    async with httpx.AsyncClient() as http:
        fetched = await http.get(detail["url"])
    assert fetched.status_code == 200
    assert fetched.content == data


async def test_actor_run_twice_changes_nothing(client, staff):
    from rescue.matching.services import GallerySet, process_photo
    from rescue.matching.tables import Candidate
    from rescue.photos.tables import Face
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from workers.actors import process_photo as actor
    from workers.broker import broker

    notice = await new_notice(client, staff)
    notice_photo = await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    case = await new_case(client, staff)
    case_photo = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    faces_before = await Face.select(Face.id).where(Face.photo == case_photo["id"])
    candidates_before = await Candidate.select().where(Candidate.case == case["id"])
    assert len(faces_before) == 1
    assert len(candidates_before) == 1

    # Redelivery through the real broker and worker…
    actor.send(case_photo["id"])
    actor.send(notice_photo["id"])
    broker.join("photos", timeout=60_000)
    # …and a second run in this process with a cold gallery.
    await process_photo(
        photo_id=case_photo["id"],
        store=get_store(),
        settings=get_settings(),
        galleries=GallerySet(),
    )
    assert await Face.select(Face.id).where(Face.photo == case_photo["id"]) == faces_before
    assert await Candidate.select().where(Candidate.case == case["id"]) == candidates_before


async def test_more_photos_update_one_candidate(client, staff):
    from rescue.matching.tables import Candidate

    case = await new_case(client, staff)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    notice = await new_notice(client, staff)
    await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    first = await candidates(client, staff, "case", case["id"])
    # A second, different photo of the same person on the notice side.
    await upload_file(
        client, staff, "notice", notice["id"], "face_recognition_repo/examples/obama-480p.jpg"
    )
    after = await candidates(client, staff, "case", case["id"])
    assert len(after) == 1
    assert after[0]["id"] == first[0]["id"]
    assert after[0]["best_distance"] <= first[0]["best_distance"]
    assert await Candidate.count().where(Candidate.case == case["id"]) == 1


@pytest.mark.parametrize("owner", ["case", "notice"])
async def test_lists_and_details(client, staff, owner):
    creator = new_case if owner == "case" else new_notice
    made = [await creator(client, staff) for _ in range(3)]
    page = (await client.get(f"/api/{owner}s?limit=2", headers=staff)).json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert page["items"][0]["id"] == made[-1]["id"]  # newest first
    second = (await client.get(f"/api/{owner}s?limit=2&offset=2", headers=staff)).json()
    assert [i["id"] for i in second["items"]] == [made[0]["id"]]
    one = await client.get(f"/api/{owner}s/{made[0]['id']}", headers=staff)
    assert one.status_code == 200
    assert one.json()["id"] == made[0]["id"]


async def test_case_gets_reference_and_placeholder(client, staff):
    case = await new_case(client, staff)
    assert case["placeholder_name"] == f"无名氏-{case['id']:04d}"
    assert case["display_name"] == case["placeholder_name"]
    named = await new_case(client, staff, reported_name="王五")
    assert named["display_name"] == "王五"
    assert named["reference"] != case["reference"]


async def test_case_and_notice_processed_concurrently_still_match(client, staff):
    """Both photos in flight at once (two worker threads): the pair is still found."""
    from tests.conftest import wait_for_photo

    case = await new_case(client, staff)
    notice = await new_notice(client, staff)
    a = await upload(client, staff, "case", case["id"], photo(OBAMA_A), wait=False)
    b = await upload(client, staff, "notice", notice["id"], photo(OBAMA_B), wait=False)
    for pending in (a, b):
        assert (await wait_for_photo(client, staff, pending["id"]))["status"] == "processed"
    assert [c["notice_id"] for c in await candidates(client, staff, "case", case["id"])] == [
        notice["id"]
    ]
