"""Candidate ledger: evidence records, police leads, scores, review and confirmation."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rescue import clock
from rescue.i18n import use_locale
from tests.integration.helpers import (
    admitted_days_ago,
    decide,
    family_confirmation,
    new_case,
    new_notice,
    submit_candidate,
    upload_file,
)
from tests.support import OBAMA_A, OBAMA_B

OBAMA_C = "face_recognition_repo/examples/obama-480p.jpg"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def principal(role: str) -> Any:
    from rescue.users.services import Principal, create_user
    from rescue.users.tables import Role

    name = f"{role}-{secrets.token_hex(3)}"
    user_id = await create_user(username=name, role=role, station="north")
    return Principal(user_id=user_id, username=name, role=Role(role), station="north")


async def face_pair(client: Any, staff: dict[str, str], **case_fields: Any) -> tuple[Any, ...]:
    """A notice and a case of the same person, matched by face."""
    notice = await new_notice(client, staff, missing_since="2015-03-01", age_when_missing=45)
    notice_photo = await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    case = await new_case(client, staff, **case_fields)
    case_photo = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    listed = (await client.get(f"/api/cases/{case['id']}/candidates", headers=staff)).json()
    assert len(listed["items"]) == 1
    return case, notice, case_photo, notice_photo, listed["items"][0]


async def detail(client: Any, headers: dict[str, str], candidate_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/candidates/{candidate_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_police_dna_and_face_match_make_one_candidate(client, staff, police):
    from rescue.matching.embedding import MODEL_NAME

    case, notice, case_photo, notice_photo, face = await face_pair(client, staff)
    body = await submit_candidate(
        client,
        police,
        kind="police_dna",
        values={"likelihood_ratio": 3.2e7, "lab": "市公安局DNA室", "report_number": "DNA-7"},
        case_id=case["id"],
        notice_id=notice["id"],
        note="parent-child kinship",
        attachment=("report.pdf", PDF),
        expect=200,
    )
    assert body["candidate"]["id"] == face["id"]
    kinds = [e["kind"] for e in body["evidence"]]
    assert kinds == ["face", "police_dna"]
    face_ev, dna = body["evidence"]
    assert face_ev["model"] == MODEL_NAME
    from rescue.settings import get_settings

    assert face_ev["threshold"] == pytest.approx(get_settings().matching.threshold)
    assert face_ev["case_photo_id"] == case_photo["id"]
    assert face_ev["notice_photo_id"] == notice_photo["id"]
    assert face_ev["distance"] == pytest.approx(face["best_distance"])
    assert face_ev["submitted_role"] == "system"
    assert dna["values"]["likelihood_ratio"] == pytest.approx(3.2e7)
    assert dna["submitted_role"] == "police_liaison"
    assert dna["attachment_media_type"] == "application/pdf"
    assert dna["attachment_url_expires_in"] <= 300
    async with httpx.AsyncClient() as http:
        fetched = await http.get(dna["attachment_url"])
    assert fetched.content == PDF
    assert body["candidate"]["evidence_kinds"] == ["face", "police_dna"]
    # Corroboration raises the score (noisy-OR of the sources).
    assert body["candidate"]["score"] > face["score"]
    assert body["breakdown"]["components"]["evidence"]["by_kind"]["police_dna"] == 1.0
    assert "encoding" not in str(body)

    # Still one candidate, and the face record is refreshed, not duplicated, by more photos.
    await upload_file(client, staff, "notice", notice["id"], OBAMA_C)
    again = await detail(client, staff, face["id"])
    assert [e["kind"] for e in again["evidence"]] == ["face", "police_dna"]
    from rescue.matching.tables import Candidate

    assert await Candidate.count().where(Candidate.case == case["id"]) == 1


async def test_police_lead_creates_notice_and_joins_queue(client, staff, police, reviewer):
    case = await new_case(client, staff)
    body = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.91, "system": "省厅人像比对平台"},
        case_id=case["id"],
        notice={"name": "张三", "source": "police", "sex": "male", "missing_since": "2010-05-01"},
        expect=201,
    )
    candidate = body["candidate"]
    notice = (await client.get(f"/api/notices/{candidate['notice_id']}", headers=staff)).json()
    assert notice["name"] == "张三"
    assert notice["source"] == "police"
    queue = (await client.get("/api/candidates?status=proposed", headers=reviewer)).json()
    assert [c["id"] for c in queue["items"]] == [candidate["id"]]
    assert queue["items"][0]["status"] == "proposed"
    timeline = await _case_events(case["id"])
    assert "candidate_evidence_added" in [e["kind"] for e in timeline]


async def test_queue_best_first_and_paged(client, staff, police, reviewer):
    case = await new_case(client, staff)
    scores = [0.55, 0.95, 0.75]
    for i, score in enumerate(scores):
        notice = await new_notice(client, staff, name=f"人{i}")
        await submit_candidate(
            client,
            police,
            kind="police_face",
            values={"score": score},
            case_id=case["id"],
            notice_id=notice["id"],
        )
    page = (await client.get("/api/candidates?status=proposed&limit=2", headers=reviewer)).json()
    assert page["total"] == 3
    assert [c["score"] for c in page["items"]] == sorted(
        [c["score"] for c in page["items"]], reverse=True
    )
    assert page["items"][0]["score"] == pytest.approx(0.95, abs=0.01)
    rest = (
        await client.get("/api/candidates?status=proposed&limit=2&offset=2", headers=reviewer)
    ).json()
    assert len(rest["items"]) == 1
    assert rest["items"][0]["score"] < page["items"][1]["score"]


async def test_rejected_pair_not_reproposed_by_same_photos_but_by_new_photo(
    client, staff, reviewer
):
    from rescue.matching.services import GallerySet, match_photo
    from rescue.settings import get_settings

    case, notice, case_photo, notice_photo, face = await face_pair(client, staff)
    response = await decide(client, reviewer, face["id"], "reject", "")
    assert response.status_code == 400  # a reason is required
    response = await decide(client, reviewer, face["id"], "reject", "different ear shape")
    assert response.status_code == 200, response.text
    assert response.json()["candidate"]["status"] == "rejected"

    # The same photos matched again (as on redelivery or a re-match): stays rejected.
    for photo_id in (case_photo["id"], notice_photo["id"]):
        await match_photo(photo_id=photo_id, settings=get_settings(), galleries=GallerySet())
    same = await detail(client, reviewer, face["id"])
    assert same["candidate"]["status"] == "rejected"
    assert same["candidate"]["re_proposed"] == 0

    # A new photo of the notice's person brings the pair back, marked as re-proposed.
    await upload_file(client, staff, "notice", notice["id"], OBAMA_C)
    back = await detail(client, reviewer, face["id"])
    assert back["candidate"]["status"] == "proposed"
    assert back["candidate"]["re_proposed"] == 1
    queue = (await client.get("/api/candidates?status=proposed", headers=reviewer)).json()
    assert [(c["id"], c["re_proposed"]) for c in queue["items"]] == [(face["id"], 1)]
    kinds = [e["kind"] for e in await _case_events(case["id"])]
    assert "candidate_rejected" in kinds
    assert "candidate_re_proposed" in kinds


async def test_new_police_evidence_reproposes_rejected_pair(client, staff, police, reviewer):
    case, notice, *_, face = await face_pair(client, staff)
    assert (await decide(client, reviewer, face["id"], "reject", "not him")).status_code == 200
    body = await submit_candidate(
        client,
        police,
        kind="police_dna",
        values={"likelihood_ratio": 1e9},
        case_id=case["id"],
        notice_id=notice["id"],
    )
    assert body["candidate"]["id"] == face["id"]
    assert body["candidate"]["status"] == "proposed"
    assert body["candidate"]["re_proposed"] == 1


async def test_confirmation_needs_family_confirmation(client, staff, reviewer):
    case, notice, *_, face = await face_pair(client, staff)
    other_notice = await new_notice(client, staff, name="王二")
    other_case = await new_case(client, staff)
    police = {"Authorization": f"Bearer {await _token('police_liaison')}"}
    loser_a = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.7},
        case_id=case["id"],
        notice_id=other_notice["id"],
    )
    loser_b = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.7},
        case_id=other_case["id"],
        notice_id=notice["id"],
    )

    started = await decide(client, reviewer, face["id"], "start_review", "looks close")
    assert started.status_code == 200
    assert started.json()["candidate"]["status"] == "under_review"
    refused = await decide(client, reviewer, face["id"], "confirm", "same person")
    assert refused.status_code == 409
    assert refused.json()["reason"] == "family_confirmation_required"
    assert "family confirmation" in refused.json()["detail"]
    assert (await detail(client, reviewer, face["id"]))["candidate"]["status"] == "under_review"

    await family_confirmation(client, reviewer, face["id"], method="video_call")
    await family_confirmation(client, reviewer, face["id"], method="visit", relationship="son")
    confirmed = await decide(client, reviewer, face["id"], "confirm", "mother recognised him")
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["candidate"]["status"] == "confirmed"
    assert [c["method"] for c in body["family_confirmations"]] == ["video_call", "visit"]
    assert [r["decision"] for r in body["reviews"]] == ["start_review", "confirm"]

    assert (await client.get(f"/api/cases/{case['id']}", headers=staff)).json()[
        "status"
    ] == "identified"
    assert (await client.get(f"/api/notices/{notice['id']}", headers=staff)).json()[
        "status"
    ] == "found"
    for loser in (loser_a, loser_b):
        assert (await detail(client, reviewer, loser["candidate"]["id"]))["candidate"][
            "status"
        ] == "superseded"
    # A superseded candidate cannot be decided any more.
    late = await decide(client, reviewer, loser_a["candidate"]["id"], "confirm", "x")
    assert late.status_code == 409
    events = await _case_events(case["id"])
    kinds = [e["kind"] for e in events]
    assert "family_confirmation_recorded" in kinds
    assert "candidate_confirmed" in kinds
    status_change = [e for e in events if e["kind"] == "status_changed"][-1]
    assert status_change["to_status"] == "identified"
    assert status_change["actor_role"] == "reviewer"
    from rescue.notices.events import notice_events

    log = await notice_events(notice_id=notice["id"])
    assert [(e["kind"], e["to_status"]) for e in log] == [("candidate_confirmed", "found")]


async def test_roles(client, staff, police, reviewer, admin):
    case, notice, *_, face = await face_pair(client, staff)
    assert (await decide(client, police, face["id"], "reject", "no")).status_code == 403
    assert (await decide(client, staff, face["id"], "reject", "no")).status_code == 403
    # Police evidence comes from police liaison only; staff leads are allowed.
    await submit_candidate(
        client,
        staff,
        kind="police_dna",
        values={"likelihood_ratio": 1e6},
        case_id=case["id"],
        notice_id=notice["id"],
        expect=403,
    )
    await submit_candidate(
        client,
        staff,
        kind="staff",
        values={"summary": "same dialect and scar as in the notice"},
        case_id=case["id"],
        notice_id=notice["id"],
        expect=200,
    )
    await submit_candidate(
        client,
        reviewer,
        kind="staff",
        values={"summary": "x"},
        case_id=case["id"],
        notice_id=notice["id"],
        expect=403,
    )
    response = await client.post(
        f"/api/candidates/{face['id']}/family-confirmations",
        json={"confirmer_name": "a", "relationship": "b", "method": "visit"},
        headers=police,
    )
    assert response.status_code == 403
    assert (await client.post("/api/admin/rematch", headers=reviewer)).status_code == 403


@pytest.mark.parametrize(
    ("fields", "values", "kind", "status"),
    [
        ({}, {"likelihood_ratio": 10}, "police_dna", 400),  # neither case nor description
        ({"person_description": "x"}, {"likelihood_ratio": -1}, "police_dna", 400),
        ({"person_description": "x"}, {"score": 1.5}, "police_face", 400),
        ({"person_description": "x"}, {"score": 0.5, "typo": 1}, "police_face", 400),
        ({"person_description": "x"}, {"distance": 0.3}, "face", 400),
        ({"person_description": "x"}, {"summary": "x"}, "gossip", 400),
    ],
)
async def test_submission_validation(client, staff, police, fields, values, kind, status):
    notice = await new_notice(client, staff)
    body = await submit_candidate(
        client, police, kind=kind, values=values, notice_id=notice["id"], expect=status, **fields
    )
    assert body["detail"]


async def test_bad_attachment_refused_and_not_stored(client, staff, police):
    from rescue.runtime import get_store

    store = get_store()

    def evidence_objects() -> int:
        # (SeaweedFS may list an empty "evidence/" folder entry after a delete.)
        listed = store.client.list_objects(store.bucket, prefix="evidence/", recursive=True)
        return sum(1 for o in listed if not o.object_name.endswith("/"))

    before = evidence_objects()
    case = await new_case(client, staff)
    notice = await new_notice(client, staff)
    await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.8},
        case_id=case["id"],
        notice_id=notice["id"],
        attachment=("report.txt", b"just text, not a report"),
        expect=415,
    )
    # The database write fails after the object was stored (an impossible notice):
    # the object is removed again.
    await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.8},
        case_id=case["id"],
        notice={"name": "x", "source": "police", "missing_since": "2999-01-01"},
        attachment=("report.pdf", PDF),
        expect=400,
    )
    assert evidence_objects() == before


async def test_lead_without_case_cannot_be_confirmed(client, staff, police, reviewer):
    notice = await new_notice(client, staff)
    body = await submit_candidate(
        client,
        police,
        kind="police_dna",
        values={"likelihood_ratio": 5e8},
        person_description="DNA of an unidentified man at 某县 hospital, about 60",
        notice_id=notice["id"],
        expect=201,
    )
    candidate = body["candidate"]
    assert candidate["case_id"] is None
    assert candidate["person_description"].startswith("DNA of")
    await family_confirmation(client, reviewer, candidate["id"])
    response = await decide(client, reviewer, candidate["id"], "confirm", "dna")
    assert response.status_code == 409
    assert response.json()["reason"] == "no_case"
    # Each description is its own lead.
    again = await submit_candidate(
        client,
        police,
        kind="police_dna",
        values={"likelihood_ratio": 5e8},
        person_description="another unidentified man",
        notice_id=notice["id"],
        expect=201,
    )
    assert again["candidate"]["id"] != candidate["id"]


async def test_seed_case_settled_years_ago_identified_by_police_face_comparison(
    client, staff, police, reviewer
):
    """A man found in 2016 and settled at a welfare home; years later a police face
    comparison links him to his family's notice; a reviewer confirms with the family."""
    from rescue.cases.flows import transition
    from rescue.cases.tables import CaseStatus

    case = await new_case(
        client,
        staff,
        sex="male",
        age_low=48,
        age_high=58,
        found_at="2016-08-12T09:30:00+08:00",
        found_place="某市 G318 国道",
        description="speaks little, Sichuan accent",
    )
    clerk = await principal("station_staff")
    await admitted_days_ago(case["id"], 100)
    for to in (CaseStatus.searching, CaseStatus.stranded, CaseStatus.settlement_pending):
        await transition(case_id=case["id"], to=to, by=clerk, reason="seed case history")
    placed = await client.post(
        f"/api/cases/{case['id']}/placements",
        json={"kind": "welfare_home", "facility": "区社会福利院"},
        headers=staff,
    )
    assert placed.status_code == 201, placed.text
    await transition(
        case_id=case["id"], to=CaseStatus.settled, by=clerk, reason="落户安置 at the welfare home"
    )
    notice = await new_notice(
        client,
        police,
        name="陈建国",
        sex="male",
        source="police",
        age_when_missing=42,
        missing_since="2016-06-01",
        last_seen_place="四川省某县",
    )
    body = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.94, "system": "省厅人像比对平台", "report_number": "RX-2026-18"},
        case_id=case["id"],
        notice_id=notice["id"],
        attachment=("comparison.pdf", PDF),
        expect=201,
    )
    candidate = body["candidate"]
    assert candidate["flags"] == []
    assert body["breakdown"]["components"]["sex"]["result"] == "compatible"
    assert body["breakdown"]["components"]["dates"]["result"] == "consistent"
    assert (await decide(client, police, candidate["id"], "confirm", "x")).status_code == 403

    await family_confirmation(
        client,
        reviewer,
        candidate["id"],
        confirmer_name="陈小红",
        relationship="daughter",
        method="video_call",
        confirmed_at=(datetime.now(UTC) - timedelta(hours=2)).isoformat(),
    )
    response = await decide(
        client, reviewer, candidate["id"], "confirm", "daughter recognised him on video"
    )
    assert response.status_code == 200, response.text
    assert (await client.get(f"/api/cases/{case['id']}", headers=staff)).json()[
        "status"
    ] == "identified"
    assert (await client.get(f"/api/notices/{notice['id']}", headers=staff)).json()[
        "status"
    ] == "found"
    # Then the return plan (the escort and handover are followed to the end in
    # tests/integration/test_workflow.py::test_seed_case_admission_to_escorted_home).
    plan = await client.post(
        f"/api/cases/{case['id']}/return-plan",
        json={
            "destination": "四川省某县救助管理站",
            "transport": "station car, 100 km",
            "escort_staff": ["王", "李"],
            "planned_on": clock.today().isoformat(),
        },
        headers=staff,
    )
    assert plan.status_code == 201, plan.text
    assert (await client.get(f"/api/cases/{case['id']}", headers=staff)).json()[
        "status"
    ] == "return_planned"


@pytest.mark.parametrize("second", ["confirm", "reject"])
async def test_concurrent_decisions_first_wins(client, staff, reviewer, second):
    case, _notice, *_, face = await face_pair(client, staff)
    await family_confirmation(client, reviewer, face["id"])
    other = {"Authorization": f"Bearer {await _token('reviewer')}"}
    responses = await asyncio.gather(
        decide(client, reviewer, face["id"], "confirm", "same person"),
        decide(client, other, face["id"], second, "my view"),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"] == "conflict"
    final = await detail(client, reviewer, face["id"])
    winner = next(r for r in responses if r.status_code == 200).json()
    assert final["candidate"]["status"] == winner["candidate"]["status"]
    assert len(final["reviews"]) == 1
    case_status = (await client.get(f"/api/cases/{case['id']}", headers=staff)).json()["status"]
    assert case_status == (
        "identified" if final["candidate"]["status"] == "confirmed" else "admitted"
    )


async def test_stale_version_refused(client, staff, reviewer):
    *_, face = await face_pair(client, staff)
    response = await client.post(
        f"/api/candidates/{face['id']}/decision",
        json={"decision": "start_review", "reason": "r", "expected_version": face["version"] + 1},
        headers=reviewer,
    )
    assert response.status_code == 409


async def test_second_reviewer_required_when_configured(client, staff, reviewer):
    import dataclasses

    from rescue.errors import Conflict
    from rescue.matching.review import decide as decide_service
    from rescue.matching.schemas import DecisionIn
    from rescue.settings import ReviewSettings, get_settings

    settings = dataclasses.replace(
        get_settings(), review=ReviewSettings(require_second_reviewer=True)
    )
    _case, _notice, *_, face = await face_pair(client, staff)
    await family_confirmation(client, reviewer, face["id"])
    first, second = await principal("reviewer"), await principal("reviewer")
    confirm = DecisionIn(decision="confirm", reason="same person")
    after_first = await decide_service(
        candidate_id=face["id"], data=confirm, by=first, settings=settings
    )
    assert after_first.candidate.status == "under_review"
    assert after_first.awaiting_second_reviewer
    with use_locale("en"), pytest.raises(Conflict, match="second, different reviewer"):
        await decide_service(candidate_id=face["id"], data=confirm, by=first, settings=settings)
    done = await decide_service(candidate_id=face["id"], data=confirm, by=second, settings=settings)
    assert done.candidate.status == "confirmed"
    assert [r.reviewer_id for r in done.reviews] == [first.user_id, second.user_id]


async def test_flags_for_incompatible_sex_and_impossible_age(client, staff, police, reviewer):
    case = await new_case(client, staff, sex="female", estimated_age=20)
    notice = await new_notice(
        client, staff, sex="male", date_of_birth="1950-01-01", missing_since="2000-01-01"
    )
    fine_notice = await new_notice(client, staff, sex="female", age_when_missing=18)
    flagged = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.99},
        case_id=case["id"],
        notice_id=notice["id"],
    )
    fine = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.8},
        case_id=case["id"],
        notice_id=fine_notice["id"],
    )
    assert set(flagged["candidate"]["flags"]) == {"sex_mismatch", "age_impossible"}
    assert flagged["breakdown"]["components"]["sex"]["result"] == "incompatible"
    assert flagged["breakdown"]["components"]["age"]["result"] == "impossible"
    assert fine["candidate"]["flags"] == []
    # Flagged, never hidden: still in the queue, below the plausible one.
    queue = (await client.get("/api/candidates?status=proposed", headers=reviewer)).json()
    assert [c["id"] for c in queue["items"]] == [
        fine["candidate"]["id"],
        flagged["candidate"]["id"],
    ]


async def test_compare_page_shows_both_photos_and_breakdown(client, staff, reviewer):
    _case, _notice, case_photo, notice_photo, face = await face_pair(
        client, staff, reported_name="<script>alert(1)</script>"
    )
    response = await client.get(f"/api/candidates/{face['id']}/compare", headers=reviewer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page
    assert page.count("<img ") == 2
    assert page.count('class="box') == 2  # one face box per photo
    assert "X-Amz-Expires=300" in page or "X-Amz-Expires=" in page
    assert f"photo {case_photo['id']}" in page
    assert f"photo {notice_photo['id']}" in page
    assert "age" in page
    assert "sex" in page
    missing = await client.get("/api/candidates/999999/compare", headers=reviewer)
    assert missing.status_code == 404


async def test_rematch_on_demand_with_progress(client, staff, admin, reviewer):
    from rescue.matching.tables import Candidate

    *_, face = await face_pair(client, staff)
    assert (await decide(client, reviewer, face["id"], "reject", "not him")).status_code == 200
    started = await client.post("/api/admin/rematch", headers=admin)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["total"] == 2
    deadline = asyncio.get_running_loop().time() + 60
    while run["status"] not in {"done", "failed"}:
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.25)
        run = (await client.get(f"/api/admin/rematch/{run['id']}", headers=admin)).json()
    assert run["status"] == "done", run
    assert run["done"] == run["total"] == 2
    assert run["candidates_touched"] == 1
    # Same photos: the rejected pair stays rejected.
    row = await Candidate.select(Candidate.status).where(Candidate.id == face["id"]).first()
    assert row["status"] == "rejected"
    assert (await client.get("/api/admin/rematch/999999", headers=admin)).status_code == 404


async def _token(role: str) -> str:
    from tests.conftest import make_token

    return await make_token(role)


async def _case_events(case_id: int) -> list[dict[str, Any]]:
    from rescue.cases.events import CaseEvent

    return list(await CaseEvent.select().where(CaseEvent.case == case_id).order_by(CaseEvent.id))


async def test_rematch_cli(client, staff, admin):
    import re
    import subprocess
    import sys

    import anyio.to_thread

    from rescue.devservices import ROOT

    await face_pair(client, staff)

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "rescue.cli", "rematch", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    now = await anyio.to_thread.run_sync(cli, "--now")
    assert "done: 2/2 photo(s), 1 candidate(s) touched" in now
    queued = await anyio.to_thread.run_sync(cli)
    match = re.search(r"queued rematch run (\d+) over 2 photo", queued)
    assert match, queued
    run_id = int(match.group(1))
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        run = (await client.get(f"/api/admin/rematch/{run_id}", headers=admin)).json()
        if run["status"] == "done":
            break
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.25)
    assert run["done"] == 2


async def test_recording_a_birth_date_estimate_rescores_the_case_candidates(client, staff):
    """Notice: 45 when missing in 2015 (about 56 now). Case estimated at 20 on
    admission: impossible. Staff later record a birth-date estimate from documents
    found with him: the age flag goes away."""
    case, _notice, *_, face = await face_pair(client, staff, estimated_age=20)
    before = await detail(client, staff, face["id"])
    assert "age_impossible" in before["candidate"]["flags"]
    response = await client.patch(
        f"/api/cases/{case['id']}",
        json={"birth_date_estimate": "1970-01-01", "reason": "身份证复印件"},
        headers=staff,
    )
    assert response.status_code == 200, response.text
    after = await detail(client, staff, face["id"])
    assert "age_impossible" not in after["candidate"]["flags"]
    assert after["candidate"]["score"] > before["candidate"]["score"]


async def test_evidence_is_stamped_by_the_station_clock(client, staff, police):
    """Evidence and candidate times come from rescue.clock (the comparison page
    shows them beside family confirmations stamped by the same clock)."""
    from datetime import UTC, datetime

    from rescue import clock

    case = await new_case(client, staff)
    at = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    with clock.frozen(at):
        body = await submit_candidate(
            client,
            police,
            kind="police_face",
            values={"score": 0.91, "system": "省厅人像比对平台"},
            case_id=case["id"],
            notice={"name": "张三", "source": "police", "sex": "male"},
            expect=201,
        )
    candidate = body["candidate"]
    assert datetime.fromisoformat(candidate["created_at"]) == at
    detail = (await client.get(f"/api/candidates/{candidate['id']}", headers=police)).json()
    assert [datetime.fromisoformat(e["created_at"]) for e in detail["evidence"]] == [at]
