"""Corrections (issue 12 item 9): a wrong entry is voided with a reason and the
right one entered; both appear on the timeline; a voided entry satisfies no
deadline; records stay append-only."""

from __future__ import annotations

from rescue import clock
from tests.integration.helpers import new_case


async def test_void_a_wrong_announcement_and_enter_the_right_one(client, staff, police):
    cid = (await new_case(client, staff))["id"]
    today = clock.today().isoformat()
    wrong = await client.post(
        f"/api/cases/{cid}/announcements",
        json={"channel": "newspaper", "published_on": today, "reference": "wrong case"},
        headers=staff,
    )
    assert wrong.status_code == 201
    wrong_id = wrong.json()["id"]
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    assert "announcement" not in {a["kind"] for a in alerts}
    # DELETE and PATCH stay refused: records are append-only.
    assert (await client.delete(f"/api/search-actions/{wrong_id}", headers=staff)).status_code in (
        404,
        405,
    )
    response = await client.post(f"/api/search-actions/{wrong_id}/void", json={}, headers=staff)
    assert response.status_code == 400  # a reason is required
    response = await client.post(
        f"/api/search-actions/{wrong_id}/void", json={"reason": "x"}, headers=police
    )
    assert response.status_code == 403
    response = await client.post(
        f"/api/search-actions/{wrong_id}/void",
        json={"reason": "录入到了错误的案件", "replaced_by": wrong_id},
        headers=staff,
    )
    assert response.status_code == 400
    response = await client.post(
        f"/api/search-actions/{wrong_id}/void", json={"reason": "录入到了错误的案件"}, headers=staff
    )
    assert response.status_code == 200, response.text
    assert response.json()["voided_at"] is not None
    again = await client.post(
        f"/api/search-actions/{wrong_id}/void", json={"reason": "again"}, headers=staff
    )
    assert again.status_code == 409
    # The voided entry satisfies nothing: the 24-hour announcement item is back.
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    assert "announcement" in {a["kind"] for a in alerts}
    right = await client.post(
        f"/api/cases/{cid}/announcements",
        json={"channel": "全国救助寻亲网", "published_on": today, "reference": "XQ-1"},
        headers=staff,
    )
    assert right.status_code == 201
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    assert "announcement" not in {a["kind"] for a in alerts}
    listed = (await client.get(f"/api/cases/{cid}/search-actions", headers=staff)).json()
    assert [(a["id"], a["voided_at"] is not None) for a in listed] == [
        (wrong_id, True),
        (right.json()["id"], False),
    ]
    kinds = [
        e["kind"] for e in (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
    ]
    assert kinds == ["admitted", "announcement", "entry_voided", "announcement"]


async def test_a_voided_dna_request_takes_no_result_and_no_deadline(client, staff):
    cid = (await new_case(client, staff))["id"]
    request = await client.post(
        f"/api/cases/{cid}/dna-requests",
        json={"requested_on": clock.today().isoformat(), "police_unit": "城北派出所"},
        headers=staff,
    )
    dna = request.json()["id"]
    right = await client.post(
        f"/api/cases/{cid}/dna-requests",
        json={"requested_on": clock.today().isoformat(), "police_unit": "城南派出所"},
        headers=staff,
    )
    response = await client.post(
        f"/api/search-actions/{dna}/void",
        json={"reason": "派出所写错", "replaced_by": right.json()["id"]},
        headers=staff,
    )
    assert response.status_code == 200, response.text
    assert response.json()["replaced_by"] == right.json()["id"]
    result = await client.post(
        f"/api/dna-requests/{dna}/result",
        json={"result_on": clock.today().isoformat(), "result": "x"},
        headers=staff,
    )
    assert result.status_code == 409
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    results = [a for a in alerts if a["kind"] == "dna_result"]
    assert [a["subject_id"] for a in results] == [right.json()["id"]]
