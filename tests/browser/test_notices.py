"""A family's notice registered with photos at two ages; the matching finds the
person in care and the notice page lists the candidate."""

from __future__ import annotations

from tests.browser.pages import CasePage, IntakePage
from tests.browser.test_workbench import _logged_in
from tests.support import FACES_DIR, OBAMA_A, OBAMA_B


async def test_register_a_notice_with_photos_and_see_its_candidate(page):
    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(estimated_age="55", sex="male")
    await intake.take_photo(str(FACES_DIR / OBAMA_A))
    await intake.submit()
    await CasePage(page).wait_for_photos_processed()

    await page.goto("/notices/new")
    await page.fill("#f-name", "李四")
    await page.select_option("#f-sex", "male")
    await page.fill("#f-missing_since", "2016-05-01")
    await page.fill("#f-age_when_missing", "四十")  # not a number: refused in Chinese
    async with page.expect_navigation():
        await page.click("#notice-form button[type=submit]")
    assert await page.inner_text("#e-age_when_missing") == "请输入整数。"
    assert await page.input_value("#f-name") == "李四"
    await page.fill("#f-age_when_missing", "45")
    await page.fill("#f-taken_on_0", "2015-06-01")
    await page.set_input_files("#f-photo_0", str(FACES_DIR / OBAMA_B))
    async with page.expect_navigation():
        await page.click("#notice-form button[type=submit]")
    assert "/notices/" in page.url
    for _attempt in range(120):
        await page.reload()
        if await page.locator("#candidates a").count():
            break
        await page.wait_for_timeout(1000)
    assert "比对" in await page.inner_text("#candidates")
    assert "2015-06-01" in await page.inner_text("#photos")
    await page.goto("/notices?q=李四")
    assert "李四" in await page.inner_text("#notice-list")
