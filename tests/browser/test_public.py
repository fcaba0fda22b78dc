"""The public door on a phone: announcements, online search requests, moderation."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from rescue import clock
from tests.browser.conftest import make_user
from tests.browser.pages import (
    AnnouncementListPage,
    LoginPage,
    ModerationPage,
    RequestStatusPage,
    SearchRequestFormPage,
)
from tests.support import BIDEN, FACES_DIR, OBAMA_A, OBAMA_B, photo

PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def phone(browser: Any, live_server: str) -> Any:
    """A phone-sized browser context (Chinese, touch, no cookies)."""
    context = await browser.new_context(
        base_url=live_server,
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN"},
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(20_000)
    page = await context.new_page()
    yield page
    await context.close()


async def _staff() -> Any:
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    return Principal(user_id=0, username="t", role=Role.station_staff, station="north")


async def _case(**fields: Any) -> int:
    import msgspec

    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import create_case

    case = await create_case(
        data=msgspec.convert({"station": "north", "found_place": "G318", **fields}, CaseCreate),
        by=await _staff(),
    )
    return int(case.id)


async def _photo(case_id: int, rel: str) -> int:
    from rescue.photos.controllers import enqueue_photo
    from rescue.photos.services import upload_photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    out = await upload_photo(
        owner="case",
        owner_id=case_id,
        data=photo(rel),
        taken_on=None,
        by=await _staff(),
        store=get_store(),
        limits=get_settings().upload,
        enqueue=enqueue_photo,
    )
    return int(out.id)


async def _publish(case_id: int, photo_id: int | None = None, **fields: Any) -> int:
    import msgspec

    from rescue.announcements.schemas import AnnouncementIn
    from rescue.announcements.services import publish

    data = msgspec.convert({"photo_id": photo_id, **fields}, AnnouncementIn)
    return int((await publish(case_id=case_id, data=data, by=await _staff())).id)


async def _wait(predicate: Any, seconds: float = 180) -> Any:
    for _ in range(int(seconds * 2)):
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError("timed out")


async def test_family_finds_an_announcement_by_filters_and_opens_it(phone, live_server):
    wanted = await _case(sex="male", estimated_age=70, dialect="四川话")
    await _publish(
        wanted,
        await _photo(wanted, OBAMA_A),
        name="无名氏-0070",
        found_place="城西区 G318 附近",
        found_date="2026-11-20",
    )
    for age, sex, place in [(30, "male", "城西区"), (70, "female", "城东区")]:
        other = await _case(sex=sex, estimated_age=age, dialect="粤语")
        await _publish(other, found_place=place, name=f"无名氏-{age}{sex[0]}")
    listing = await AnnouncementListPage(phone).open()
    assert len(await listing.names()) == 3
    await listing.filter(sex="male", age_min="60", age_max="80", place="城西", dialect="四川")
    assert await listing.names() == ["无名氏-0070"]
    await listing.filter(found_from="2026-11-21")
    assert await listing.names() == []
    await listing.filter(found_from="2026-11-01", found_to="2026-11-30")
    assert await listing.names() == ["无名氏-0070"]
    await listing.open_first()
    assert await phone.inner_text("#name") == "无名氏-0070"
    fields = await phone.inner_text("#fields")
    assert "城西区 G318 附近" in fields
    assert "四川话" in fields
    src = await phone.get_attribute("img.photo", "src")
    image = await phone.request.get(src)
    assert image.status == 200
    assert image.headers["cache-control"] == "public, max-age=60"
    # Fits the phone's width; no horizontal scrolling.
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    # The poster's QR code holds the API address: a phone is sent to the page.
    announcement = phone.url.split("/family/announcements/")[1].split("?")[0]
    await phone.goto(f"/public/announcements/{announcement}")
    assert phone.url.endswith(f"/family/announcements/{announcement}")
    await phone.goto("/family?lang=en")
    assert "Family-search announcements" in await phone.inner_text("h1")


async def test_announcement_count_is_singular_for_one(phone):
    await _publish(await _case(sex="male", estimated_age=60), found_place="城西区", name="甲")
    await AnnouncementListPage(phone).open("?lang=en")
    assert await phone.inner_text("#count") == "1 announcement"
    await AnnouncementListPage(phone).open()
    assert await phone.inner_text("#count") == "共 1 条公告"
    await _publish(await _case(sex="male", estimated_age=61), found_place="城东区", name="乙")
    # Another address: the list is cached for a minute (Cache-Control), this one is not.
    await AnnouncementListPage(phone).open("?lang=en&sex=male")
    assert await phone.inner_text("#count") == "2 announcements"


async def test_list_page_is_small_without_photos(phone):
    for n in range(20):
        case = await _case(sex="male", estimated_age=40 + n, dialect="河南话")
        await _publish(case, found_place=f"城西区 第{n}路", physical_features="左眉上有疤，" * 30)
    response = await phone.goto("/family")
    html = await response.body()
    css = await (await phone.request.get("/static/app/public.css")).body()
    scripts = await phone.eval_on_selector_all("script", "els => els.length")
    assert scripts == 0
    assert len(html) + len(css) < 100_000, (len(html), len(css))
    assert {"public", "max-age=60"} == {
        part.strip() for part in response.headers["cache-control"].split(",")
    }
    print(f"list page: {len(html)} B HTML + {len(css)} B CSS for 20 announcements")


async def test_request_with_photos_then_status_then_staff_accepts_and_it_matches(
    phone, browser, live_server
):
    from rescue.matching.tables import Candidate

    in_care = await _case(sex="male", estimated_age=60)
    await _photo(in_care, OBAMA_A)
    form = await (await SearchRequestFormPage(phone).open()).fill(
        missing_name="张建国",
        sex="male",
        missing_since="2019-04-01",
        last_seen_place="火车站",
        description="<script>alert('x')</script> 左手有疤",
        dialect="四川话",
        relation="儿子",
        reporter_contact="138 1234 5678",
    )
    await form.attach(str(FACES_DIR / OBAMA_B), str(FACES_DIR / BIDEN))
    await form.consent()
    await form.submit()
    code = await form.tracking_code()
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", code)
    status = RequestStatusPage(phone)
    await status.check(code)
    assert await status.status() == "received"
    text = await status.main_text()
    assert "张建国" not in text
    assert "138" not in text
    assert await Candidate.count() == 0  # nothing matched before acceptance

    context = await browser.new_context(base_url=live_server, locale="zh-CN")
    staff = await context.new_page()
    try:
        username, password = await make_user("station_staff", "north")
        await (await LoginPage(staff).open()).log_in(username, password)
        moderation = ModerationPage(staff)
        await moderation.open_first_in_queue()
        # The script arrives as text, never as markup.
        description = await staff.inner_text("[data-field=description]")
        assert "<script>alert('x')</script>" in description
        assert await staff.locator("#request-fields script").count() == 0
        assert "138 1234 5678" in await staff.inner_text("[data-field=reporter_contact]")
        assert await staff.locator("#request-photos img").count() == 2
        await moderation.decide("reject")  # no reason: refused
        assert await moderation.status() == "received"
        await moderation.decide("more_info", "请补充近期照片")
        assert await moderation.status() == "more_info"
        await status.check(code)
        assert await status.status() == "more_info"
        assert "请补充近期照片" in await status.main_text()
        await moderation.decide("accept")
        assert await moderation.status() == "registered"
    finally:
        await context.close()
    await status.check(code)
    assert await status.status() == "registered"

    async def matched() -> Any:
        return await Candidate.select().where(Candidate.case == in_care).first()

    candidate = await _wait(matched)
    assert candidate["notice"] is not None


async def test_no_consent_no_image_and_wrong_code(phone):
    from rescue.family_requests.tables import SearchRequest

    form = await (await SearchRequestFormPage(phone).open()).fill(
        missing_name="王五",
        reporter_contact="12",  # too short to call back
    )
    assert await phone.get_attribute("#f-reporter_contact", "type") == "tel"  # number pad
    # Everything wrong at once, listed at the top where the phone reloads.
    await form.attach(str(FACES_DIR / OBAMA_A))
    await form.consent(personal=False, face=False)
    await form.submit()
    problems = phone.locator("#form-problems")
    assert await problems.is_visible()
    top = await problems.bounding_box()
    assert top is not None
    assert top["y"] < 844  # on the first screen of a 390×844 phone
    assert await problems.locator("a[href='#f-reporter_contact']").count() == 1
    assert await problems.locator("a[href='#f-consent_personal']").count() == 1
    assert await problems.locator("a[href='#f-consent_face']").count() == 1
    assert "重新选择" in await phone.inner_text("#photos-again")
    await form.fill(reporter_contact="139 0000 1111")
    await form.attach(str(FACES_DIR / OBAMA_A))
    await form.consent(personal=True, face=False)
    await form.submit()
    assert "单独同意" in await form.field_error("consent_face")
    assert await phone.input_value("#f-missing_name") == "王五"
    await phone.set_input_files(
        "#f-photos",
        files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"%PDF-1.4 not a photo"}],
    )
    await form.consent()
    await form.submit()
    assert "无法使用" in await form.field_error("photos")
    assert await SearchRequest.count() == 0

    status = RequestStatusPage(phone)
    await status.check("")  # said in Chinese by the station, not the browser's bubble
    assert await phone.inner_text("#status-error") == "请输入登记时得到的查询码。"
    await status.check("x" * 22)
    assert "没有与此查询码对应的登记" in await phone.inner_text("#status-error")
    assert await phone.locator("#status").count() == 0


async def test_empty_request_gets_the_chinese_errors_next_to_the_fields(phone):
    """The browser's own (English) "Please fill out this field." bubble never
    stops the submit: the form is sent and the station's errors stand next to
    each field, on the phone."""
    from rescue.family_requests.tables import SearchRequest

    form = await (await SearchRequestFormPage(phone).open()).fill()
    assert await phone.get_attribute("#request", "novalidate") is not None
    await form.submit()  # would wait for a navigation that never comes
    assert await form.field_error("missing_name") == "此项必填。"
    assert await form.field_error("reporter_contact") == "此项必填。"
    for name in ("missing_name", "reporter_contact"):
        marked = await phone.locator(f"#f-{name}").evaluate(
            "el => el.parentElement.classList.contains('has-error')"
        )
        assert marked, name
    assert await phone.locator("#form-problems a[href='#f-missing_name']").count() == 1
    assert "同意" in await form.field_error("consent_personal")
    assert await SearchRequest.count() == 0


async def test_status_lookups_are_rate_limited(phone):
    from rescue.settings import get_settings

    limit = get_settings().public.lookups_per_hour
    with clock.frozen(datetime(2026, 12, 1, 8, 5, tzinfo=UTC)):
        for _ in range(limit):
            await RequestStatusPage(phone).check("wrong-code-wrong-code-1")
        await RequestStatusPage(phone).check("wrong-code-wrong-code-1")
        assert "尝试次数过多" in await phone.inner_text("#status-error")
        clock.advance(3600)
        await RequestStatusPage(phone).check("wrong-code-wrong-code-1")
        assert "没有与此查询码" in await phone.inner_text("#status-error")


async def test_unpublished_and_closed_case_announcements_are_unreachable(phone):
    import msgspec

    from rescue.announcements.services import unpublish
    from rescue.cases.schemas import TransitionRequest
    from rescue.cases.services import request_transition

    closed = await _case(sex="female", estimated_age=50)
    closed_id = await _publish(closed, await _photo(closed, BIDEN), found_place="城南", name="甲")
    hidden = await _case(sex="female", estimated_age=50)
    hidden_id = await _publish(hidden, found_place="城北", name="乙")
    await unpublish(case_id=hidden, reason="test")
    await request_transition(
        case_id=closed,
        data=msgspec.convert({"to": "deceased", "reason": "病故"}, TransitionRequest),
        by=await _staff(),
    )
    listing = await AnnouncementListPage(phone).open()
    assert await listing.names() == []
    for url in (
        f"/family/announcements/{closed_id}",
        f"/family/announcements/{hidden_id}",
        f"/public/announcements/{closed_id}",
        f"/public/announcements/{closed_id}/photo",
        f"/public/announcements/{closed_id}/photo?size=thumb",
        f"/public/announcements/{hidden_id}",
    ):
        response = await phone.request.get(url)
        assert response.status == 404, url
    # A family following an old link sees the public page, not the staff workbench.
    gone = await phone.goto(f"/family/announcements/{hidden_id}")
    assert gone.status == 404
    assert "工作台" not in await phone.inner_text("body")
    assert await phone.locator("a[href='/family']").count() >= 1
    assert "甲" not in await (await phone.request.get("/public/announcements")).text()


async def test_family_answers_more_information_on_the_phone_and_staff_see_the_thread(
    phone, browser, live_server
):
    import msgspec

    from rescue.audit.tables import AuditRecord
    from rescue.family_requests import services
    from rescue.family_requests.schemas import DecisionIn, SearchRequestIn
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    settings = get_settings()
    done = await services.submit(
        data=msgspec.convert(
            {
                "missing_name": "赵六",
                "reporter_contact": "137 5555 0000",
                "description": "第一行\n第二行",
                "consent_personal": True,
                "consent_face": True,
            },
            SearchRequestIn,
        ),
        photos=[(photo(OBAMA_A), None)],
        address="192.0.2.1",
        store=get_store(),
        upload=settings.upload,
        public=settings.public,
    )

    async def no_enqueue(photo_id: int) -> None:
        raise AssertionError("nothing is matched before acceptance")

    await services.decide(
        request_id=done.id,
        data=DecisionIn(decision="more_info", message="请补充一张近照"),  # type: ignore[arg-type]
        by=await _staff(),
        store=get_store(),
        upload=settings.upload,
        enqueue=no_enqueue,
    )
    status = RequestStatusPage(phone)
    await status.check(done.code)
    assert await status.status() == "more_info"
    assert "请补充一张近照" in await status.main_text()
    await phone.screenshot(path="tests/browser/artifacts/status-reply.png", full_page=True)
    # Photos without the separate consent: refused next to the field, text kept.
    await status.answer("这是近照", str(FACES_DIR / OBAMA_B), consent=False)
    assert "单独同意" in await phone.inner_text("#e-consent_face")
    assert await phone.input_value("#reply-form #f-message") == "这是近照"
    await status.answer("<b>去年</b>拍的\n在火车站", str(FACES_DIR / OBAMA_B))
    assert await phone.locator("#reply-sent").count() == 1
    assert await status.status() == "under_review"
    assert await phone.locator("#reply-form").count() == 0
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]

    context = await browser.new_context(base_url=live_server, locale="zh-CN")
    staff = await context.new_page()
    try:
        username, password = await make_user("station_staff", "north")
        await (await LoginPage(staff).open()).log_in(username, password)
        await staff.goto("/search-requests")
        row = staff.locator(f"#queue tr[data-id='{done.id}']")
        assert await row.locator("[data-answered]").count() == 1
        assert "第一行" not in await staff.inner_text("#queue")  # no description in the list
        await ModerationPage(staff).open_first_in_queue()
        messages = staff.locator("#thread li")
        assert await messages.count() == 2
        assert await messages.nth(0).get_attribute("data-author") == "staff"
        assert await messages.nth(1).get_attribute("data-author") == "family"
        answer = messages.nth(1).locator("[data-field=message]")
        assert await answer.inner_text() == "<b>去年</b>拍的\n在火车站"  # as text, lines kept
        assert await messages.nth(1).locator("b").count() == 0
        assert await messages.nth(1).locator("img").count() == 1
        # The .pre style of the app's stylesheet keeps the family's line breaks.
        white_space = await answer.evaluate("el => getComputedStyle(el).whiteSpace")
        assert white_space == "pre-wrap"
        description = staff.locator("[data-field=description]")
        assert await description.evaluate("el => getComputedStyle(el).whiteSpace") == "pre-wrap"
        assert await description.inner_text() == "第一行\n第二行"
        assert await staff.locator("#request-photos img").count() == 2
        reads = await AuditRecord.select(AuditRecord.route, AuditRecord.username).where(
            (AuditRecord.kind == "read") & (AuditRecord.resource_id == str(done.id))
        )
        assert {"route": "/search-requests/{request_id}", "username": username} in reads
        await staff.screenshot(path="tests/browser/artifacts/moderation-thread.png", full_page=True)
    finally:
        await context.close()
