"""Police liaison submits a lead with its report; a reviewer compares, records the
family's confirmation and confirms, through pages only."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image

from tests.browser.conftest import ARTIFACTS, make_user
from tests.browser.pages import CasePage, IntakePage, LoginPage
from tests.browser.test_workbench import _logged_in


async def _notice() -> int:
    from rescue.cases.tables import Sex
    from rescue.notices.schemas import NoticeCreate
    from rescue.notices.services import create_notice
    from rescue.notices.tables import NoticeSource
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    family = Principal(user_id=0, username="setup", role=Role.admin, station="north")
    notice = await create_notice(
        data=NoticeCreate(name="李四", source=NoticeSource.family, sex=Sex.male), by=family
    )
    return notice.id


def _report_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def station_morning():
    """The service's clock at 09:00 CST on 2 December 2026 (the dates typed below
    must fall inside the case's stay, whatever the wall clock says)."""
    from rescue import clock

    with clock.frozen(datetime(2026, 12, 2, 1, 0, tzinfo=UTC)):
        yield


async def test_police_lead_then_review_and_confirm(page, browser, live_server, station_morning):
    await _logged_in(page)  # staff registers the person
    await (await (await IntakePage(page).open()).fill(estimated_age="45")).submit()
    case_id = CasePage(page).case_id()
    notice_id = await _notice()

    police_context = await browser.new_context(base_url=live_server, locale="zh-CN")
    police = await police_context.new_page()
    try:
        username, password = await make_user("police_liaison")
        await (await LoginPage(police).open()).log_in(username, password)
        await police.goto(f"/leads/new?case_id={case_id}&notice_id={notice_id}")
        await police.fill("#f-score", "1.7")  # out of range: shown in Chinese
        async with police.expect_navigation():
            await police.click("#lead-form button[type=submit]")
        assert "不得大于 1" in await police.inner_text("#e-score")
        assert await police.input_value("#f-case_id") == f"2026-{case_id:04d} 无名氏-{case_id:04d}"
        await police.fill("#f-score", "0.93")
        await police.fill("#f-system", "公安人像比对系统")
        await police.fill("#f-report_number", "GA-2026-001")
        ARTIFACTS.mkdir(exist_ok=True)
        report = ARTIFACTS / "report.png"
        report.write_bytes(_report_png())
        await police.set_input_files("#f-report", str(report))
        async with police.expect_navigation():
            await police.click("#lead-form button[type=submit]")
        assert "/candidates/" in police.url
        candidate_url = police.url.split(live_server, 1)[1]
        await police.screenshot(path=str(ARTIFACTS / "lead-submitted.png"), full_page=True)
    finally:
        await police_context.close()

    reviewer_context = await browser.new_context(base_url=live_server, locale="zh-CN")
    reviewer = await reviewer_context.new_page()
    try:
        username, password = await make_user("reviewer")
        await (await LoginPage(reviewer).open(candidate_url)).log_in(username, password)
        assert reviewer.url.endswith(candidate_url)
        assert "公安人像比对" in await reviewer.inner_text("#score")
        # The police report opens from the comparison page, through the app.
        href = await reviewer.get_attribute("#evidence a.attachment", "href")
        assert href is not None
        assert href.startswith("/candidates/")
        report_file = await reviewer.request.get(href)
        assert report_file.status == 200
        assert await report_file.body() == _report_png()
        # Both sides are described beside the photos, the notice one click away.
        sides = await reviewer.inner_text("#side-by-side")
        assert f"2026-{case_id:04d}" in sides
        assert "李四" in sides
        assert "约45岁" in sides
        assert await reviewer.get_attribute("#open-notice", "href") == f"/notices/{notice_id}"
        # No confirm button before a family confirmation: the page says what comes first.
        assert await reviewer.locator("#decide-confirm").count() == 0
        assert "亲属确认" in await reviewer.inner_text("#confirm-needs-family")
        await reviewer.fill("#f-confirmer_name", "李大妈")
        await reviewer.fill("#f-relationship", "母亲")
        await reviewer.select_option("#f-method", "video_call")
        async with reviewer.expect_navigation():
            await reviewer.click("#family-form button[type=submit]")
        assert "李大妈" in await reviewer.inner_text("#family")
        assert await reviewer.locator("#confirm-needs-family").count() == 0
        async with reviewer.expect_navigation():
            await reviewer.click("#decide-confirm button[type=submit]")
        assert "此项必填" in await reviewer.inner_text("#decide")  # reason required
        await reviewer.fill("#reason-confirm", "视频确认，公安比对高分")
        async with reviewer.expect_navigation():
            await reviewer.click("#decide-confirm button[type=submit]")
        assert await reviewer.inner_text("#candidate-status") == "已确认"
        await reviewer.screenshot(path=str(ARTIFACTS / "compare-confirmed.png"), full_page=True)
    finally:
        await reviewer_context.close()
    await CasePage(page).open(case_id)
    assert await CasePage(page).status() == "身份查明"

    # Staff plan the escort home, print and upload the handover sheet, close the case.
    from rescue import clock

    clock.advance(3600)  # 10:00 CST: the plan is made now; the handover below is
    # typed for this minute (10:00), which stands for the whole minute
    case = CasePage(page)
    await page.fill("#f-destination", "四川省成都市")
    await page.fill("#f-transport", "火车")
    await page.fill("#f-escort_staff", "王站员\n李站员")
    await page.fill("#f-planned_on", "2026-12-02")
    async with page.expect_navigation():
        await page.click("#return-plan-form button[type=submit]")
    assert await case.status() == "返乡计划已定"
    sheet = await page.request.get(await page.get_attribute("#print-handover", "href"))
    assert sheet.status == 200
    assert sheet.headers["content-type"] == "application/pdf"
    signed = ARTIFACTS / "handover-sheet.pdf"
    signed.write_bytes(await sheet.body())
    await page.select_option("#f-receiving_party", "family")
    await page.fill("#f-receiver_name", "李大妈")
    await page.fill("#f-relationship", "母亲")
    await page.fill("#f-id_document_type", "居民身份证")
    await page.fill("#f-id_document_number", "510100195001010000")
    await page.check("input[name=id_document_checked]")
    await page.fill("#f-handed_over_at", "2026-12-02T10:00")
    await page.fill("#f-place", "成都市救助站")
    await page.set_input_files("#f-sheet", str(signed))  # the printed sheet, "signed"
    async with page.expect_navigation():
        await page.click("#handover-form button[type=submit]")
    assert "李大妈" in await page.inner_text("#handovers")
    await case.move("handed_to_family", reason="亲属接领")
    assert await case.status() == "亲属接领"
