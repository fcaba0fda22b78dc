"""Audit gaps (issue 12 item 13): writes on routes without a case in the path are
linked to their case; reads of handovers and placement documents are audited."""

from __future__ import annotations

from rescue import clock
from rescue.audit.tables import AuditRecord
from tests.integration.helpers import new_case, new_notice, submit_candidate

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def test_writes_without_a_case_in_the_path_are_linked_to_it(client, staff, police):
    cid = (await new_case(client, staff))["id"]
    request = await client.post(
        f"/api/cases/{cid}/dna-requests",
        json={"requested_on": clock.today().isoformat(), "police_unit": "城北派出所"},
        headers=staff,
    )
    dna = request.json()["id"]
    result = await client.post(
        f"/api/dna-requests/{dna}/result",
        json={"result_on": clock.today().isoformat(), "result": "无比中"},
        headers=police,
    )
    assert result.status_code == 200, result.text
    row = (
        await AuditRecord.select()
        .where(AuditRecord.route == "/api/dna-requests/{action_id}/result")
        .first()
    )
    assert row["case_id"] == cid
    notice = await new_notice(client, police, source="police")
    await submit_candidate(
        client,
        police,
        kind="police_face",
        values={"score": 0.9, "system": "公安人像比对系统", "report_number": "RX-9"},
        case_id=cid,
        notice_id=notice["id"],
    )
    row = (
        await AuditRecord.select()
        .where((AuditRecord.route == "/api/candidates") & (AuditRecord.method == "POST"))
        .first()
    )
    assert row["case_id"] == cid


async def test_reads_of_placement_documents_are_audited_with_their_case(client, staff):
    cid = (await new_case(client, staff))["id"]
    placements = (await client.get(f"/api/cases/{cid}/placements", headers=staff)).json()
    placement_id = placements["items"][0]["id"]
    doc = await client.post(
        f"/api/placements/{placement_id}/documents",
        files={"file": ("出院证明.pdf", PDF, "application/pdf")},
        data={"title": "出院证明"},
        headers=staff,
    )
    assert doc.status_code == 201, doc.text
    response = await client.get(f"/api/placement-documents/{doc.json()['id']}", headers=staff)
    assert response.status_code == 200
    row = (
        await AuditRecord.select()
        .where(
            (AuditRecord.route == "/api/placement-documents/{document_id}")
            & (AuditRecord.kind == "read")
        )
        .first()
    )
    assert row is not None
    assert row["case_id"] == cid
