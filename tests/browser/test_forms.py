"""Page forms a fresh station worker met (issue 10): every problem of a submit at
once, in Chinese next to its field; an empty intake creates nothing."""

from __future__ import annotations

import pytest

from tests.browser.pages import CasePage, IntakePage
from tests.browser.test_review import station_morning  # noqa: F401 - a fixture
from tests.browser.test_workbench import _logged_in


async def test_empty_intake_names_what_is_missing_and_creates_nothing(page):
    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(found_place="")
    await intake.submit()
    assert "送站人" in await intake.field_error("found_place")
    assert "发现地点" in await intake.field_error("brought_by")
    from rescue.cases.tables import Case

    assert await Case.count() == 0


async def test_intake_shows_every_problem_of_one_submit(page):
    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(
        height_cm="500", age_low="60", age_high="40", estimated_age="70"
    )
    await intake.submit()
    assert "不得大于 250" in await intake.field_error("height_cm")
    assert "70" in await intake.field_error("estimated_age")
    assert "60" in await intake.field_error("age_high")  # age_low 60 > age_high 40
    assert await page.input_value("#f-height_cm") == "500"


async def test_timeline_speaks_the_page_language(page):
    """Kinds by their catalogue label; summaries composed from the entry's data,
    also for entries whose writer stored an English reason (issue 10 item 2)."""
    from rescue.cases.events import record_event
    from tests.browser.pages import CasePage

    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(brought_by="北郊派出所 民警赵")
    await intake.submit()
    case_id = CasePage(page).case_id()
    legacy = [
        ("placement_ended", "moved to psychiatric_hospital at 北郊精神卫生中心", {}),
        ("family_confirmation_recorded", "父亲 by video_call", {}),
        (
            "status_changed",
            "return to 四川省南充市 on 2026-12-05",
            {"destination": "四川省南充市", "planned_on": "2026-12-05"},
        ),
        ("placement_document_added", "入院通知书", {}),
    ]
    for kind, reason, data in legacy:
        await record_event(
            case_id=case_id,
            kind=kind,
            actor_id=None,
            actor_role="system",
            reason=reason,
            data=data,
        )
    await page.reload()
    timeline = await page.inner_text("#timeline")
    for shown in (
        "入站",
        "送站人：北郊派出所 民警赵",
        "转至精神病医院（北郊精神卫生中心）",
        "父亲，确认方式：视频通话",
        "2026-12-05 返回四川省南充市",
        "添加安置文书",
    ):
        assert shown in timeline, timeline
    for raw in ("placement_ended", "video_call", "brought by", "return to", "_added"):
        assert raw not in timeline, timeline
    await page.goto(f"/cases/{case_id}?lang=en")
    english = await page.inner_text("#timeline")
    assert "moved to psychiatric hospital" in english.lower(), english
    assert "placement ended" in english, english


async def test_api_tokens_in_the_nav_only_for_roles_that_use_them(page):
    await _logged_in(page, role="reviewer")
    assert await page.locator("nav a[href='/admin/tokens']").count() == 0
    await page.goto("/account")
    await page.click("#tokens-link")
    assert page.url.endswith("/admin/tokens")
    await page.context.clear_cookies()
    await _logged_in(page, role="police_liaison")
    assert await page.locator("nav a[href='/admin/tokens']").count() == 1


async def test_lead_form_takes_references_as_shown_and_offers_picks(page):
    """Case by its reference (2026-0003), notice by #id, both offered in pick
    lists with names; a reference that does not exist is named next to its field."""
    from rescue.cases.tables import Case
    from tests.browser.test_review import _notice

    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(reported_name="李秀英")
    await intake.submit()
    case_id = CasePage(page).case_id()
    reference = (await Case.select(Case.reference).where(Case.id == case_id).first())["reference"]
    notice_id = await _notice()
    await page.context.clear_cookies()
    await _logged_in(page, role="police_liaison")
    await page.goto("/leads/new")
    cases = await page.eval_on_selector_all("#case-choices option", "os => os.map(o => o.value)")
    notices = await page.eval_on_selector_all(
        "#notice-choices option", "os => os.map(o => o.value)"
    )
    assert f"{reference} 李秀英" in cases
    assert f"#{notice_id} 李四" in notices
    await page.fill("#f-case_id", "1999-0001")
    await page.fill("#f-notice_id", "李四")
    await page.fill("#f-score", "1.7")
    async with page.expect_navigation():
        await page.click("#lead-form button[type=submit]")
    assert "1999-0001" in await page.inner_text("#e-case_id")  # every problem at once
    assert "#2" in await page.inner_text("#e-notice_id")
    assert "不得大于 1" in await page.inner_text("#e-score")
    await page.fill("#f-case_id", reference)
    await page.fill("#f-notice_id", f"#{notice_id}")
    await page.fill("#f-score", "0.9")
    await page.select_option("#f-kind", "police_face")
    async with page.expect_navigation():
        await page.click("#lead-form button[type=submit]")
    assert "/candidates/" in page.url, await page.content()
    # Everywhere the pair is named by reference and name, linked (item 5).
    for path, where in (("/review", "table.queue"), ("/", "#candidates")):
        await page.goto(path)
        shown = await page.inner_text(where)
        assert f"{reference} 李秀英" in shown, shown
        assert f"#{notice_id} 李四" in shown, shown
    await page.goto(f"/notices/{notice_id}")
    assert f"{reference} 李秀英" in await page.inner_text("#candidates")
    await page.click("#candidates a.case-ref")
    assert page.url.endswith(f"/cases/{case_id}")


@pytest.mark.usefixtures("station_morning")
async def test_announcement_form_offers_the_case_photos_and_what_the_case_says(page):
    """Photos as thumbnails to pick; height, features and date found from the case."""
    from tests.support import FACES_DIR, OBAMA_A

    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(
        estimated_age="50", height_cm="172", description="左眉上有疤", found_at="2026-11-30T08:15"
    )
    await intake.take_photo(str(FACES_DIR / OBAMA_A))
    await intake.submit()
    case = CasePage(page)
    case_id = case.case_id()
    await case.wait_for_photos_processed()
    await page.goto(f"/cases/{case_id}/announcement")
    assert await page.input_value("#f-height_cm") == "172"
    assert await page.input_value("#f-physical_features") == "左眉上有疤"
    assert await page.input_value("#f-found_date") == "2026-11-30"
    thumbs = page.locator("#photo-pick img")
    assert await thumbs.count() == 1
    assert await thumbs.first.evaluate("img => img.complete && img.naturalWidth > 0")
    radio = page.locator("#photo-pick input[type=radio]").first
    assert await radio.is_checked()
    photo_id = await radio.get_attribute("value")
    async with page.expect_navigation():
        await page.click("#announcement-form button[type=submit]")
    assert page.url.endswith(f"/cases/{case_id}#announcement"), await page.content()
    from rescue.announcements.tables import Announcement

    row = await Announcement.select().where(Announcement.case == case_id).first()
    assert str(row["photo"]) == photo_id


async def test_empty_password_change_gets_the_server_errors_next_to_the_fields(page):
    """No browser bubble ("Please fill out this field.") in place of the
    station's Chinese error next to the field."""
    await _logged_in(page)
    await page.goto("/account")
    assert await page.get_attribute("#password-form", "novalidate") is not None
    async with page.expect_navigation():
        await page.click("#password-form button[type=submit]")
    assert await page.inner_text("#e-new_password") == "至少 12 个字符。"
    assert await page.locator("#password-form .has-error #f-new_password").count() == 1
