"""The case workflow through the HTTP API: the seed case from admission to escort
home, placements, identity-search actions, alerts, handover, timeline."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from rescue import clock
from rescue.cases.tables import Case
from rescue.devservices import ROOT
from tests.conftest import make_token
from tests.integration.helpers import (
    admitted_days_ago,
    decide,
    family_confirmation,
    new_case,
    new_notice,
    submit_candidate,
)
from tests.support import no_face_jpeg

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def timeline(client: Any, headers: dict[str, str], case_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/cases/{case_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def move(
    client: Any, headers: dict[str, str], case_id: int, to: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": to, "reason": extra.pop("reason", f"to {to}"), **extra},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def place(
    client: Any, headers: dict[str, str], case_id: int, kind: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/cases/{case_id}/placements",
        json={"kind": kind, "facility": extra.pop("facility", kind), **extra},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def handover_form(**overrides: str) -> dict[str, str]:
    return {
        "receiving_party": "family",
        "receiver_name": "李建国",
        "relationship": "son",
        "id_document_type": "居民身份证",
        "id_document_number": "510802197001011234",
        "id_document_checked": "true",
        "handed_over_at": clock.now().isoformat(),
        "place": "广元市救助管理站",
        **overrides,
    }


async def test_seed_case_admission_to_escorted_home(client, staff, police):
    from rescue.runtime import get_store

    # Admission: placed in the station, deadlines start.
    case = await new_case(client, staff, estimated_age=62, station="north", height_cm=165)
    cid = case["id"]
    # Stranded too early is refused: the normal term is 10 days (2015 意见).
    response = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "stranded", "reason": "x"}, headers=staff
    )
    assert response.status_code == 409
    assert "10 days" in response.json()["detail"]
    chinese = await client.post(
        f"/api/cases/{cid}/transitions",
        json={"to": "stranded", "reason": "x"},
        headers={**staff, "Accept-Language": "zh-CN"},
    )
    detail_zh = chinese.json()["detail"]
    assert f"案件 {case['reference']} 须在站满 10 日后" in detail_zh  # reference, unit in words
    assert "T" not in detail_zh.split("（自 ", 1)[1][:16]  # a local time, not ISO's T
    await admitted_days_ago(cid, 11)  # test set-up: eleven days in care
    events = await timeline(client, staff, cid)
    assert [e["kind"] for e in events] == ["admitted"]
    detail = (await client.get(f"/api/cases/{cid}", headers=staff)).json()
    assert detail["current_placement"]["kind"] == "in_station"
    assert {a["kind"] for a in detail["alerts"]} >= {"announcement", "dna_request", "stranded"}
    assert detail["custody_only"] is False

    # Quick check failed: searching. Announcement and DNA request recorded.
    await move(client, staff, cid, "searching", reason="指纹比对无结果")
    assert (await timeline(client, staff, cid))[-1]["to_status"] == "searching"
    response = await client.post(
        f"/api/cases/{cid}/announcements",
        json={"channel": "全国救助寻亲网", "published_on": clock.today().isoformat()},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/api/cases/{cid}/dna-requests",
        json={"requested_on": clock.today().isoformat(), "police_unit": "城北派出所"},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    dna_id = response.json()["id"]
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    kinds = {a["kind"] for a in alerts}
    assert "announcement" not in kinds
    assert "dna_request" not in kinds
    assert "dna_result" in kinds
    assert "announcement_update" in kinds
    # The police liaison records the DNA result; the dna_result item clears.
    response = await client.post(
        f"/api/dna-requests/{dna_id}/result",
        json={"result_on": clock.today().isoformat(), "result": "no match in 打拐DNA库"},
        headers=police,
    )
    assert response.status_code == 200, response.text
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    assert "dna_result" not in {a["kind"] for a in alerts}
    assert [e["kind"] for e in (await timeline(client, staff, cid))[-3:]] == [
        "announcement",
        "dna_request",
        "dna_result",
    ]

    # General hospital, then psychiatric hospital: status unchanged, one current.
    hospital = await place(
        client, staff, cid, "general_hospital", facility="市第一人民医院", reason="肺炎"
    )
    psych = await place(
        client, staff, cid, "psychiatric_hospital", facility="市精神卫生中心", reason="转院"
    )
    placements = (await client.get(f"/api/cases/{cid}/placements", headers=staff)).json()
    assert [p["kind"] for p in placements["items"]] == [
        "in_station",
        "general_hospital",
        "psychiatric_hospital",
    ]
    assert placements["current"]["id"] == psych["id"]
    assert placements["items"][1]["ended_at"] == psych["started_at"]
    assert (await client.get(f"/api/cases/{cid}", headers=staff)).json()["status"] == "searching"
    # Discharge certificate (PDF) on the hospital stay, stored in the object store.
    response = await client.post(
        f"/api/placements/{hospital['id']}/documents",
        files={"file": ("出院证明.pdf", PDF, "application/octet-stream")},
        data={"title": "出院证明"},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    assert response.json()["media_type"] == "application/pdf"
    kinds = [e["kind"] for e in (await timeline(client, staff, cid))[-5:]]
    assert kinds == [
        "placement_ended",
        "placement_started",
        "placement_ended",
        "placement_started",
        "placement_document_added",
    ]

    # Stranded, settlement proposed, welfare home, settled.
    await move(client, staff, cid, "stranded", reason="入站超过10天仍未查明身份")
    for kind in ("care_decision", "extension_filing"):
        response = await client.post(
            f"/api/cases/{cid}/filings",
            json={"kind": kind, "on_date": clock.today().isoformat(), "reference": "民字12号"},
            headers=staff,
        )
        assert response.status_code == 201, response.text
    await move(client, staff, cid, "settlement_pending", reason="落户安置方案报批")
    refused = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "settled", "reason": "x"}, headers=staff
    )
    assert refused.status_code == 409
    assert refused.json()["current"] == "settlement_pending"
    await place(client, staff, cid, "welfare_home", facility="市社会福利院")
    # Before the 3-month eligibility period settlement needs a recorded approval.
    refused = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "settled", "reason": "x"}, headers=staff
    )
    assert refused.status_code == 409
    assert "3 months" in refused.json()["detail"]
    assert "settlement-approvals" in refused.json()["requires"]
    response = await client.post(
        f"/api/cases/{cid}/settlement-approvals",
        files={"document": ("批复.pdf", PDF, "application/pdf")},
        data={
            "authority": "市民政局",
            "reference": "民批〔2026〕7号",
            "approved_on": clock.today().isoformat(),
        },
        headers=staff,
    )
    assert response.status_code == 201, response.text
    await move(client, staff, cid, "settled", reason="落户福利院")
    events = await timeline(client, staff, cid)
    assert events[-1]["to_status"] == "settled"
    assert events[-2]["kind"] == "settlement_approved"

    # Years later a police face comparison matches a missing-person record from
    # another county; the family confirm it more than once; a reviewer confirms.
    reviewer = {"Authorization": f"Bearer {await make_token('reviewer', station='north')}"}
    notice = await new_notice(
        client,
        police,
        name="刘某",
        source="police",
        last_seen_place="邻县",
        missing_since="2014-05-01",
    )
    lead = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.93, "system": "公安人像比对系统", "report_number": "RX-2026-17"},
        case_id=cid,
        notice_id=notice["id"],
    )
    lead = lead["candidate"]
    refused = await decide(client, reviewer, lead["id"], "confirm", "公安人像比对")
    assert refused.status_code == 409  # no family confirmation yet
    for method in ("video_call", "visit"):
        await family_confirmation(client, reviewer, lead["id"], method=method)
    confirmed = await decide(client, reviewer, lead["id"], "confirm", "公安人像比对, 家属多次确认")
    assert confirmed.status_code == 200, confirmed.text
    assert (await client.get(f"/api/notices/{notice['id']}", headers=staff)).json()[
        "status"
    ] == "found"
    events = await timeline(client, staff, cid)
    identified = [e for e in events if e["to_status"] == "identified"]
    assert [(e["kind"], e["actor_role"]) for e in identified] == [("status_changed", "reviewer")]
    after = [e["kind"] for e in events[events.index(identified[0]) :]]
    assert "task_created" in after  # 集体户口注销 for the police liaison
    assert "candidate_confirmed" in after
    tasks = (await client.get(f"/api/tasks?case_id={cid}", headers=police)).json()
    assert [t["kind"] for t in tasks] == ["cancel_collective_household"]
    response = await client.post(f"/api/tasks/{tasks[0]['id']}/done", headers=staff)
    assert response.status_code == 403  # the police liaison's task
    response = await client.post(f"/api/tasks/{tasks[0]['id']}/done", headers=police)
    assert response.status_code == 200, response.text

    # Return plan → return_planned.
    response = await client.post(
        f"/api/cases/{cid}/return-plan",
        json={
            "destination": "四川省广元市利州区",
            "transport": "train K1234",
            "escort_staff": ["王芳", "刘强"],
            "planned_on": clock.today().isoformat(),
        },
        headers=staff,
    )
    assert response.status_code == 201, response.text
    events = await timeline(client, staff, cid)
    assert events[-1]["to_status"] == "return_planned"
    assert events[-1]["data"]["escort_staff"] == ["王芳", "刘强"]

    # Closing before the handover is refused.
    refused = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "escorted_home", "reason": "x"}, headers=staff
    )
    assert refused.status_code == 409
    assert "handover" in refused.json()["detail"]

    # Handover with the scanned signed sheet (an image), then escorted_home.
    sheet = no_face_jpeg()
    response = await client.post(
        f"/api/cases/{cid}/handover",
        files={"sheet": ("交接单.jpg", sheet, "application/octet-stream")},
        data=handover_form(),
        headers=staff,
    )
    assert response.status_code == 201, response.text
    handover = response.json()
    assert handover["sheet_media_type"] == "image/jpeg"
    from rescue.escorts.tables import Handover

    row = await Handover.select(Handover.sheet_object_key).where(Handover.id == handover["id"])
    assert get_store().get(row[0]["sheet_object_key"]) == sheet
    assert (await timeline(client, staff, cid))[-1]["kind"] == "handover_recorded"

    await move(client, staff, cid, "escorted_home", reason="护送至广元, 交接完毕")
    events = await timeline(client, staff, cid)
    assert events[-2]["to_status"] == "escorted_home"
    assert events[-1]["kind"] == "placement_ended"
    placements = (await client.get(f"/api/cases/{cid}/placements", headers=staff)).json()
    assert placements["current"] is None
    assert all(p["ended_at"] for p in placements["items"])

    # The whole journey, in order, on the timeline.
    statuses = [e["to_status"] for e in events if e["kind"] in ("admitted", "status_changed")]
    assert statuses == [
        "admitted",
        "searching",
        "stranded",
        "settlement_pending",
        "settled",
        "identified",
        "return_planned",
        "escorted_home",
    ]
    assert all(e["actor_role"] for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)


async def test_overlapping_placements_refused_with_409(client, staff):
    case = await new_case(client, staff)
    cid = case["id"]
    await backdate(cid, 5)
    now = datetime.now(UTC)
    # A closed hospital stay inside the in-station period overlaps it.
    response = await client.post(
        f"/api/cases/{cid}/placements",
        json={
            "kind": "general_hospital",
            "facility": "医院",
            "started_at": (now - timedelta(days=3)).isoformat(),
            "ended_at": (now - timedelta(days=1)).isoformat(),
        },
        headers=staff,
    )
    assert response.status_code == 409, response.text
    assert response.json()["placement_id"]
    # A move, then a back-dated open placement before the current one: 409.
    await place(client, staff, cid, "general_hospital")
    response = await client.post(
        f"/api/cases/{cid}/placements",
        json={
            "kind": "outsourced_care",
            "facility": "托养中心",
            "contract_reference": "TY-2026-01",
            "started_at": (now - timedelta(hours=1)).isoformat(),
        },
        headers=staff,
    )
    assert response.status_code == 409
    listing = (await client.get(f"/api/cases/{cid}/placements", headers=staff)).json()
    assert len(listing["items"]) == 2
    assert listing["current"]["kind"] == "general_hospital"
    # Outsourced care needs its contract reference.
    response = await client.post(
        f"/api/cases/{cid}/placements",
        json={"kind": "outsourced_care", "facility": "托养中心"},
        headers=staff,
    )
    assert response.status_code == 400
    # The police liaison may not place people.
    from tests.conftest import make_token

    police = {"Authorization": f"Bearer {await make_token('police_liaison')}"}
    response = await client.post(
        f"/api/cases/{cid}/placements", json={"kind": "in_station", "facility": "x"}, headers=police
    )
    assert response.status_code == 403


async def test_placement_documents_sniffed_and_refused(client, staff):
    from rescue.placements.tables import PlacementDocument

    case = await new_case(client, staff)
    listing = (await client.get(f"/api/cases/{case['id']}/placements", headers=staff)).json()
    pid = listing["current"]["id"]
    for data, code in (
        (b"hello, not a document", 415),
        (b"", 400),
        (PDF[:-7], 400),  # truncated PDF
    ):
        response = await client.post(
            f"/api/placements/{pid}/documents",
            files={"file": ("a.pdf", data, "application/pdf")},
            headers=staff,
        )
        assert response.status_code == code, response.text
    assert await PlacementDocument.count() == 0
    response = await client.post(
        f"/api/placements/{pid}/documents",
        files={"file": ("scan.pdf", no_face_jpeg(), "application/pdf")},  # the name lies
        data={"title": "scan"},
        headers=staff,
    )
    assert response.status_code == 201
    assert response.json()["media_type"] == "image/jpeg"
    detail = (
        await client.get(f"/api/placement-documents/{response.json()['id']}", headers=staff)
    ).json()
    assert detail["url"].startswith("http")


async def test_transitions_endpoint_refusals(client, staff, reviewer):
    case = await new_case(client, staff)
    cid = case["id"]
    response = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "identified", "reason": "x"}, headers=staff
    )
    assert response.status_code == 409
    body = response.json()
    assert body["current"] == "admitted"
    assert "identified" not in body["allowed"]
    assert "candidate" in body["detail"]
    response = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "settled", "reason": "x"}, headers=staff
    )
    assert response.status_code == 409
    assert response.json()["allowed"][0] == "searching"
    response = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "searching", "reason": "x"}, headers=reviewer
    )
    assert response.status_code == 403
    response = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "nowhere", "reason": "x"}, headers=staff
    )
    assert response.status_code == 400
    assert [e["kind"] for e in await timeline(client, staff, cid)] == ["admitted"]


async def test_minor_leaves_only_into_custody_over_http(client, staff):
    case = await new_case(client, staff, estimated_age=13)
    cid = case["id"]
    assert case["custody_only"] is True
    response = await client.post(
        f"/api/cases/{cid}/transitions", json={"to": "left_self", "reason": "x"}, headers=staff
    )
    assert response.status_code == 409
    assert "left_self" not in response.json()["allowed"]
    # Family collection needs a handover with the collector's identity checked.
    response = await client.post(
        f"/api/cases/{cid}/transitions",
        json={"to": "handed_to_family", "reason": "父亲来接"},
        headers=staff,
    )
    assert response.status_code == 409
    unchecked = await client.post(
        f"/api/cases/{cid}/handover",
        files={"sheet": ("s.pdf", PDF, "application/pdf")},
        data=handover_form(id_document_checked="false"),
        headers=staff,
    )
    assert unchecked.status_code == 400
    response = await client.post(
        f"/api/cases/{cid}/handover",
        files={
            "sheet": ("s.pdf", PDF, "application/pdf"),
            "proof": ("派出所证明.pdf", PDF, "application/pdf"),
        },
        data=handover_form(relationship="father", relationship_basis="police_certificate"),
        headers=staff,
    )
    assert response.status_code == 201, response.text
    second = {"Authorization": f"Bearer {await make_token('station_staff')}"}
    approved = await client.post(
        f"/api/handovers/{response.json()['id']}/approve", json={}, headers=second
    )
    assert approved.status_code == 200, approved.text
    await move(client, staff, cid, "handed_to_family", reason="父亲来接")
    events = await timeline(client, staff, cid)
    handover = next(e for e in events if e["kind"] == "handover_recorded")
    assert handover["data"]["receiver_name"] == "李建国"
    assert handover["data"]["id_document_type"] == "居民身份证"


async def test_capacity_flag_set_later_blocks_leaving_self(client, staff):
    case = await new_case(client, staff, estimated_age=35)
    cid = case["id"]
    response = await client.patch(
        f"/api/cases/{cid}",
        json={"lacks_capacity": True, "reason": "精神科诊断"},
        headers=staff,
    )
    assert response.status_code == 200, response.text
    assert response.json()["custody_only"] is True
    assert "left_self" not in response.json()["allowed_next"]
    event = (await timeline(client, staff, cid))[-1]
    assert event["kind"] == "case_updated"
    assert event["data"]["lacks_capacity"] == {"from": False, "to": True}


async def backdate(case_id: int, days: float) -> None:
    """Test set-up: the case was admitted (and placed in the station) ``days`` ago."""
    from rescue.placements.tables import Placement

    when = datetime.now(UTC) - timedelta(days=days)
    await Case.update({Case.admitted_at: when}).where(Case.id == case_id)
    await Placement.update({Placement.started_at: when}).where(Placement.case == case_id)


async def test_alerts_list_filters_and_order(client, staff, admin):
    south_staff = {"Authorization": f"Bearer {await make_token('station_staff', station='south')}"}
    north_old = await new_case(client, staff, station="north")
    north_new = await new_case(client, staff, station="north")
    south = await new_case(client, south_staff, station="south")
    await backdate(north_old["id"], 12)
    await backdate(south["id"], 2)
    response = await client.get("/api/alerts?limit=200", headers=admin)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    dues = [i["due_at"] for i in items]
    assert dues == sorted(dues)
    assert items[0]["case_id"] == north_old["id"]
    assert items[0]["overdue"] is True
    overdue = (await client.get("/api/alerts?overdue=true&limit=200", headers=admin)).json()
    assert {i["case_id"] for i in overdue["items"]} == {north_old["id"], south["id"]}
    assert all(i["overdue"] for i in overdue["items"])
    # Station staff see only their own station's items, whatever they ask for.
    north = (await client.get("/api/alerts?limit=200", headers=staff)).json()
    assert {i["case_id"] for i in north["items"]} == {north_old["id"], north_new["id"]}
    asked = (await client.get("/api/alerts?station=south&limit=200", headers=staff)).json()
    assert asked["items"] == []
    stranded = (await client.get("/api/alerts?kind=stranded&overdue=true", headers=staff)).json()
    assert [i["case_id"] for i in stranded["items"]] == [north_old["id"]]
    assert stranded["items"][0]["source"]
    bad = await client.get("/api/alerts?kind=nonsense", headers=staff)
    assert bad.status_code == 400
    # The announcement clears only when recorded.
    response = await client.post(
        f"/api/cases/{south['id']}/announcements",
        json={"channel": "头条", "published_on": clock.today().isoformat(), "reference": "t.cn/x"},
        headers=south_staff,
    )
    assert response.status_code == 201
    after = (
        await client.get("/api/alerts?kind=announcement&station=south", headers=south_staff)
    ).json()
    assert after["items"] == []


async def test_staff_cannot_register_a_case_for_another_station(client, staff):
    response = await client.post(
        "/api/cases", json={"station": "south", "found_place": "G318"}, headers=staff
    )
    assert response.status_code == 403
    assert response.json()["accepted"] == ["north"]


async def test_deadlines_apply_cli_strands_overdue_cases(client, staff):
    old = await new_case(client, staff)
    await move(client, staff, old["id"], "searching")
    fresh = await new_case(client, staff)
    await backdate(old["id"], 10.5)
    await backdate(fresh["id"], 9)
    result = await anyio.run_process(
        [sys.executable, "-m", "rescue.cli", "deadlines", "apply"], cwd=ROOT
    )
    assert "moved 1 case(s)" in result.stdout.decode(), result.stderr
    assert (await client.get(f"/api/cases/{old['id']}", headers=staff)).json()[
        "status"
    ] == "stranded"
    assert (await client.get(f"/api/cases/{fresh['id']}", headers=staff)).json()[
        "status"
    ] == "admitted"
    event = (await timeline(client, staff, old["id"]))[-1]
    assert (event["from_status"], event["to_status"]) == ("searching", "stranded")
    assert (event["actor_id"], event["actor_role"]) == (None, "system")
    # Idempotent.
    again = await anyio.run_process(
        [sys.executable, "-m", "rescue.cli", "deadlines", "apply"], cwd=ROOT
    )
    assert "moved 0 case(s)" in again.stdout.decode()


async def test_deadlines_actor_on_the_real_worker(client, staff):
    from workers.actors import apply_deadlines
    from workers.broker import broker

    case = await new_case(client, staff)
    await backdate(case["id"], 11)
    apply_deadlines.send()
    broker.join("deadlines", timeout=60_000)
    assert (await client.get(f"/api/cases/{case['id']}", headers=staff)).json()[
        "status"
    ] == "stranded"


async def test_stored_document_removed_when_recording_fails():
    import pytest

    from rescue.documents import stored_document
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    store = get_store()
    keys: list[str] = []

    async def record_fails() -> None:
        async with stored_document(data=PDF, store=store, limits=get_settings().upload) as doc:
            keys.append(doc.object_key)
            assert await store.aexists(doc.object_key)
            raise RuntimeError("database down")

    with pytest.raises(RuntimeError, match="database down"):
        await record_fails()
    assert keys
    assert not await store.aexists(keys[0])


async def test_future_birth_date_refused(client, staff):
    future = (clock.today() + timedelta(days=30)).isoformat()
    response = await client.post("/api/cases", json={"birth_date_estimate": future}, headers=staff)
    assert response.status_code == 400
    case = await new_case(client, staff)
    response = await client.patch(
        f"/api/cases/{case['id']}", json={"birth_date_estimate": future}, headers=staff
    )
    assert response.status_code == 400
    response = await client.patch(f"/api/cases/{case['id']}", json={}, headers=staff)
    assert response.status_code == 400
