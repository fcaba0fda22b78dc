"""Duplicate intake: the same person registered twice (here or at another station)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from tests.conftest import make_token, wait_for_photo, worker_log
from tests.integration.helpers import new_case, stored_faces, upload, upload_file
from tests.support import BIDEN, OBAMA_A, OBAMA_B, photo


async def headers_of(station: str, role: str = "station_staff") -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(role, station=station)}"}


async def duplicates(client: Any, headers: dict[str, str], case_id: int, within: float = 90) -> Any:
    """The case's warnings once every photo's face comparison has run (polled)."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/api/cases/{case_id}/duplicates", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if not body["photos_pending_face_check"]:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"face check still pending; worker log:\n{worker_log()}")
        await asyncio.sleep(0.25)


async def test_two_photos_of_one_person_at_two_stations_raise_a_face_warning(client):
    south, north = await headers_of("south"), await headers_of("north")
    earlier = await new_case(client, south)
    await upload_file(client, south, "case", earlier["id"], OBAMA_A)
    stranger = await new_case(client, south)
    await upload_file(client, south, "case", stranger["id"], BIDEN)

    later = await new_case(client, north)
    assert later["duplicate_warnings"] == []  # no name: nothing to compare on intake
    await upload_file(client, north, "case", later["id"], OBAMA_B)
    body = await duplicates(client, north, later["id"])

    assert len(body["warnings"]) == 1
    warning = body["warnings"][0]
    assert warning["status"] == "open"
    assert warning["other"]["case_id"] == earlier["id"]
    assert warning["other"]["station"] == "south"
    assert warning["other"]["link"] == f"/api/cases/{earlier['id']}"
    (reason,) = warning["reasons"]
    assert reason["kind"] == "face"
    assert 0 < reason["distance"] <= reason["threshold"]
    # Advisory only: the case exists, and its detail shows the warning.
    detail = (await client.get(f"/api/cases/{later['id']}", headers=north)).json()
    assert [w["id"] for w in detail["duplicate_warnings"]] == [warning["id"]]
    # The earlier case sees the same warning from its side.
    mirror = await duplicates(client, south, earlier["id"])
    assert [w["other"]["case_id"] for w in mirror["warnings"]] == [later["id"]]
    # A different person raised nothing.
    assert (await duplicates(client, south, stranger["id"]))["warnings"] == []


async def test_same_photo_bytes_warn_in_the_upload_answer(client):
    south, north = await headers_of("south"), await headers_of("north")
    earlier = await new_case(client, south)
    await upload_file(client, south, "case", earlier["id"], BIDEN)
    later = await new_case(client, north)
    response = await client.post(
        f"/api/cases/{later['id']}/photos",
        files={"file": ("b.jpg", photo(BIDEN), "application/octet-stream")},
        headers=north,
    )
    assert response.status_code == 202, response.text
    (warning,) = response.json()["duplicate_warnings"]
    assert warning["other"]["case_id"] == earlier["id"]
    assert warning["reasons"][0]["kind"] == "same_photo"
    assert warning["reasons"][0]["other_photo_id"] is not None
    # Faces agree too, once the worker has processed the photo: one warning for
    # the pair, with both kinds of evidence.
    await wait_for_photo(client, north, response.json()["id"])
    body = await duplicates(client, north, later["id"])
    assert len(body["warnings"]) == 1
    assert sorted(r["kind"] for r in body["warnings"][0]["reasons"]) == ["face", "same_photo"]


async def test_name_sex_and_age_warn_on_intake(client):
    south, north = await headers_of("south"), await headers_of("north")
    earlier = await new_case(client, south, reported_name="王 建国", sex="male", estimated_age=60)
    await new_case(client, south, reported_name="王建国", sex="female", estimated_age=60)
    await new_case(client, south, reported_name="王建国", sex="male", estimated_age=25)
    later = await new_case(
        client,
        north,
        reported_name="王建国",
        sex="male",
        estimated_age=None,
        age_low=55,
        age_high=70,
    )
    (warning,) = later["duplicate_warnings"]
    assert warning["other"]["case_id"] == earlier["id"]
    assert warning["reasons"] == [{"kind": "attributes", "matched": ["name", "sex", "age"]}]


async def test_a_case_that_left_long_ago_is_not_compared(client):
    from rescue import clock
    from rescue.cases.tables import Case

    south, north = await headers_of("south"), await headers_of("north")
    old = await new_case(client, south, reported_name="赵六", sex="male", estimated_age=40)
    await Case.update(
        {Case.status: "left_self", Case.updated_at: clock.now() - timedelta(days=181)}
    ).where(Case.id == old["id"])
    later = await new_case(client, north, reported_name="赵六", sex="male", estimated_age=40)
    assert later["duplicate_warnings"] == []
    recent = await new_case(client, south, reported_name="赵六", sex="male", estimated_age=41)
    await Case.update(
        {Case.status: "left_self", Case.updated_at: clock.now() - timedelta(days=30)}
    ).where(Case.id == recent["id"])
    again = await new_case(client, north, reported_name="赵六", sex="male", estimated_age=40)
    assert {w["other"]["case_id"] for w in again["duplicate_warnings"]} == {
        later["id"],
        recent["id"],
    }


async def test_link_as_repeat_admission_and_dismiss(client):
    south, north = await headers_of("south"), await headers_of("north")
    east = await headers_of("east")
    earlier = await new_case(client, south, reported_name="钱七", sex="male", estimated_age=50)
    later = await new_case(client, north, reported_name="钱七", sex="male", estimated_age=50)
    (warning,) = later["duplicate_warnings"]

    refused = await client.post(f"/api/duplicates/{warning['id']}/link", json={}, headers=east)
    assert refused.status_code == 403, refused.text
    linked = await client.post(
        f"/api/duplicates/{warning['id']}/link", json={"note": "same man, came back"}, headers=north
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["status"] == "linked"
    assert linked.json()["decided_at"] is not None
    again = await client.post(f"/api/duplicates/{warning['id']}/dismiss", json={}, headers=north)
    assert again.status_code == 409, again.text
    for case_id, other in ((later["id"], earlier["id"]), (earlier["id"], later["id"])):
        timeline = (
            await client.get(
                f"/api/cases/{case_id}/timeline", headers=await headers_of("south", "admin")
            )
        ).json()
        events = [e for e in timeline if e["kind"] == "duplicate_linked"]
        assert len(events) == 1
        assert events[0]["data"]["other_case_id"] == other
        assert events[0]["reason"] == "same man, came back"
    # Linked warnings leave the case detail's open list, stay in the full list.
    detail = (await client.get(f"/api/cases/{later['id']}", headers=north)).json()
    assert detail["duplicate_warnings"] == []
    assert (await duplicates(client, north, later["id"]))["warnings"][0]["status"] == "linked"


async def test_dismissed_warning_stays_dismissed_until_new_kind_of_evidence(client):
    south, north = await headers_of("south"), await headers_of("north")
    earlier = await new_case(client, south, reported_name="孙八", sex="male", estimated_age=50)
    await upload(client, south, "case", earlier["id"], photo(OBAMA_A))
    later = await new_case(client, north, reported_name="孙八", sex="male", estimated_age=50)
    (warning,) = later["duplicate_warnings"]
    dismissed = await client.post(
        f"/api/duplicates/{warning['id']}/dismiss", json={"note": "different man"}, headers=north
    )
    assert dismissed.status_code == 200
    assert dismissed.json()["status"] == "dismissed"
    # Same evidence again (another case registered later does not touch this pair).
    detail = (await client.get(f"/api/cases/{later['id']}", headers=north)).json()
    assert detail["duplicate_warnings"] == []
    # New evidence: a photo of the same face reopens it with the face reason.
    await upload_file(client, north, "case", later["id"], OBAMA_B)
    body = await duplicates(client, north, later["id"])
    (reopened,) = body["warnings"]
    assert reopened["status"] == "open"
    assert [r["kind"] for r in reopened["reasons"]] == ["attributes", "face"]


async def test_bad_decisions_are_clear(client):
    north = await headers_of("north")
    missing = await client.post("/api/duplicates/987654/link", json={}, headers=north)
    assert missing.status_code == 404
    assert "987654" in missing.json()["detail"]
    case = await new_case(client, north)
    bad = await client.post("/api/duplicates/1/link", json={"note": 5}, headers=north)
    assert bad.status_code == 400
    assert (await client.get(f"/api/cases/{case['id']}/duplicates", headers=north)).json() == {
        "warnings": [],
        "photos_pending_face_check": [],
    }


async def test_one_writer_raises_new_pairs_and_adds_evidence_to_known_ones():
    """rescue.duplicates.services._raise is the only writer of duplicate warnings
    (tests/unit/test_one_writer.py): in one call, a pair without a warning is
    made with its reason and face distance, a known pair gets a new kind of
    evidence and the smaller distance (a dismissed one opens again), the same
    kind of evidence again changes nothing (a dismissed pair stays dismissed),
    and a pair named twice is made once."""
    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import create_case
    from rescue.cases.tables import Sex
    from rescue.duplicates.services import Evidence, _raise
    from rescue.duplicates.tables import DuplicateWarning
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    setup = Principal(user_id=0, username="setup", role=Role.admin, station="north")
    ids = [
        (
            await create_case(
                data=CaseCreate(sex=Sex.male, estimated_age=40, found_place="G318"), by=setup
            )
        ).id
        for _ in range(5)
    ]
    me, known, dismissed, same_again, new = ids
    face = {"kind": "face", "photo_id": 1, "other_photo_id": 2, "distance": 0.3}
    await _raise(
        case_id=me,
        found=[
            Evidence(known, {"kind": "attributes", "matched": ["name", "sex"]}),
            Evidence(dismissed, {"kind": "attributes", "matched": ["name", "sex"]}),
            Evidence(same_again, {**face, "distance": 0.35}, 0.35),
        ],
    )
    await DuplicateWarning.update({DuplicateWarning.status: "dismissed"}).where(
        DuplicateWarning.other_case.is_in([dismissed, same_again])
    )

    await _raise(
        case_id=me,
        found=[
            Evidence(new, face, 0.3),
            Evidence(new, {**face, "other_photo_id": 3}, 0.31),  # the pair named twice
            Evidence(known, face, 0.3),
            Evidence(dismissed, face, 0.4),
            Evidence(same_again, {**face, "distance": 0.2}, 0.2),
        ],
    )
    rows = {
        r["other_case"]: r
        for r in await DuplicateWarning.select().where(DuplicateWarning.case == me)
    }
    assert len(rows) == 4

    def kinds(other: int) -> list[str]:
        reasons = rows[other]["reasons"]
        reasons = json.loads(reasons) if isinstance(reasons, str) else reasons
        return [r["kind"] for r in reasons]

    assert (kinds(new), rows[new]["best_distance"], rows[new]["status"]) == (["face"], 0.3, "open")
    assert (kinds(known), rows[known]["best_distance"]) == (["attributes", "face"], 0.3)
    assert (kinds(dismissed), rows[dismissed]["status"]) == (["attributes", "face"], "open")
    # The same kind again: still dismissed, only the smaller distance kept.
    assert (kinds(same_again), rows[same_again]["status"]) == (["face"], "dismissed")
    assert rows[same_again]["best_distance"] == 0.2


async def test_a_gallery_that_missed_a_deletion_warns_on_no_deleted_face():
    """Defence in depth: a worker's gallery can still hold a deleted face (a
    deletion-log entry not read yet); the duplicate-intake search checks that the
    faces it found still exist, so no warning names a deleted face."""

    import numpy as np

    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import create_case
    from rescue.cases.tables import Sex
    from rescue.duplicates.services import check_photo_faces
    from rescue.duplicates.tables import DuplicateWarning
    from rescue.matching.duplicates import same_person_faces
    from rescue.matching.gallery import DIM
    from rescue.matching.services import GallerySet
    from rescue.matching.tables import FaceDeletion
    from rescue.photos.tables import Face
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    setup = Principal(user_id=0, username="setup", role=Role.admin, station="north")
    me, twin, other = [
        (
            await create_case(
                data=CaseCreate(sex=Sex.male, estimated_age=40, found_place="G318"), by=setup
            )
        ).id
        for _ in range(3)
    ]
    rng = np.random.default_rng(7)
    probe = rng.normal(0.0, 0.05, DIM)

    def near(distance: float) -> np.ndarray:
        step = rng.normal(0.0, 1.0, DIM)
        return probe + distance * step / np.linalg.norm(step)

    async def photo_with_face(case_id: int, encoding: np.ndarray) -> tuple[int, int]:
        photo_id, (face_id,) = await stored_faces([encoding], case=case_id)
        return photo_id, face_id

    mine, _ = await photo_with_face(me, probe)
    _, twin_face = await photo_with_face(twin, near(0.1))
    await photo_with_face(other, near(0.3))
    galleries = GallerySet()
    found = await same_person_faces(photo_id=mine, galleries=galleries, threshold=0.53)
    assert [h.owner_id for h in found] == [twin, other]

    # The twin's face is deleted, and its log entry lost to this gallery.
    await Face.delete().where(Face.id == twin_face)
    await FaceDeletion.delete().where(FaceDeletion.face_id == twin_face)
    await galleries.cases.refresh()
    assert twin_face in galleries.cases.gallery.face_ids  # stale
    assert await check_photo_faces(photo_id=mine, galleries=galleries, threshold=0.53) == 1
    warned = await DuplicateWarning.select(DuplicateWarning.case, DuplicateWarning.other_case)
    assert [{w["case"], w["other_case"]} for w in warned] == [{me, other}]
