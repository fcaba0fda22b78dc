"""External lists through pages: upload → dry run with per-row errors → run with
its progress → verify the warning it raised (核实); statistics and duplicates."""

from __future__ import annotations

from tests.browser.test_workbench import _logged_in

HEADER = "外部编号,姓名,性别,出生日期,年龄,身份证号,户籍地,地点,日期,备注"
ROWS = [
    "P-1,李秀英,女,,70,,,城北汽车站,,",
    "P-2,王五,男,1980-01-01,,,,,,",
    "P-3,赵六,男,1980-13-01,,,,,,",  # bad date: left out, shown in the dry run
]


async def _missing_woman() -> int:
    from rescue.cases.tables import Sex
    from rescue.notices.schemas import NoticeCreate
    from rescue.notices.services import create_notice
    from rescue.notices.tables import NoticeSource
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    setup = Principal(user_id=0, username="setup", role=Role.admin, station="north")
    notice = await create_notice(
        data=NoticeCreate(
            name="李秀英",
            source=NoticeSource.family,
            sex=Sex.female,
            age_when_missing=70,
            last_seen_place="城北汽车站",
        ),
        by=setup,
    )
    return notice.id


async def test_upload_dry_run_run_and_verify_a_warning(page):
    notice_id = await _missing_woman()
    await _logged_in(page)
    await page.goto("/imports/")
    assert await page.inner_text("h1") == "外部名单比对"
    await page.select_option("#f-list_kind", "police_missing")
    await page.fill("#f-list_name", "2026年11月公安失踪人员")
    # A file that is not a list is refused next to the field, keeping the name typed.
    await page.set_input_files(
        "#f-file", files=[{"name": "x.csv", "mimeType": "text/csv", "buffer": b"a,b\r\n1,2\r\n"}]
    )
    async with page.expect_navigation():
        await page.click("#import-form button[type=submit]")
    assert "未知列" in await page.inner_text("#e-file")
    assert await page.input_value("#f-list_name") == "2026年11月公安失踪人员"

    body = ("\r\n".join([HEADER, *ROWS]) + "\r\n").encode("gbk")
    await page.set_input_files(
        "#f-file", files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": body}]
    )
    async with page.expect_navigation():
        await page.click("#import-form button[type=submit]")
    assert "/imports/" in page.url
    assert await page.inner_text("#total-rows") == "3"
    assert await page.inner_text("#valid-rows") == "2"
    assert "出生日期" in await page.inner_text("#row-errors tr[data-row='3']")
    assert await page.get_attribute("#run-progress", "data-status") == "checked"

    async with page.expect_navigation():
        await page.click("#start-form button[type=submit]")
    await page.wait_for_selector("#run-progress[data-status='done']", timeout=60_000)
    assert await page.inner_text("#rows-done") == "3"
    assert "已处理行数：3 / 3" in await page.inner_text("#run-progress")  # a full-width colon
    assert await page.inner_text("#warnings-raised") == "1"

    async with page.expect_navigation():
        await page.click("#to-warnings")
    card = page.locator("section[data-outcome='open']").first
    assert f"/notices/{notice_id}" in (await card.inner_html())
    # Each 核实 choice sits right beside its words (a radio once stretched across
    # the row, far from its label).
    choice = card.locator("label:has(input[value='not_same'])")
    radio = await choice.locator("input").bounding_box()
    box = await choice.bounding_box()
    assert radio is not None
    assert box is not None
    assert radio["x"] - box["x"] < 4
    assert box["width"] < 200, box
    # No note for "not the same person": refused next to the form, nothing recorded.
    await card.locator("input[value='not_same']").check()
    async with page.expect_navigation():
        await card.locator("button[type=submit]").click()
    card = page.locator("section[data-outcome='open']").first
    assert "备注" in await card.locator(".field-error").inner_text()
    await card.locator("input[value='already_known']").check()
    await card.locator("textarea").fill("家属已于昨日来电，正在核实")
    async with page.expect_navigation():
        await card.locator("button[type=submit]").click()
    verified = page.locator("section[data-outcome='already_known']")
    assert "已掌握" in await verified.inner_text()
    assert "今天提出" in await verified.inner_text()  # not "0 天前"

    # The list's counts: raised 1, verified 1; the CSV link keeps the filters.
    await page.goto("/warnings?outcome=already_known")
    assert await page.inner_text("#warning-total") == "1"
    href = await page.get_attribute("#warnings-csv", "href")
    assert href == "/warnings/csv?outcome=already_known"
    csv_answer = await page.request.get(href)
    assert csv_answer.status == 200
    assert "家属已于昨日来电" in (await csv_answer.body()).decode("utf-8-sig")
    await page.goto("/warnings?min_age_days=1")
    assert await page.inner_text("#warning-total") == "0"  # raised today: 0 days old
    await page.goto("/warnings?min_age_days=abc")
    assert await page.inner_text("#e-min_age_days")


async def test_statistics_page_with_downloads(page):
    await _logged_in(page, role="admin", station="")
    await page.goto("/stats?date_from=2026-11-01&date_to=2026-11-30")
    assert await page.inner_text("h1") == "统计"
    assert "人脸比对" in await page.inner_text("#stats-channels")
    leaving = await page.inner_text("#stats-leaving")  # every official category, in Chinese
    assert "接领返乡" in leaving
    assert "护送返乡" in leaving
    xlsx = await page.request.get(await page.get_attribute("#stats-xlsx", "href"))
    assert xlsx.status == 200
    assert (await xlsx.body())[:2] == b"PK"
    await page.goto("/stats?date_from=2026-11-30&date_to=2026-11-01")
    assert await page.inner_text("#e-date_to")


async def test_duplicate_intake_flag_on_the_case_page_and_link(page):
    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import create_case
    from rescue.cases.tables import Sex
    from rescue.duplicates.services import check_new_case
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    south = Principal(user_id=0, username="setup", role=Role.admin, station="south")
    north = Principal(user_id=0, username="setup", role=Role.admin, station="north")
    earlier = await create_case(
        data=CaseCreate(reported_name="王建国", sex=Sex.male, estimated_age=60, found_place="G318"),
        by=south,
    )
    later = await create_case(
        data=CaseCreate(reported_name="王建国", sex=Sex.male, estimated_age=61, found_place="G318"),
        by=north,
    )
    (warning,) = await check_new_case(case_id=later.id)
    await _logged_in(page)
    await page.goto(f"/cases/{later.id}")
    flag = page.locator(f"#duplicate-{warning.id}")
    await flag.wait_for()
    assert await flag.get_attribute("data-status") == "open"
    assert earlier.reference in await flag.inner_text()
    assert "姓名相同" in await flag.inner_text()  # the matched details in words
    async with page.expect_navigation():
        await flag.locator("form[action$='/link'] button").click()
    flag = page.locator(f"#duplicate-{warning.id}")
    await flag.wait_for()
    assert await flag.get_attribute("data-status") == "linked"


async def test_an_upload_over_the_limit_is_named_next_to_the_file_field(page, monkeypatch):
    """IMPORT_MAX_BYTES set to 700,000 (read per request by the form reader): a
    photos ZIP making the upload over two files' worth is refused without its
    files being read, and the browser shows the import page again with the
    limit named in Chinese next to the file field, the list name kept."""
    import io
    import os
    import zipfile

    from rescue.settings import get_settings

    monkeypatch.setenv("IMPORT_MAX_BYTES", "700000")
    get_settings.cache_clear()
    try:
        await _logged_in(page)
        await page.goto("/imports/")
        await page.fill("#f-list_name", "十一月名单")
        body = ("\r\n".join([HEADER, *ROWS]) + "\r\n").encode("utf-8")
        await page.set_input_files(
            "#f-file", files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": body}]
        )
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("filler.bin", os.urandom(4_000_000))
        await page.set_input_files(
            "#f-photos",
            files=[
                {"name": "photos.zip", "mimeType": "application/zip", "buffer": zipped.getvalue()}
            ],
        )
        async with page.expect_navigation() as navigation:
            await page.click("#import-form button[type=submit]")
        assert (await navigation.value).status == 413
        error = await page.inner_text("#e-file")
        assert "每个文件最多 700000 字节（IMPORT_MAX_BYTES）" in error, error
        assert await page.input_value("#f-list_name") == "十一月名单"
    finally:
        monkeypatch.delenv("IMPORT_MAX_BYTES")
        get_settings.cache_clear()
