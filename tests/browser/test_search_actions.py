"""Identity-search actions recorded from the case page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.browser.pages import IntakePage
from tests.browser.test_workbench import _logged_in


@pytest.fixture
def station_morning():
    """The service's clock at 09:00 CST on 2 December 2026 (the dates typed below
    must fall inside the case's stay, whatever the wall clock says)."""
    from rescue import clock

    with clock.frozen(datetime(2026, 12, 2, 1, 0, tzinfo=UTC)):
        yield


async def test_dna_request_from_the_case_page(page, station_morning):
    await _logged_in(page)
    await (await (await IntakePage(page).open()).fill(estimated_age="60")).submit()
    await page.click("#search-dna_request summary")
    form = page.locator("#search-dna_request form")
    await form.locator("#f-police_unit").fill("城关派出所")
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    assert "此项必填" in await page.inner_text("#search-dna_request")  # the date
    assert await page.locator("#search-dna_request #f-police_unit").input_value() == "城关派出所"
    await page.locator("#search-dna_request #f-requested_on").fill("2026-12-02")
    async with page.expect_navigation():
        await page.locator("#search-dna_request button[type=submit]").click()
    actions = await page.inner_text("#search-actions")
    assert "DNA" in actions
    from rescue.searches.tables import SearchAction

    assert await SearchAction.count() == 1
