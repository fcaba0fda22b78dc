"""Leaving outcomes in the MCA 离站方式 categories (issue 12 item 10)."""

from __future__ import annotations

from rescue import clock
from rescue.cases.flows import LEAVING_CATEGORY
from rescue.cases.tables import TERMINAL_STATUSES, CaseStatus, LeavingCategory
from tests.conftest import make_token
from tests.integration.helpers import new_case


def test_every_leaving_status_has_exactly_one_category():
    assert set(LEAVING_CATEGORY) == set(TERMINAL_STATUSES)
    assert LEAVING_CATEGORY[CaseStatus.left_self] == LeavingCategory.ticket_self_return
    assert LEAVING_CATEGORY[CaseStatus.escorted_home] == LeavingCategory.escorted_return
    assert LEAVING_CATEGORY[CaseStatus.collected_by_origin] == LeavingCategory.collected_return


async def close(client, headers, case_id: int, to: str, **data) -> None:
    response = await client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": to, "reason": to, "data": data},
        headers=headers,
    )
    assert response.status_code == 200, response.text


async def test_monthly_report_counts_leavings_by_category(client, staff):
    south = {"Authorization": f"Bearer {await make_token('station_staff', station='south')}"}
    for to, extra in (
        ("deceased", {}),
        ("left_unauthorised", {}),
        ("left_self", {"ticket": "K1 to 成都", "cross_province": True}),
        ("left_self", {"ticket": "K2 to 广元"}),
    ):
        case = await new_case(client, staff, station="north")
        await close(client, staff, case["id"], to, **extra)
    minor = await new_case(client, staff, station="north", estimated_age=12)
    await close(client, staff, minor["id"], "transferred_minor")
    elsewhere = await new_case(client, south, station="south")
    await close(client, south, elsewhere["id"], "deceased")
    detail = (await client.get(f"/api/cases/{minor['id']}", headers=staff)).json()
    assert detail["leaving_category"] == "other"

    month = clock.today().strftime("%Y-%m")
    response = await client.get(f"/api/reports/leavings?month={month}", headers=staff)
    assert response.status_code == 200, response.text
    report = response.json()
    counts = {c["category"]: (c["count"], c["cross_province"]) for c in report["categories"]}
    assert report["total"] == 5  # the south station's case is not theirs
    assert counts["deceased"] == (1, 0)
    assert counts["left_unauthorised"] == (1, 0)
    assert counts["ticket_self_return"] == (2, 1)
    assert counts["other"] == (1, 0)
    assert counts["placement"] == (0, 0)
    assert len(counts) == len(LeavingCategory)
    assert (
        await client.get("/api/reports/leavings?month=2026-13", headers=staff)
    ).status_code == 400
    empty = await client.get("/api/reports/leavings?month=2020-01", headers=staff)
    assert empty.json()["total"] == 0
