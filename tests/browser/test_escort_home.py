"""Escort home in a real browser, as a fresh user walked it (issue 12 trial):
a minor with a confirmed candidate is handed to family from the pages (basis,
second staff member's approval from the 工作台), moves not possible yet show why
instead of a failing button, and the return plan is shown and changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rescue import clock
from tests.browser.conftest import ARTIFACTS, make_user
from tests.browser.pages import CasePage, LoginPage
from tests.browser.test_workbench import _logged_in
from tests.conftest import make_token
from tests.integration.helpers import (
    decide,
    family_confirmation,
    new_case,
    new_notice,
    submit_candidate,
)

#: 10:00:20 CST on 2 December 2026: the identification happens 20 s into a minute.
T0 = datetime(2026, 12, 2, 2, 0, 20, tzinfo=UTC)


@pytest.fixture
def morning():
    with clock.frozen(T0 - timedelta(hours=1)):
        yield


async def _identified_minor(live_server: str) -> int:
    """A 14-year-old identified by a confirmed candidate at T0 (through the API)."""
    staff = {"Authorization": f"Bearer {await make_token('station_staff')}"}
    police = {"Authorization": f"Bearer {await make_token('police_liaison')}"}
    reviewer = {"Authorization": f"Bearer {await make_token('reviewer')}"}
    async with httpx.AsyncClient(base_url=live_server) as client:
        cid = int((await new_case(client, staff, estimated_age=14))["id"])
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
        clock.advance((T0 - clock.now()).total_seconds())
        assert (await decide(client, reviewer, candidate_id, "confirm")).status_code == 200
    return cid


async def test_minor_handed_to_family_with_confirmed_candidate_and_second_approval(
    page, browser, live_server, morning
):
    cid = await _identified_minor(live_server)
    await _logged_in(page)
    case = await CasePage(page).open(cid)
    # The banner states the station's custody age (CUSTODY_AGE, 18 by default).
    assert "未满18周岁" in await page.inner_text("main")
    # Before a handover: no button that would fail, but why not yet.
    assert "handed_to_family" not in await case.moves()
    hint = await page.inner_text("#not-yet li[data-move='handed_to_family']")
    assert "交接" in hint
    assert await page.is_visible("#custody-hint")
    # The basis is offered and preset from the confirmed candidate.
    assert await page.input_value("#f-relationship_basis") == "confirmed_candidate"
    clock.advance(30)  # 10:00:50; typed 10:00 — the identification's own minute
    await page.fill("#f-receiver_name", "王大明")
    await page.fill("#f-relationship", "父亲")
    await page.fill("#f-id_document_type", "居民身份证")
    await page.fill("#f-id_document_number", "430102198001011234")
    await page.check("#f-id_document_checked")
    await page.fill("#f-handed_over_at", "2026-12-02T10:00")
    await page.fill("#f-place", "本站接待室")
    sheet = ARTIFACTS / "signed-sheet.pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    sheet.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    await page.set_input_files("#f-sheet", str(sheet))
    async with page.expect_navigation():
        await page.click("#handover-form button[type=submit]")
    assert page.url.endswith(f"/cases/{cid}#handovers"), await page.inner_text("main")
    assert await page.get_attribute("[data-approval]", "data-approval") == "waiting"
    assert await page.locator(".approve-form").count() == 0  # not by the one who recorded
    assert "handed_to_family" not in await case.moves()

    other = await browser.new_context(base_url=live_server, locale="zh-CN")
    second = await other.new_page()
    try:
        username, password = await make_user("station_staff")
        await (await LoginPage(second).open()).log_in(username, password)
        assert "王大明" in await second.inner_text("#approvals")
        async with second.expect_navigation():
            await second.click("#approvals a")
        await second.fill(".approve-form input[name=note]", "核对比对确认与身份证")
        async with second.expect_navigation():
            await second.click(".approve-form button[type=submit]")
        assert await second.get_attribute("[data-approval]", "data-approval") == "approved"
    finally:
        await other.close()

    await case.open(cid)
    assert "handed_to_family" in await case.moves()
    await case.move("handed_to_family", reason="父亲接领")
    assert await case.status() == "亲属接领"
    # A closed case offers neither photos nor the announcement.
    assert await page.locator("#photo-upload").count() == 0
    assert await page.locator("#publish-announcement").count() == 0


async def test_return_plan_shown_changed_and_an_early_family_accepted(page, morning):
    from rescue.cases import flows
    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import create_case
    from rescue.cases.tables import CaseStatus
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    by = Principal(user_id=0, username="setup", role=Role.station_staff, station="north")
    cid = (
        await create_case(data=CaseCreate(estimated_age=50, found_place="G318 国道路边"), by=by)
    ).id
    clock.advance(600)
    reviewer = Principal(user_id=0, username="r", role=Role.reviewer, station="north")
    await flows.transition(case_id=cid, to=CaseStatus.identified, by=reviewer, reason="t")
    await _logged_in(page)
    case = await CasePage(page).open(cid)
    await page.fill("#f-destination", "湖南省长沙市")
    await page.fill("#f-planned_on", "2026-12-05")
    await page.fill("#f-transport", "火车 K123")
    await page.fill("#f-escort_staff", "王站员")
    await page.select_option("#p-receiving_party", "family")
    await page.fill("#f-receiver", "儿子 朱小明")
    async with page.expect_navigation():
        await page.click("#return-plan-form button[type=submit]")
    assert await case.status() == "返乡计划已定"
    assert "儿子 朱小明" in await page.inner_text("#return-plan [data-field=receiving_party]")
    # 修改返乡计划: prefilled; the reason is required.
    await page.click("#plan-revise summary")
    assert await page.input_value("#plan-revise-form #f-destination") == "湖南省长沙市"
    await page.fill("#plan-revise-form #f-planned_on", "2026-12-04")
    async with page.expect_navigation():
        await page.click("#plan-revise-form button[type=submit]")
    assert await page.is_visible("#plan-revise-form #e-reason")
    await page.fill("#plan-revise-form #f-reason", "家属提前到站")
    async with page.expect_navigation():
        await page.click("#plan-revise-form button[type=submit]")
    assert await page.inner_text("#return-plan [data-field=planned_on]") == "2026-12-04"
    assert "家属提前到站" in await page.inner_text("#timeline")
    # The family comes today, before the planned date: the handover is accepted.
    clock.advance(60)
    await page.fill("#f-receiver_name", "朱小明")
    await page.fill("#f-id_document_type", "居民身份证")
    await page.fill("#f-id_document_number", "430102198001011234")
    await page.check("#f-id_document_checked")
    await page.fill("#f-handed_over_at", clock.local(clock.now()).strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#f-place", "本站")
    sheet = ARTIFACTS / "signed-sheet.pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    sheet.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    # A basis that needs a document, without it: said next to the proof field.
    await page.select_option("#f-relationship_basis", "household_register")
    await page.set_input_files("#f-sheet", str(sheet))
    async with page.expect_navigation():
        await page.click("#handover-form button[type=submit]")
    assert "户口簿" in await page.inner_text("#e-proof")
    assert await page.input_value("#f-receiver_name") == "朱小明"  # what was typed is kept
    await page.select_option("#f-relationship_basis", "")
    await page.set_input_files("#f-sheet", str(sheet))
    async with page.expect_navigation():
        await page.click("#handover-form button[type=submit]")
    assert "朱小明" in await page.inner_text("#handovers .handover"), await page.inner_text("main")
