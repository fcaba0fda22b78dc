"""Loading the backlog from the page: upload → dry run with per-row errors in
Chinese → confirm → progress to the end."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.test_workbench import _logged_in
from tests.integration.test_backlog import BAD, HEADER, STRANDED

GOOD = STRANDED.rsplit(",", 1)[0] + ","  # no photo


async def test_upload_dry_run_confirm_progress(page, live_server, tmp_path):
    from rescue.cases.tables import Case

    table = tmp_path / "补录.csv"
    table.write_bytes(("\r\n".join([HEADER, GOOD, BAD[0]]) + "\r\n").encode("gbk"))
    await _logged_in(page)
    await page.goto(f"{live_server}/backlog")
    await page.set_input_files("#file", str(table))
    async with page.expect_navigation():
        await page.click("#backlog-form button[type=submit]")
    errors = await page.inner_text("#row-errors")
    assert "入站日期" in errors
    assert "不是日期" in errors
    assert "人员：1" in await page.inner_text("#would-create")
    assert await Case.count() == 0
    async with page.expect_navigation():
        await page.click("#confirm-form button[type=submit]")
    progress = page.locator("#backlog-progress")
    await expect(progress).to_have_attribute("data-status", "done", timeout=120_000)
    assert re.search(r"2\s*/\s*2", await progress.inner_text())
    assert await Case.count() == 1
    [case] = await Case.select(Case.id)
    await page.goto(f"{live_server}/cases/{case['id']}")
    timeline = await page.inner_text("#timeline")
    assert "历史补录，录入于" in timeline
    assert "2016-07-01" in timeline  # the admission, when it happened


async def test_unreadable_file_refused_next_to_the_form(page, live_server, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("姓名,颜色\r\n张三,红\r\n".encode())
    await _logged_in(page)
    await page.goto(f"{live_server}/backlog")
    await page.set_input_files("#file", str(bad))
    async with page.expect_navigation():
        await page.click("#backlog-form button[type=submit]")
    assert "颜色" in await page.inner_text("#upload-error")
