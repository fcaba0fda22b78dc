"""The identity found (issue 12 item 7): confirmed name, 身份证号, 户籍地 and
relatives' contact on the case, from the confirmed notice and edited by staff,
every change on the timeline; the ID number only for roles that need it; every
read audited; shown on the return plan, the handover and the police task."""

from __future__ import annotations

from typing import Any

from rescue import clock
from rescue.audit.tables import AuditRecord
from tests.integration.helpers import (
    admitted_days_ago,
    decide,
    family_confirmation,
    new_case,
    new_notice,
    submit_candidate,
)

ID = "52042419800101123X"


async def identified_case(client: Any, staff, police, reviewer) -> tuple[int, dict]:
    case = await new_case(client, staff)
    notice = await new_notice(
        client, police, name="王某", source="family", reporter_contact="王大 13800000000"
    )
    lead = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.94, "system": "公安人像比对系统", "report_number": "RX-7"},
        case_id=case["id"],
        notice_id=notice["id"],
    )
    cid = lead["candidate"]["id"]
    await family_confirmation(client, reviewer, cid)
    assert (await decide(client, reviewer, cid, "confirm")).status_code == 200
    return case["id"], notice


async def test_identity_from_the_notice_edited_and_on_the_timeline(client, staff, police, reviewer):
    case_id, notice = await identified_case(client, staff, police, reviewer)
    identity = (await client.get(f"/api/cases/{case_id}/identity", headers=staff)).json()
    assert identity["confirmed_name"] == "王某"
    assert identity["relatives_contact"] == "王大 13800000000"
    assert identity["notice_id"] == notice["id"]
    detail = (await client.get(f"/api/cases/{case_id}", headers=staff)).json()
    assert detail["display_name"] == "王某"
    assert detail["placeholder_name"].startswith("无名氏")

    bad = await client.patch(
        f"/api/cases/{case_id}/identity",
        json={"reason": "x", "id_number": "12345"},
        headers=staff,
    )
    assert bad.status_code == 400
    response = await client.patch(
        f"/api/cases/{case_id}/identity",
        json={"reason": "户籍核实", "id_number": ID, "household_registration": "贵州省关岭县"},
        headers=staff,
    )
    assert response.status_code == 200, response.text
    assert response.json()["id_number"] == ID
    events = (await client.get(f"/api/cases/{case_id}/timeline", headers=staff)).json()
    updates = [e for e in events if e["kind"] == "identity_updated"]
    assert len(updates) == 2  # from the notice, then the staff's change
    assert updates[-1]["data"]["id_number"]["to"] == "5204**********123X"
    assert ID not in str(events)  # the timeline never shows the full number
    assert updates[-1]["data"]["household_registration"]["to"] == "贵州省关岭县"

    # Reviewers see it masked; staff and the police liaison see it whole.
    seen = (await client.get(f"/api/cases/{case_id}/identity", headers=reviewer)).json()
    assert seen["id_number"] == "5204**********123X"
    assert seen["id_number_masked"] is True
    seen = (await client.get(f"/api/cases/{case_id}/identity", headers=police)).json()
    assert seen["id_number"] == ID
    assert ID not in (await client.get(f"/api/cases/{case_id}", headers=reviewer)).text
    reads = await AuditRecord.select().where(
        (AuditRecord.route == "/api/cases/{case_id}/identity") & (AuditRecord.method == "GET")
    )
    assert len(reads) == 3  # staff, reviewer, police: each read recorded
    assert all(r["kind"] == "read" for r in reads)
    # Only staff and admin change it.
    response = await client.patch(
        f"/api/cases/{case_id}/identity",
        json={"reason": "x", "confirmed_name": "李"},
        headers=police,
    )
    assert response.status_code == 403


async def test_identity_on_return_plan_handover_and_task(client, staff, police, reviewer):
    case_id, _ = await identified_case(client, staff, police, reviewer)
    await admitted_days_ago(case_id, 1)
    response = await client.patch(
        f"/api/cases/{case_id}/identity",
        json={"reason": "核实", "id_number": ID, "household_registration": "贵州省关岭县"},
        headers=staff,
    )
    assert response.status_code == 200
    plan = await client.post(
        f"/api/cases/{case_id}/return-plan",
        json={
            "destination": "贵州省关岭县救助管理站",
            "transport": "car",
            "escort_staff": ["王芳"],
            "planned_on": clock.today().isoformat(),
        },
        headers=staff,
    )
    assert plan.status_code == 201, plan.text
    assert plan.json()["person"]["confirmed_name"] == "王某"
    assert plan.json()["person"]["id_number"] == ID
    handover = await client.post(
        f"/api/cases/{case_id}/handover",
        files={"sheet": ("s.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        data={
            "receiving_party": "origin_station",
            "receiver_name": "关岭县救助站 张某",
            "id_document_type": "工作证",
            "id_document_number": "GL-001",
            "id_document_checked": "true",
            "handed_over_at": clock.now().isoformat(),
            "place": "关岭县救助管理站",
        },
        headers=staff,
    )
    assert handover.status_code == 201, handover.text
    detail = await client.get(f"/api/handovers/{handover.json()['id']}", headers=police)
    assert detail.json()["person"]["household_registration"] == "贵州省关岭县"
    assert await AuditRecord.exists().where(
        (AuditRecord.route == "/api/handovers/{handover_id}") & (AuditRecord.kind == "read")
    )
