"""Transitions that need time or a precondition (issue 12 item 2): stranded only
after the normal term (10 days), settled only after the eligibility period
(3 months) or with a recorded approval and its document."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from rescue import clock
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
    future = await approval(client, staff, cid, clock.today() + timedelta(days=3))
    assert future.status_code == 400
    before = await approval(client, staff, cid, clock.today() - timedelta(days=30))
    assert before.status_code == 400  # before the admission
    no_document = await client.post(
        f"/api/cases/{cid}/settlement-approvals",
        data={"authority": "市民政局", "reference": "民批7号", "approved_on": "2026-01-01"},
        headers=staff,
    )
    assert no_document.status_code == 400
    assert (await go(client, staff, cid, "settled")).status_code == 409
    response = await approval(client, staff, cid, clock.today() - timedelta(days=1))
    assert response.status_code == 201, response.text
    assert response.json()["sha256"]
    assert (await go(client, staff, cid, "settled")).status_code == 200
    events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
    assert [e["kind"] for e in events][-2:] == ["settlement_approved", "status_changed"]


# Times in order (issue 12 item 3) --------------------------------------------


async def test_search_actions_dated_outside_the_stay_are_refused(client, staff):
    cid = (await new_case(client, staff))["id"]
    await admitted_days_ago(cid, 3)
    admitted = clock.today() - timedelta(days=3)
    for path, body in (
        ("announcements", {"channel": "全国救助寻亲网", "published_on": "2013-05-01"}),
        ("dna-requests", {"requested_on": "2013-05-01", "police_unit": "城北派出所"}),
        ("filings", {"kind": "care_decision", "on_date": "2013-05-01"}),
    ):
        response = await client.post(f"/api/cases/{cid}/{path}", json=body, headers=staff)
        assert response.status_code == 400, response.text
        assert "outside the case's stay" in response.json()["detail"]
    day_before = (admitted - timedelta(days=1)).isoformat()
    response = await client.post(
        f"/api/cases/{cid}/announcements",
        json={"channel": "全国救助寻亲网", "published_on": day_before},
        headers=staff,
    )
    assert response.status_code == 400
    response = await client.post(
        f"/api/cases/{cid}/dna-requests",
        json={"requested_on": admitted.isoformat(), "police_unit": "城北派出所"},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    dna = response.json()["id"]
    response = await client.post(
        f"/api/dna-requests/{dna}/result",
        json={"result_on": day_before, "result": "无比中"},
        headers=staff,
    )
    assert response.status_code == 400
    assert "before the request date" in response.json()["detail"]
    events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
    assert [e["kind"] for e in events] == ["admitted", "dna_request"]


async def test_no_action_dated_after_the_person_left(client, staff):
    start = clock.now()
    cid = (await new_case(client, staff))["id"]
    assert (await go(client, staff, cid, "deceased")).status_code == 200
    with clock.frozen(start + timedelta(days=5)):
        later = clock.today().isoformat()
        response = await client.post(
            f"/api/cases/{cid}/announcements",
            json={"channel": "全国救助寻亲网", "published_on": later},
            headers=staff,
        )
    assert response.status_code == 400, response.text


async def test_found_in_the_future_is_refused(client, staff):
    response = await client.post(
        "/api/cases",
        json={"found_at": (clock.now() + timedelta(hours=2)).isoformat(), "found_place": "G318"},
        headers=staff,
    )
    assert response.status_code == 400
    assert "found_at" in response.json()["detail"]


async def test_handover_and_return_plan_after_identification_and_plan(client, staff):
    from rescue.cases import flows
    from rescue.cases.tables import CaseStatus
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    t0 = clock.now()
    cid = (await new_case(client, staff))["id"]
    reviewer = Principal(user_id=None, username="r", role=Role.reviewer, station="north")
    with clock.frozen(t0 + timedelta(days=2)):
        # (Identification normally comes from confirming a candidate; the rules
        # under test only read when it happened.)
        await flows.transition(case_id=cid, to=CaseStatus.identified, by=reviewer, reason="t")
    with clock.frozen(t0 + timedelta(days=4)):
        plan = {
            "destination": "贵州省关岭县",
            "transport": "car",
            "escort_staff": ["王芳"],
            "planned_on": (clock.today() - timedelta(days=3)).isoformat(),
        }
        response = await client.post(f"/api/cases/{cid}/return-plan", json=plan, headers=staff)
        assert response.status_code == 400, response.text
        assert "identification" in response.json()["detail"]
        plan["planned_on"] = (clock.today() + timedelta(days=1)).isoformat()
        response = await client.post(f"/api/cases/{cid}/return-plan", json=plan, headers=staff)
        assert response.status_code == 201, response.text

        def sheet(at: str) -> dict[str, Any]:
            return {
                "receiving_party": "family",
                "receiver_name": "李某",
                "id_document_type": "居民身份证",
                "id_document_number": "110101199001011234",
                "id_document_checked": "true",
                "handed_over_at": at,
                "place": "关岭县救助站",
            }

        for at, words in (
            ("2013-10-01T10:00:00+08:00", "outside the case's stay"),
            ((t0 + timedelta(days=1)).isoformat(), "identification"),
            ((t0 + timedelta(days=3)).isoformat(), "return plan"),
        ):
            response = await client.post(
                f"/api/cases/{cid}/handover",
                files={"sheet": ("s.pdf", PDF, "application/pdf")},
                data=sheet(at),
                headers=staff,
            )
            assert response.status_code == 400, (at, response.text)
            assert words in response.json()["detail"]
    with clock.frozen(t0 + timedelta(days=5, hours=2)):
        response = await client.post(
            f"/api/cases/{cid}/handover",
            files={"sheet": ("s.pdf", PDF, "application/pdf")},
            data=sheet(clock.now().isoformat()),
            headers=staff,
        )
        assert response.status_code == 201, response.text
