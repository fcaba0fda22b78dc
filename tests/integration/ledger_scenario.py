"""The ledger's set-based write of one search's matches (issue 16), as a scenario
run on PostgreSQL in-process and on SQLite in a process of its own
(tests/integration/test_ledger_writes.py): whichever engine DATABASE_URL names."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from rescue.cases.events import CaseEvent
from rescue.cases.tables import Case
from rescue.matching.embedding import MODEL_NAME
from rescue.matching.ledger import FaceMatch, breakdown_of, record_face_matches
from rescue.matching.tables import Candidate, CandidateEvidence, CandidateStatus
from rescue.notices.tables import Notice
from rescue.photos.tables import Photo

THRESHOLD = 0.53


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _photo(owner: str, owner_id: int, n: int) -> int:
    rows = await Photo.insert(
        Photo(
            **{owner: owner_id},
            object_key=f"ledger/{owner}-{owner_id}-{n}.jpg",
            sha256="0" * 64,
            size_bytes=1,
            media_type="image/jpeg",
            width=1,
            height=1,
            status="processed",
        )
    ).returning(Photo.id)
    return int(rows[0]["id"])


async def _candidate(case_id: int, notice_id: int) -> dict[str, Any]:
    row = (
        await Candidate.select()
        .where((Candidate.case == case_id) & (Candidate.notice == notice_id))
        .first()
    )
    assert row is not None
    return row


async def scenario() -> None:
    rows = await Case.insert(
        Case(
            reference="L-1",
            placeholder_name="无名氏-L-1",
            station="north",
            sex="male",
            estimated_age=50,
            admitted_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
    ).returning(Case.id)
    case_id = int(rows[0]["id"])
    notices = []
    for name, sex in (("张三", "male"), ("李四", "unknown"), ("王五", "female")):
        rows = await Notice.insert(Notice(name=name, source="family", sex=sex)).returning(Notice.id)
        notices.append(int(rows[0]["id"]))
    case_photo = await _photo("case", case_id, 1)
    notice_photos = [await _photo("notice", n, 1) for n in notices]
    quality = {"case": {"face_px": 120}, "notice": {"face_px": 90}}

    def match(i: int, distance: float, case_p: int = case_photo) -> FaceMatch:
        return FaceMatch(case_id, notices[i], distance, case_p, notice_photos[i], quality)

    # One search: three pairs written at once, returned in the order given.
    first = [match(2, 0.50), match(0, 0.40), match(1, 0.45)]
    ids = await record_face_matches(first, threshold=THRESHOLD, model=MODEL_NAME, gallery_size=1000)
    assert len(set(ids)) == 3
    for m, candidate_id in zip(first, ids, strict=True):
        row = await _candidate(case_id, m.notice_id)
        assert int(row["id"]) == candidate_id
        assert row["status"] == CandidateStatus.proposed.value
        assert row["best_distance"] == m.distance
        assert (row["case_photo"], row["notice_photo"]) == (case_photo, m.notice_photo_id)
        # The stored score, flags and confidence are those a rescore would give.
        expected = await breakdown_of(row)
        assert row["score"] == expected.score
        assert sorted(_loads(row["flags"])) == sorted(expected.flags)
        assert _loads(row["confidence"]) == json.loads(
            json.dumps(expected.components["confidence"])
        )
        assert _loads(row["confidence"])["gallery_size"] == 1000
        evidence = await CandidateEvidence.select().where(
            CandidateEvidence.candidate == candidate_id
        )
        assert len(evidence) == 1
        values = _loads(evidence[0]["values"])
        assert evidence[0]["face_key"] == f"{candidate_id}:face:{MODEL_NAME}"
        assert evidence[0]["distance"] == m.distance == values["distance"]
        assert values["face_quality"] == quality
        assert values["gallery_size"] == 1000
        assert evidence[0]["submitted_role"] == "system"
    assert "sex_mismatch" in _loads((await _candidate(case_id, notices[2]))["flags"])

    # A second case photo: closer for notice 0 (distance, photos and evidence follow),
    # farther for notice 1 (nothing moves); still one row per pair, one face record.
    second_photo = await _photo("case", case_id, 2)
    again = await record_face_matches(
        [match(1, 0.49, second_photo), match(0, 0.30, second_photo)],
        threshold=THRESHOLD,
        model=MODEL_NAME,
        gallery_size=2000,
    )
    assert again == [ids[2], ids[1]]
    closer, farther = await _candidate(case_id, notices[0]), await _candidate(case_id, notices[1])
    assert (closer["best_distance"], closer["case_photo"]) == (0.30, second_photo)
    assert (farther["best_distance"], farther["case_photo"]) == (0.45, case_photo)
    assert await Candidate.count().where(Candidate.case == case_id) == 3
    assert await CandidateEvidence.count() == 3
    kept = await CandidateEvidence.select().where(CandidateEvidence.candidate == ids[2])
    assert kept[0]["distance"] == 0.45
    assert _loads(kept[0]["values"])["gallery_size"] == 1000  # not refreshed: farther
    moved = await CandidateEvidence.select().where(CandidateEvidence.candidate == ids[1])
    assert moved[0]["distance"] == 0.30
    assert moved[0]["case_photo"] == second_photo
    assert _loads(moved[0]["values"])["gallery_size"] == 2000
    assert closer["score"] == (await breakdown_of(closer)).score
    assert closer["score"] > (await _candidate(case_id, notices[1]))["score"]

    # A rejected pair stays rejected for photos seen at the rejection, and comes back
    # (re_proposed + 1, on the case timeline) for a photo processed after it.
    await Candidate.update(
        {
            Candidate.status: CandidateStatus.rejected.value,
            Candidate.rejected_photo_ids: [case_photo, second_photo, notice_photos[0]],
            Candidate.version: 3,
        }
    ).where(Candidate.id == ids[1])
    await record_face_matches(
        [match(0, 0.30, second_photo)], threshold=THRESHOLD, model=MODEL_NAME, gallery_size=2000
    )
    assert (await _candidate(case_id, notices[0]))["status"] == CandidateStatus.rejected.value
    third_photo = await _photo("case", case_id, 3)
    await record_face_matches(
        [match(0, 0.35, third_photo)], threshold=THRESHOLD, model=MODEL_NAME, gallery_size=2000
    )
    back = await _candidate(case_id, notices[0])
    assert back["status"] == CandidateStatus.proposed.value
    assert back["re_proposed"] == 1
    assert back["version"] == 4
    assert back["best_distance"] == 0.30  # the best pair stays the best
    events = await CaseEvent.select().where(
        (CaseEvent.case == case_id) & (CaseEvent.kind == "candidate_re_proposed")
    )
    assert len(events) == 1
    assert _loads(events[0]["data"])["photo_ids"] == [third_photo]


if __name__ == "__main__":
    asyncio.run(scenario())
    print("ledger scenario passed")
