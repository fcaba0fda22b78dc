"""Custody on leaving (issue 12 item 1): a person who may leave only into custody
(possibly under CUSTODY_AGE, default 18, or lacking capacity) is handed to family
only with the relationship established and a second staff member's approval;
otherwise only to the police, the origin's station or a minors' institution."""

from __future__ import annotations

from typing import Any

from rescue import clock
from rescue.cases import flows
from rescue.settings import CustodySettings
from tests.conftest import make_token
from tests.integration.helpers import (
    decide,
    family_confirmation,
    new_case,
    new_notice,
    submit_candidate,
)

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def form(**overrides: str) -> dict[str, str]:
    return {
        "receiving_party": "family",
        "receiver_name": "张某",
        "relationship": "father",
        "id_document_type": "居民身份证",
        "id_document_number": "510802197001011234",
        "id_document_checked": "true",
        "handed_over_at": clock.now().isoformat(),
        "place": "站内",
        **overrides,
    }


async def handover(
    client: Any, headers: dict[str, str], case_id: int, proof: bool = False, **fields: str
) -> Any:
    files = {"sheet": ("s.pdf", PDF, "application/pdf")}
    if proof:
        files["proof"] = ("户口簿.pdf", PDF, "application/pdf")
    return await client.post(
        f"/api/cases/{case_id}/handover", files=files, data=form(**fields), headers=headers
    )


async def transition(client: Any, headers: dict[str, str], case_id: int, to: str) -> Any:
    return await client.post(
        f"/api/cases/{case_id}/transitions", json={"to": to, "reason": to}, headers=headers
    )


async def test_seventeen_year_old_leaves_only_into_custody(client, staff):
    case = await new_case(client, staff, estimated_age=17)
    assert case["custody_only"] is True
    assert "left_self" not in case["allowed_next"]
    response = await client.post(
        f"/api/cases/{case['id']}/transitions",
        json={"to": "left_self", "reason": "x", "data": {"ticket": "K1 to 成都"}},
        headers=staff,
    )
    assert response.status_code == 409
    adult = await new_case(client, staff, estimated_age=18)
    assert adult["custody_only"] is False


async def test_minor_handed_to_a_claimed_father_only_with_proof_and_second_approval(client, staff):
    cid = (await new_case(client, staff, estimated_age=14))["id"]
    # A man who says he is the father, with an ID number and a signed sheet: refused.
    response = await handover(client, staff, cid)
    assert response.status_code == 409, response.text
    assert "relationship" in response.json()["detail"]
    # A basis that needs a document, without the document: 400.
    response = await handover(client, staff, cid, relationship_basis="household_register")
    assert response.status_code == 400, response.text
    # A confirmed candidate is claimed, but there is none.
    response = await handover(client, staff, cid, relationship_basis="confirmed_candidate")
    assert response.status_code == 409, response.text
    # With the 户口簿 attached, the handover is recorded, but not yet approved.
    response = await handover(
        client, staff, cid, proof=True, relationship_basis="household_register"
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["relationship_basis"] == "household_register"
    assert record["proof_sha256"]
    assert record["approved_by"] is None
    refused = await transition(client, staff, cid, "handed_to_family")
    assert refused.status_code == 409
    assert "approval" in refused.json()["detail"]
    # The one who recorded it cannot approve it.
    response = await client.post(f"/api/handovers/{record['id']}/approve", json={}, headers=staff)
    assert response.status_code == 409
    second = {"Authorization": f"Bearer {await make_token('station_staff')}"}
    response = await client.post(
        f"/api/handovers/{record['id']}/approve", json={"note": "核对户口簿"}, headers=second
    )
    assert response.status_code == 200, response.text
    assert response.json()["approved_by"] is not None
    again = await client.post(f"/api/handovers/{record['id']}/approve", json={}, headers=second)
    assert again.status_code == 409
    detail = (await client.get(f"/api/handovers/{record['id']}", headers=staff)).json()
    assert detail["proof_url"]
    response = await transition(client, staff, cid, "handed_to_family")
    assert response.status_code == 200, response.text
    events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
    kinds = [e["kind"] for e in events]
    assert kinds.index("handover_recorded") < kinds.index("handover_approved")


async def test_minor_with_a_confirmed_candidate_goes_to_family_after_approval(
    client, staff, police, reviewer
):
    cid = (await new_case(client, staff, estimated_age=12))["id"]
    notice = await new_notice(client, police, name="王小明", source="police")
    lead = await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.95, "system": "公安人像比对系统", "report_number": "RX-1"},
        case_id=cid,
        notice_id=notice["id"],
    )
    candidate_id = lead["candidate"]["id"]
    await family_confirmation(client, reviewer, candidate_id, relationship="father")
    assert (await decide(client, reviewer, candidate_id, "confirm")).status_code == 200
    response = await handover(client, staff, cid, relationship_basis="confirmed_candidate")
    assert response.status_code == 201, response.text
    assert (await transition(client, staff, cid, "handed_to_family")).status_code == 409
    second = {"Authorization": f"Bearer {await make_token('admin')}"}
    response = await client.post(
        f"/api/handovers/{response.json()['id']}/approve", json={}, headers=second
    )
    assert response.status_code == 200, response.text
    assert (await transition(client, staff, cid, "handed_to_family")).status_code == 200


async def test_minor_handed_to_police_escort_needs_no_family_proof(client, staff):
    from rescue.cases.tables import Case

    cid = (await new_case(client, staff, estimated_age=15))["id"]
    # Test set-up: identified with a return plan (the escort-home path is tested
    # end to end in test_workflow).
    await Case.update({Case.status: "return_planned"}).where(Case.id == cid)
    response = await handover(
        client, staff, cid, receiving_party="police", receiver_name="城北派出所 民警李"
    )
    assert response.status_code == 201, response.text
    assert (await transition(client, staff, cid, "handed_to_family")).status_code == 409
    response = await transition(client, staff, cid, "escorted_home")
    assert response.status_code == 200, response.text


async def test_adult_lacking_capacity_handed_to_family_needs_the_same(client, staff):
    cid = (await new_case(client, staff, estimated_age=40, lacks_capacity=True))["id"]
    assert (await handover(client, staff, cid)).status_code == 409
    # transferred_minor is for minors only, not for an adult lacking capacity.
    assert (await transition(client, staff, cid, "transferred_minor")).status_code == 409


async def test_transferred_minor_only_for_a_minor(client, staff):
    adult = (await new_case(client, staff, estimated_age=30))["id"]
    response = await transition(client, staff, adult, "transferred_minor")
    assert response.status_code == 409
    assert "minor" in response.json()["detail"]
    minor = (await new_case(client, staff, estimated_age=15))["id"]
    assert (await transition(client, staff, minor, "transferred_minor")).status_code == 200


async def test_adult_handed_to_family_without_proof_or_approval(client, staff):
    cid = (await new_case(client, staff, estimated_age=45))["id"]
    assert (await handover(client, staff, cid)).status_code == 201
    assert (await transition(client, staff, cid, "handed_to_family")).status_code == 200


def test_custody_age_is_per_jurisdiction(monkeypatch):
    settings = CustodySettings(age=18, age_by_station={"north": 16})
    monkeypatch.setattr(flows, "get_settings", lambda: type("S", (), {"custody": settings})())
    assert flows.custody_only({"station": "north", "estimated_age": 17}) is False
    assert flows.custody_only({"station": "south", "estimated_age": 17}) is True
    assert flows.custody_only({"station": "north", "estimated_age": 15}) is True
    assert flows.custody_only({"station": "north", "lacks_capacity": True}) is True
