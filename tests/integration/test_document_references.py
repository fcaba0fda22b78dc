"""The orphan sweep keeps the workflow's documents: a custody handover's
relationship proof and a settlement approval are referenced by their rows."""

from __future__ import annotations

from dataclasses import replace

from rescue import clock
from tests.integration.helpers import admitted_days_ago, new_case

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def test_proof_and_approval_documents_are_not_orphans(client, staff):
    from rescue.escorts.tables import Handover
    from rescue.placements.tables import SettlementApproval
    from rescue.recovery import remove_orphan_objects
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    minor = (await new_case(client, staff, estimated_age=14))["id"]
    response = await client.post(
        f"/api/cases/{minor}/handover",
        files={
            "sheet": ("s.pdf", PDF, "application/pdf"),
            "proof": ("户口簿.pdf", PDF + b"proof", "application/pdf"),
        },
        data={
            "receiving_party": "family",
            "receiver_name": "张某",
            "relationship": "father",
            "relationship_basis": "household_register",
            "id_document_type": "居民身份证",
            "id_document_number": "510802197001011234",
            "id_document_checked": "true",
            "handed_over_at": clock.now().isoformat(),
            "place": "站内",
        },
        headers=staff,
    )
    assert response.status_code == 201, response.text
    adult = (await new_case(client, staff))["id"]
    await admitted_days_ago(adult, 2)
    response = await client.post(
        f"/api/cases/{adult}/settlement-approvals",
        files={"document": ("批复.pdf", PDF + b"approval", "application/pdf")},
        data={
            "authority": "市民政局",
            "reference": "民批1号",
            "approved_on": clock.today().isoformat(),
        },
        headers=staff,
    )
    assert response.status_code == 201, response.text
    store = get_store()
    settings = replace(get_settings().recovery, orphan_grace_seconds=0)
    await remove_orphan_objects(settings=settings, store=store)
    proof = (await Handover.select(Handover.proof_object_key).first())["proof_object_key"]
    approval = (await SettlementApproval.select(SettlementApproval.object_key).first())[
        "object_key"
    ]
    assert store.exists(proof)
    assert store.exists(approval)
