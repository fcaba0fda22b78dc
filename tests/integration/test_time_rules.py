"""Transitions that need time or a precondition (issue 12 item 2): stranded only
after the normal term (10 days), settled only after the eligibility period
(3 months) or with a recorded approval and its document."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.integration.helpers import admitted_days_ago, new_case

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def go(client: Any, headers: dict[str, str], case_id: int, to: str) -> Any:
    return await client.post(
        f"/api/cases/{case_id}/transitions", json={"to": to, "reason": to}, headers=headers
    )


async def approval(client: Any, headers: dict[str, str], case_id: int, on: date) -> Any:
    return await client.post(
        f"/api/cases/{case_id}/settlement-approvals",
        files={"document": ("批复.pdf", PDF, "application/pdf")},
        data={"authority": "市民政局", "reference": "民批7号", "approved_on": on.isoformat()},
        headers=headers,
    )


async def to_welfare_home(client: Any, headers: dict[str, str], case_id: int) -> None:
    for to in ("stranded", "settlement_pending"):
        assert (await go(client, headers, case_id, to)).status_code == 200
    response = await client.post(
        f"/api/cases/{case_id}/placements",
        json={"kind": "welfare_home", "facility": "市社会福利院"},
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def test_stranded_only_after_the_normal_term(client, staff):
    cid = (await new_case(client, staff))["id"]
    response = await go(client, staff, cid, "stranded")
    assert response.status_code == 409
    assert response.json()["current"] == "admitted"
    await admitted_days_ago(cid, 9.9)
    assert (await go(client, staff, cid, "stranded")).status_code == 409
    await admitted_days_ago(cid, 10.01)
    assert (await go(client, staff, cid, "stranded")).status_code == 200


async def test_settled_only_after_the_eligibility_period(client, staff):
    cid = (await new_case(client, staff))["id"]
    await admitted_days_ago(cid, 80)
    await to_welfare_home(client, staff, cid)
    response = await go(client, staff, cid, "settled")
    assert response.status_code == 409
    assert "3 months" in response.json()["detail"]
    await admitted_days_ago(cid, 95)
    # (admitted_days_ago moved every placement's start; the welfare home too)
    assert (await go(client, staff, cid, "settled")).status_code == 200


async def test_settled_early_with_a_recorded_approval(client, staff):
    cid = (await new_case(client, staff))["id"]
    await admitted_days_ago(cid, 12)
    await to_welfare_home(client, staff, cid)
    future = await approval(client, staff, cid, date.today() + timedelta(days=3))
    assert future.status_code == 400
    before = await approval(client, staff, cid, date.today() - timedelta(days=30))
    assert before.status_code == 400  # before the admission
    no_document = await client.post(
        f"/api/cases/{cid}/settlement-approvals",
        data={"authority": "市民政局", "reference": "民批7号", "approved_on": "2026-01-01"},
        headers=staff,
    )
    assert no_document.status_code == 400
    assert (await go(client, staff, cid, "settled")).status_code == 409
    response = await approval(client, staff, cid, date.today() - timedelta(days=1))
    assert response.status_code == 201, response.text
    assert response.json()["sha256"]
    assert (await go(client, staff, cid, "settled")).status_code == 200
    events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
    assert [e["kind"] for e in events][-2:] == ["settlement_approved", "status_changed"]
