"""The destination station (关岭) in a real browser: its 工作台 lists the person
coming from another station; on the handover page its staff record the
reception and countersign; the sending station then closes the case."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from rescue import clock
from tests.browser.conftest import make_user
from tests.browser.pages import CasePage, IntakePage, LoginPage
from tests.integration.test_other_station import _handover, _identified_with_plan, _stations


async def test_destination_station_countersigns_on_the_handover_page(page, live_server):
    with clock.frozen(datetime(2026, 12, 2, 1, 0, tzinfo=UTC)):  # 09:00 at the stations
        async with httpx.AsyncClient(base_url=live_server, timeout=30) as api:
            api.headers["Accept-Language"] = "en"
            h = await _stations()
            case_id, _candidate = await _identified_with_plan(api, h)
            handover = await _handover(api, h["a"], case_id)
            clock.advance(2 * 3600)  # 11:00

            username, password = await make_user("station_staff", "关岭")
            await (await LoginPage(page).open()).log_in(username, password)
            incoming = page.locator("#incoming")
            assert "西城" in await incoming.inner_text()
            await incoming.locator("a.incoming-handover").first.click()
            assert f"/handovers/{handover['id']}" in page.url
            assert "等待接收" in await page.inner_text("#countersign-status")
            # The signed sheet opens through the app (any PC), never the store's address.
            href = await page.get_attribute("#sheet-link", "href")
            assert href == f"/handovers/{handover['id']}/signed-sheet"
            sheet = await page.request.get(href)
            assert sheet.status == 200
            assert sheet.headers["content-type"] == "image/jpeg"  # the scan uploaded
            assert (await sheet.body()).startswith(b"\xff\xd8")

            # A reception time in the future is refused next to the field, in Chinese.
            await page.fill("#f-received_at", "2026-12-02T12:30")
            await page.fill("#f-received_by_name", "李站长")
            await page.click("#reception-form button[type=submit]")
            assert "接收时间不能晚于现在" in await page.inner_text("#reception")
            assert await page.input_value("#f-received_by_name") == "李站长"

            await page.fill("#f-received_at", "2026-12-02T10:30")
            await page.click("#reception-form button[type=submit]")
            assert "李站长" in await page.inner_text("#reception-recorded")
            await page.fill("#f-note", "人员已接收")
            await page.click("#countersign-form button[type=submit]")
            assert "已会签" in await page.inner_text("#countersigned")
            assert await page.inner_text("#countersign-status") == "已会签"

            closed = await api.post(
                f"/api/cases/{case_id}/transitions",
                json={"to": "escorted_home", "reason": "送达关岭"},
                headers=h["a"],
            )
            assert closed.status_code == 200, closed.text


async def test_staff_transfer_a_person_on_the_case_page(page):
    with clock.frozen(datetime(2026, 12, 2, 1, 0, tzinfo=UTC)):
        await make_user("station_staff", "关岭")  # a station using the service
        username, password = await make_user("station_staff", "西城")
        await (await LoginPage(page).open()).log_in(username, password)
        await (await (await IntakePage(page).open()).fill(estimated_age="60")).submit()
        case_page = CasePage(page)
        case_id = case_page.case_id()
        options = await page.locator("#transfer-form #f-to_station option").all_inner_texts()
        assert "关岭" in options
        assert "西城" not in options

        # A date in the future is refused next to the form, what was typed kept.
        await page.select_option("#transfer-form #f-to_station", "关岭")
        await page.fill("#transfer-form #f-transferred_on", "2026-12-09")
        await page.fill("#transfer-form #f-reason", "户籍地在关岭, 就近救助")
        await page.click("#transfer-form button[type=submit]")
        assert "转送日期晚于今天" in await page.inner_text("#transfers")
        assert await page.input_value("#transfer-form #f-reason") == "户籍地在关岭, 就近救助"

        await page.fill("#transfer-form #f-transferred_on", "2026-12-02")
        await page.click("#transfer-form button[type=submit]")
        assert page.url.endswith("/cases")
        from rescue.cases.tables import Case

        row = await Case.select(Case.station).where(Case.id == case_id).first()
        assert row["station"] == "关岭"
        response = await page.goto(f"/cases/{case_id}")
        assert response is not None
        assert response.status == 403
