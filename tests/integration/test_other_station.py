"""The other station (issue 12 item 8) through the HTTP API: the station whose
notice matched and the destination station take part in another station's case
(they see only what concerns them), the destination records the reception and
countersigns, the case closes only after that; 转送 carries the record over."""

from __future__ import annotations

from typing import Any

from rescue import clock
from tests.conftest import make_token
from tests.integration.helpers import (
    decide,
    family_confirmation,
    new_case,
    new_notice,
    submit_candidate,
)
from tests.support import no_face_jpeg

S = "station_staff"


async def _headers(role: str, station: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(role, station=station)}"}


async def _stations() -> dict[str, dict[str, str]]:
    """Staff of 西城 (the case's station A), 关岭 (B: notice, destination) and 东山 (C)."""
    return {
        "a": await _headers(S, "西城"),
        "b": await _headers(S, "关岭"),
        "c": await _headers(S, "东山"),
        "police": await _headers("police_liaison", "西城"),
        "reviewer": await _headers("reviewer", "西城"),
    }


async def _matched(client: Any, h: dict[str, dict[str, str]]) -> tuple[int, int, int]:
    """A case at A; a notice registered by B; a police face comparison candidate.
    Returns (case id, notice id, candidate id)."""
    case = await new_case(client, h["a"], found_place="G318 道路")
    notice = await new_notice(
        client, h["b"], name="张某", source="station", last_seen_place="关岭县"
    )
    assert notice["station"] == "关岭"
    lead = await submit_candidate(
        client,
        h["police"],
        kind="police_face",
        values={"score": 0.95, "system": "公安人像比对系统", "report_number": "RX-1"},
        case_id=case["id"],
        notice_id=notice["id"],
    )
    return case["id"], notice["id"], lead["candidate"]["id"]


async def _identified_with_plan(
    client: Any, h: dict[str, dict[str, str]], destination_station: str | None = "关岭"
) -> tuple[int, int]:
    """The case identified by confirming the candidate, with a return plan to B.
    Returns (case id, candidate id)."""
    case_id, _notice_id, candidate_id = await _matched(client, h)
    for method in ("video_call", "visit"):
        await family_confirmation(client, h["reviewer"], candidate_id, method=method)
    confirmed = await decide(client, h["reviewer"], candidate_id, "confirm", "比对, 家属确认")
    assert confirmed.status_code == 200, confirmed.text
    identity = await client.patch(
        f"/api/cases/{case_id}/identity",
        json={"id_number": "52042419700101123X", "reason": "户籍核实"},
        headers=h["a"],
    )
    assert identity.status_code == 200, identity.text
    plan: dict[str, Any] = {
        "destination": "贵州省安顺市关岭县救助管理站",
        "transport": "站车",
        "escort_staff": ["王芳"],
        "planned_on": clock.today().isoformat(),
    }
    if destination_station is not None:
        plan["destination_station"] = destination_station
    response = await client.post(f"/api/cases/{case_id}/return-plan", json=plan, headers=h["a"])
    assert response.status_code == 201, response.text
    assert response.json()["destination_station"] == destination_station
    return case_id, candidate_id


async def _handover(client: Any, headers: dict[str, str], case_id: int) -> dict[str, Any]:
    response = await client.post(
        f"/api/cases/{case_id}/handover",
        files={"sheet": ("交接单.jpg", no_face_jpeg(), "application/octet-stream")},
        data={
            "receiving_party": "origin_station",
            "receiver_name": "关岭县救助管理站 李站长",
            "id_document_type": "工作证",
            "id_document_number": "GL-007",
            "id_document_checked": "true",
            "handed_over_at": clock.now().isoformat(),
            "place": "关岭县救助管理站",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _status(client: Any, headers: dict[str, str], path: str) -> int:
    return int((await client.get(path, headers=headers)).status_code)


async def test_notice_station_sees_its_candidate_and_the_summary_only(client):
    h = await _stations()
    case_id, notice_id, candidate_id = await _matched(client, h)

    # B (its notice) reads the candidate, the comparison and the case summary.
    detail = await client.get(f"/api/candidates/{candidate_id}", headers=h["b"])
    assert detail.status_code == 200, detail.text
    assert await _status(client, h["b"], f"/api/candidates/{candidate_id}/compare") == 200
    summary = await client.get(f"/api/cases/{case_id}/shared", headers=h["b"])
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["participation"] == ["notice_station"]
    assert body["station"] == "西城"
    assert body["found_place"] == "G318 道路"
    assert "description" not in body
    assert "belongings" not in body
    assert "id_number" not in body

    # Everything else of A's case stays 403 for B; C sees nothing at all.
    for path in (
        f"/api/cases/{case_id}",
        f"/api/cases/{case_id}/timeline",
        f"/api/cases/{case_id}/candidates",
        f"/api/cases/{case_id}/identity",
        f"/api/cases/{case_id}/placements",
        f"/api/cases/{case_id}/handovers",
        f"/api/cases/{case_id}/return-plan",
    ):
        assert await _status(client, h["b"], path) == 403, path
    for path in (
        f"/api/candidates/{candidate_id}",
        f"/api/candidates/{candidate_id}/compare",
        f"/api/cases/{case_id}/shared",
    ):
        assert await _status(client, h["c"], path) == 403, path
    # The notice's candidate list shows it to B (its notice), not to C.
    listed = (await client.get(f"/api/notices/{notice_id}/candidates", headers=h["b"])).json()
    assert [c["id"] for c in listed["items"]] == [candidate_id]
    listed = (await client.get(f"/api/notices/{notice_id}/candidates", headers=h["c"])).json()
    assert listed["items"] == []
    # B's 工作台 list: our notices with candidates at other stations.
    listed = (await client.get("/api/stations/notices-elsewhere", headers=h["b"])).json()
    assert [(x["candidate_id"], x["notice_id"], x["case_station"]) for x in listed] == [
        (candidate_id, notice_id, "西城")
    ]
    assert (await client.get("/api/stations/notices-elsewhere", headers=h["a"])).json() == []

    # B's reads are on the case's audit trail, under B's account.
    trail = (await client.get(f"/api/cases/{case_id}/audit", headers=h["a"])).json()
    items = trail["items"] if isinstance(trail, dict) else trail
    reads = {(r["route"], r["status_code"]) for r in items if r["kind"] == "read"}
    # Only B read these with success (C was refused, A never asked).
    assert ("/api/cases/{case_id}/shared", 200) in reads
    assert ("/api/candidates/{candidate_id}", 200) in reads
    assert ("/api/candidates/{candidate_id}/compare", 403) in reads  # C's refusal

    # A rejected candidate no longer lets B in.
    rejected = await decide(client, h["reviewer"], candidate_id, "reject", "不是本人")
    assert rejected.status_code == 200, rejected.text
    assert await _status(client, h["b"], f"/api/cases/{case_id}/shared") == 403


async def test_destination_station_receives_countersigns_then_the_case_closes(client):
    h = await _stations()
    # The destination station must be another station using this service.
    case_id, _candidate = await _identified_with_plan(client, h)
    plan = await client.get(f"/api/cases/{case_id}/return-plan", headers=h["b"])
    assert plan.status_code == 200, plan.text
    assert plan.json()["destination_station"] == "关岭"
    assert plan.json()["person"]["id_number"] == "52042419700101123X"  # staff read it
    identity = await client.get(f"/api/cases/{case_id}/identity", headers=h["b"])
    assert identity.status_code == 200, identity.text
    summary = (await client.get(f"/api/cases/{case_id}/shared", headers=h["b"])).json()
    assert set(summary["participation"]) == {"notice_station", "destination_station"}
    for path in (
        f"/api/cases/{case_id}",
        f"/api/cases/{case_id}/timeline",
        f"/api/cases/{case_id}/placements",
        f"/api/cases/{case_id}/search-actions",
        f"/api/cases/{case_id}/audit",
    ):
        assert await _status(client, h["b"], path) == 403, path
    assert await _status(client, h["c"], f"/api/cases/{case_id}/return-plan") == 403
    trail = (await client.get(f"/api/cases/{case_id}/audit", headers=h["a"])).json()
    items = trail["items"] if isinstance(trail, dict) else trail
    reads = {(r["route"], r["status_code"]) for r in items if r["kind"] == "read"}
    assert ("/api/cases/{case_id}/return-plan", 200) in reads  # B's reads, audited
    assert ("/api/cases/{case_id}/identity", 200) in reads
    incoming = (await client.get("/api/stations/incoming", headers=h["b"])).json()
    assert [(x["case_id"], x["from_station"], x["countersigned"]) for x in incoming] == [
        (case_id, "西城", False)
    ]
    assert (await client.get("/api/stations/incoming", headers=h["c"])).json() == []

    handover = await _handover(client, h["a"], case_id)
    hid = handover["id"]
    seen = await client.get(f"/api/handovers/{hid}", headers=h["b"])
    assert seen.status_code == 200, seen.text
    assert seen.json()["destination_station"] == "关岭"
    assert await _status(client, h["b"], f"/api/cases/{case_id}/handovers") == 200
    assert await _status(client, h["c"], f"/api/handovers/{hid}") == 403

    # Closing waits for the countersignature.
    refused = await client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": "escorted_home", "reason": "送达"},
        headers=h["a"],
    )
    assert refused.status_code == 409, refused.text
    assert "countersign" in refused.json()["requires"]

    # A cannot receive or countersign for B; B countersigns only after the reception.
    reception = {"received_at": clock.now().isoformat(), "received_by_name": "李站长"}
    assert (
        await client.post(f"/api/handovers/{hid}/reception", json=reception, headers=h["a"])
    ).status_code == 403
    assert (
        await client.post(f"/api/handovers/{hid}/countersign", json={}, headers=h["b"])
    ).status_code == 409
    received = await client.post(
        f"/api/handovers/{hid}/reception",
        json={**reception, "notes": "身体状况良好"},
        headers=h["b"],
    )
    assert received.status_code == 200, received.text
    assert received.json()["received_by_name"] == "李站长"
    assert (
        await client.post(f"/api/handovers/{hid}/reception", json=reception, headers=h["b"])
    ).status_code == 409
    assert (
        await client.post(f"/api/handovers/{hid}/countersign", json={}, headers=h["a"])
    ).status_code == 403
    assert (
        await client.post(f"/api/handovers/{hid}/countersign", json={}, headers=h["c"])
    ).status_code == 403
    signed = await client.post(
        f"/api/handovers/{hid}/countersign", json={"note": "已接收"}, headers=h["b"]
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["countersigned_at"] is not None
    assert signed.json()["countersigned_by"] is not None

    closed = await client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": "escorted_home", "reason": "送达关岭, 已会签"},
        headers=h["a"],
    )
    assert closed.status_code == 200, closed.text
    events = (await client.get(f"/api/cases/{case_id}/timeline", headers=h["a"])).json()
    kinds = [e["kind"] for e in events]
    assert kinds.index("handover_received") < kinds.index("handover_countersigned")
    assert (await client.get("/api/stations/incoming", headers=h["b"])).json() == []


async def test_destination_station_must_use_this_service(client):
    h = await _stations()
    with_unknown = await client.post(
        "/api/cases/1/return-plan",
        json={
            "destination": "x",
            "transport": "y",
            "escort_staff": ["z"],
            "planned_on": clock.today().isoformat(),
            "destination_station": "不存在站",
        },
        headers=h["a"],
    )
    assert with_unknown.status_code in (400, 404)
    case_id, _n, _c = await _matched(client, h)
    response = await client.post(
        f"/api/cases/{case_id}/return-plan",
        json={
            "destination": "x",
            "transport": "y",
            "escort_staff": ["z"],
            "planned_on": clock.today().isoformat(),
            "destination_station": "不存在站",
        },
        headers=h["a"],
    )
    assert response.status_code == 400, response.text
    assert set(response.json()["accepted"]) == {"关岭", "东山"}


async def test_without_a_destination_station_the_existing_rule_stays(client):
    h = await _stations()
    case_id, _candidate = await _identified_with_plan(client, h, destination_station=None)
    assert await _status(client, h["b"], f"/api/cases/{case_id}/return-plan") == 403
    await _handover(client, h["a"], case_id)
    closed = await client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": "escorted_home", "reason": "送达"},
        headers=h["a"],
    )
    assert closed.status_code == 200, closed.text


async def test_transfer_carries_the_record_with_its_history(client):
    h = await _stations()
    case = await new_case(client, h["a"], found_place="火车站")
    cid = case["id"]
    placed = await client.post(
        f"/api/cases/{cid}/placements",
        json={"kind": "psychiatric_hospital", "facility": "市第三人民医院"},
        headers=h["a"],
    )
    assert placed.status_code == 201, placed.text
    before = (await client.get(f"/api/cases/{cid}/timeline", headers=h["a"])).json()
    assert await _status(client, h["b"], f"/api/cases/{cid}") == 403

    today = clock.today().isoformat()
    bad = await client.post(
        f"/api/cases/{cid}/transfers",
        json={"to_station": "不存在站", "reason": "就近安置", "transferred_on": today},
        headers=h["a"],
    )
    assert bad.status_code == 400
    assert "关岭" in bad.json()["accepted"]
    future = await client.post(
        f"/api/cases/{cid}/transfers",
        json={"to_station": "关岭", "reason": "就近安置", "transferred_on": "2999-01-01"},
        headers=h["a"],
    )
    assert future.status_code == 400
    assert (
        await client.post(
            f"/api/cases/{cid}/transfers",
            json={"to_station": "关岭", "reason": "x", "transferred_on": today},
            headers=h["b"],
        )
    ).status_code == 403  # not B's case (yet)
    done = await client.post(
        f"/api/cases/{cid}/transfers",
        json={"to_station": "关岭", "reason": "户籍地在关岭, 就近救助", "transferred_on": today},
        headers=h["a"],
    )
    assert done.status_code == 201, done.text
    assert done.json()["from_station"] == "西城"

    # B has the whole record with its history; A no longer sees it.
    got = await client.get(f"/api/cases/{cid}", headers=h["b"])
    assert got.status_code == 200
    assert got.json()["station"] == "关岭"
    after = (await client.get(f"/api/cases/{cid}/timeline", headers=h["b"])).json()
    assert [e["id"] for e in after[: len(before)]] == [e["id"] for e in before]
    assert after[-1]["kind"] == "transferred"
    assert after[-1]["data"]["from_station"] == "西城"
    placements = (await client.get(f"/api/cases/{cid}/placements", headers=h["b"])).json()
    assert placements["current"]["facility"] == "市第三人民医院"
    transfers = (await client.get(f"/api/cases/{cid}/transfers", headers=h["b"])).json()
    assert [(t["from_station"], t["to_station"]) for t in transfers] == [("西城", "关岭")]
    assert await _status(client, h["a"], f"/api/cases/{cid}") == 403
    again = await client.post(
        f"/api/cases/{cid}/transfers",
        json={"to_station": "关岭", "reason": "x", "transferred_on": today},
        headers=h["b"],
    )
    assert again.status_code == 409
