"""Escort home as found by a fresh user (issue 12 trial): the return plan can be
changed (reason, timeline), a handover may come before the planned departure
date but not before the plan was made, and a minute typed on a page stands for
the whole minute."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rescue import clock
from rescue.cases import flows
from rescue.cases.tables import CaseStatus
from rescue.users.services import Principal
from rescue.users.tables import Role
from tests.integration.helpers import new_case

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
REVIEWER = Principal(user_id=None, username="r", role=Role.reviewer, station="north")


def sheet(at: str) -> dict[str, str]:
    return {
        "receiving_party": "family",
        "receiver_name": "李某",
        "id_document_type": "居民身份证",
        "id_document_number": "110101199001011234",
        "id_document_checked": "true",
        "handed_over_at": at,
        "place": "站内",
    }


async def handover(client: Any, headers: dict[str, str], cid: int, at: str) -> Any:
    return await client.post(
        f"/api/cases/{cid}/handover",
        files={"sheet": ("s.pdf", PDF, "application/pdf")},
        data=sheet(at),
        headers=headers,
    )


def plan(**overrides: Any) -> dict[str, Any]:
    return {
        "destination": "湖南省长沙市",
        "transport": "火车 K123",
        "escort_staff": ["王芳"],
        "planned_on": (clock.today() + timedelta(days=3)).isoformat(),
        **overrides,
    }


async def identified_case(client: Any, staff: dict[str, str]) -> int:
    cid = int((await new_case(client, staff))["id"])
    await flows.transition(case_id=cid, to=CaseStatus.identified, by=REVIEWER, reason="t")
    return cid


async def test_family_arriving_before_the_planned_date_is_handed_over(client, staff):
    t0 = clock.now()
    with clock.frozen(t0 + timedelta(hours=1)):
        cid = await identified_case(client, staff)
    with clock.frozen(t0 + timedelta(hours=2)):
        response = await client.post(f"/api/cases/{cid}/return-plan", json=plan(), headers=staff)
        assert response.status_code == 201, response.text
    with clock.frozen(t0 + timedelta(hours=1, minutes=30)):
        # Before the plan was made: refused, naming the plan.
        response = await handover(client, staff, cid, clock.now().isoformat())
        assert response.status_code == 400, response.text
        assert "return plan" in response.json()["detail"]
    with clock.frozen(t0 + timedelta(hours=3)):
        # After the plan was made, three days before its planned date: accepted.
        response = await handover(client, staff, cid, clock.now().isoformat())
        assert response.status_code == 201, response.text


async def test_return_plan_is_revised_with_a_reason_on_the_timeline(client, staff):
    cid = await identified_case(client, staff)
    response = await client.post(f"/api/cases/{cid}/return-plan", json=plan(), headers=staff)
    assert response.status_code == 201, response.text
    created_at = response.json()["created_at"]
    changed = plan(
        planned_on=(clock.today() + timedelta(days=1)).isoformat(),
        transport="汽车",
        receiving_party="family",
        receiver="父亲 李某",
    )
    response = await client.put(f"/api/cases/{cid}/return-plan", json=changed, headers=staff)
    assert response.status_code == 400, response.text  # the reason is required
    changed["reason"] = "家属提前到站"
    response = await client.put(f"/api/cases/{cid}/return-plan", json=changed, headers=staff)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["transport"] == "汽车"
    assert body["receiving_party"] == "family"
    assert body["created_at"] == created_at  # still when the plan was first made
    assert body["revised_at"]
    got = (await client.get(f"/api/cases/{cid}/return-plan", headers=staff)).json()
    assert got["planned_on"] == changed["planned_on"]
    events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
    revised = [e for e in events if e["kind"] == "return_plan_revised"]
    assert len(revised) == 1
    assert revised[0]["reason"] == "家属提前到站"
    assert revised[0]["data"]["before"]["transport"] == "火车 K123"
    assert revised[0]["data"]["after"]["transport"] == "汽车"
    assert "destination" not in revised[0]["data"]["after"]  # unchanged fields left out
    # Closed cases keep their plan.
    other = await identified_case(client, staff)
    response = await client.put(
        f"/api/cases/{other}/return-plan", json={**changed, "reason": "x"}, headers=staff
    )
    assert response.status_code == 409, response.text


async def test_a_minute_typed_on_a_page_stands_for_the_whole_minute(client, staff):
    from rescue.errors import InvalidInput
    from rescue.escorts import services
    from rescue.escorts.schemas import HandoverForm
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    t0 = clock.now().replace(second=20, microsecond=0)
    with clock.frozen(t0 - timedelta(minutes=5)):
        cid = int((await new_case(client, staff))["id"])
    with clock.frozen(t0):
        await flows.transition(case_id=cid, to=CaseStatus.identified, by=REVIEWER, reason="t")
    typed = t0.replace(second=0)  # the same minute, as a page sends it
    from rescue.escorts.tables import ReceivingParty

    fields: dict[str, Any] = {**sheet(typed.isoformat()), "handed_over_at": typed}
    fields.update(receiving_party=ReceivingParty.family, id_document_checked=True)
    form = HandoverForm(sheet=None, **fields)  # type: ignore[arg-type]
    by = Principal(user_id=None, username="s", role=Role.station_staff, station="north")
    kwargs: dict[str, Any] = {
        "case_id": cid,
        "form": form,
        "sheet": PDF,
        "by": by,
        "store": get_store(),
        "limits": get_settings().upload,
    }
    with clock.frozen(t0 + timedelta(seconds=10)):
        # A full timestamp keeps the exact rule: 20 s before the identification.
        with pytest.raises(InvalidInput) as refused:
            await services.record_handover(**kwargs)
        assert "handed_over_at" in refused.value.detail
        assert "在站期间" not in refused.value.detail  # inside the stay, before the identification
        # The page's minute covers the identification's moment: accepted.
        out = await services.record_handover(**kwargs, minute_precision=True)
        assert out.handed_over_at == typed
