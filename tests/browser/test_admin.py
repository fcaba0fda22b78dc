"""Administration through pages: users, the audit trail, re-matching's progress."""

from __future__ import annotations

from tests.browser.pages import LoginPage
from tests.browser.test_workbench import _logged_in


async def test_admin_creates_a_user_who_logs_in_then_is_deactivated(page, browser, live_server):
    await _logged_in(page, role="admin", station="")
    await page.goto("/admin/users")
    await page.fill("#f-username", "王新员工")
    await page.select_option("#f-role", "station_staff")
    async with page.expect_navigation():  # station staff without a station: refused
        await page.click("#user-form button[type=submit]")
    assert "救助站" in await page.inner_text("#e-station")
    assert await page.input_value("#f-username") == "王新员工"
    await page.fill("#f-station", "north")
    async with page.expect_navigation():
        await page.click("#user-form button[type=submit]")
    notice = await page.inner_text("#admin-notice")
    password = notice.rsplit("：", 1)[-1].rsplit(": ", 1)[-1].strip()
    assert len(password) >= 12

    other = await browser.new_context(base_url=live_server, locale="zh-CN")
    staff = await other.new_page()
    try:
        await (await LoginPage(staff).open()).log_in("王新员工", password)
        assert await staff.inner_text("h1") == "今日工作"
        row = page.locator("#users tr[data-username='王新员工']")
        async with page.expect_navigation():
            await row.locator("form[action$='/deactivate'] button").click()
        await staff.goto("/cases")  # the session ends with the deactivation
        assert "/login" in staff.url
    finally:
        await other.close()

    await page.goto("/admin/audit?case_id=")
    audit = await page.inner_text("#audit")
    assert "/admin/users" in audit
    assert "管理员" in audit
    assert "(admin)" not in audit
    assert "已修改" in audit


async def test_rematch_progress_bar_reaches_done(page):
    await _logged_in(page, role="admin", station="")
    await page.goto("/admin/rematch")
    async with page.expect_navigation():
        await page.click("#rematch-form button[type=submit]")
    await page.wait_for_selector("#rematch-progress[data-status='done']", timeout=60_000)


async def test_admin_changes_a_users_role_and_station_on_the_page(page):
    from tests.browser.conftest import make_user

    me = await _logged_in(page, role="admin", station="")
    username, _password = await make_user("station_staff", "north")
    await page.goto("/admin/users")
    row = page.locator(f"#users tr[data-username='{username}']")
    await row.locator("details.assign summary").click()
    await row.locator("input[name=station]").fill("")
    async with page.expect_navigation():  # station staff need a station: refused
        await row.locator("details.assign button[type=submit]").click()
    row = page.locator(f"#users tr[data-username='{username}']")
    assert "救助站" in await row.locator(".field-error").inner_text()
    await row.locator("select[name=role]").select_option("reviewer")
    await row.locator("input[name=station]").fill("south")
    async with page.expect_navigation():
        await row.locator("details.assign button[type=submit]").click()
    row = page.locator(f"#users tr[data-username='{username}']")
    assert "审核员" in await row.inner_text()
    assert "south" in await row.inner_text()
    own = page.locator(f"#users tr[data-username='{me}'] form[action$='/deactivate']")
    assert await own.count() == 0  # an admin cannot deactivate themselves: no button
