"""The workbench in a real browser: login, safety, intake with a phone photo, moves."""

from __future__ import annotations

from datetime import UTC, datetime

from rescue import clock
from tests.browser.conftest import make_user
from tests.browser.pages import CasePage, IntakePage, LoginPage
from tests.support import FACES_DIR, OBAMA_A


async def _logged_in(page, role: str = "station_staff", station: str = "north") -> str:
    username, password = await make_user(role, station)
    await (await LoginPage(page).open()).log_in(username, password)
    assert "/login" not in page.url, await page.content()
    return username


async def test_login_failure_then_back_off_then_login(page):
    username, password = await make_user("station_staff")
    login = await LoginPage(page).open()
    with clock.frozen(datetime(2026, 12, 1, 12, tzinfo=UTC)):
        await login.log_in(username, "wrong password!!")
        assert await login.error() == "用户名或密码错误。"
        for _attempt in range(5):  # LOGIN_FREE_ATTEMPTS (5), then back-off starts
            await login.log_in(username, "wrong password!!")
        await login.log_in(username, password)  # even the right password waits
        assert "登录失败次数过多" in await login.error()
        assert await page.input_value("#username") == username  # what was typed is kept
        clock.advance(3600)
        await login.log_in(username, password)
    assert page.url.endswith("/")
    assert await page.inner_text("h1") == "今日工作"


async def test_form_without_csrf_token_is_refused(page):
    await _logged_in(page)
    response = await page.request.post(
        "/cases", form={"sex": "male", "estimated_age": "40", "found_place": "G318"}
    )
    assert response.status == 403
    assert "表单已失效" in await response.text()
    response = await page.request.post(
        "/cases", form={"sex": "male", "_csrf_token": "forged-token-value-1234567890"}
    )
    assert response.status == 403
    from rescue.cases.tables import Case

    assert await Case.count() == 0


async def test_expired_session_returns_to_login_then_back(page):
    with clock.frozen(datetime(2026, 12, 1, 12, tzinfo=UTC)):
        await _logged_in(page)
        intake = await (await IntakePage(page).open()).fill(estimated_age="40")
        await intake.submit()
        case_id = CasePage(page).case_id()
        from rescue.settings import get_settings

        clock.advance(get_settings().web.session_idle_seconds + 1)
        await page.goto(f"/cases/{case_id}")
        assert "/login" in page.url
        assert "会话已结束" in await page.inner_text("main")
        username = await _relogin(page)
        assert username
        assert page.url.endswith(f"/cases/{case_id}")


async def test_a_first_visit_is_not_told_its_session_ended(page):
    await page.goto("/")
    assert "/login" in page.url
    assert "会话已结束" not in await page.inner_text("main")


async def test_an_unknown_address_is_a_chinese_page_not_json(page):
    answer = await page.goto("/no-such-page")
    assert answer.status == 404
    assert "此地址没有内容" in await page.inner_text("main")
    api = await page.request.get("/api/no-such-route")
    assert api.status == 404
    assert api.headers["content-type"].startswith("application/json")


async def _relogin(page) -> str:
    username, password = await make_user("station_staff")
    await LoginPage(page).log_in(username, password)
    return username


async def test_another_stations_case_is_unreachable(page, browser, live_server):
    await _logged_in(page, station="north")
    await (await (await IntakePage(page).open()).fill(reported_name="王北站")).submit()
    case_id = CasePage(page).case_id()
    other = await browser.new_context(base_url=live_server, locale="zh-CN")
    south = await other.new_page()
    try:
        await _logged_in(south, station="south")
        response = await south.goto(f"/cases/{case_id}")
        assert response.status == 403
        body = await south.inner_text("main")
        assert "王北站" not in body
        assert "north" not in body
        assert "不允许" in body or "无权" in body
        await south.goto("/cases?q=王北站")
        assert "王北站" not in await south.inner_text("#case-list")
        photo = await south.request.get(f"/cases/{case_id}/photos/status")
        assert photo.status == 403
    finally:
        await other.close()


async def test_form_error_is_shown_in_chinese_next_to_the_field(page):
    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(
        reported_name="张三", estimated_age="200", found_place="G318 国道"
    )
    await intake.submit()
    assert "不得大于 120" in await intake.field_error("estimated_age")
    assert await page.input_value("#f-reported_name") == "张三"
    assert await page.input_value("#f-found_place") == "G318 国道"
    from rescue.cases.tables import Case

    assert await Case.count() == 0


async def test_intake_on_a_phone_with_a_photo_then_moves(page):
    await page.set_viewport_size({"width": 390, "height": 844})
    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(
        estimated_age="50", found_place="G318 国道 K120 路边", brought_by="巡逻民警"
    )
    await intake.take_photo(str(FACES_DIR / OBAMA_A))
    await intake.submit()
    case = CasePage(page)
    assert await case.status() == "入站"
    statuses = await case.wait_for_photos_processed()
    assert statuses == ["processed"]
    assert await page.locator("#photos-block .face").count() == 1
    image = await page.request.get(
        await page.get_attribute("#photos-block img", "src")  # served by the app
    )
    assert image.status == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert "searching" in await case.moves()
    await case.move("left_self", reason="")  # reason is required
    assert "此项必填" in await page.inner_text("details.move[data-move='left_self']")
    assert await page.inner_text("#e-m-left_self-reason") == "此项必填。"
    assert await page.locator("details.move[data-move='left_self'] .has-error").count() == 1
    await case.move("searching", reason="身份不明")
    assert await case.status() == "寻亲中"
    await page.goto("/")
    assert await page.locator("#alerts a", has_text="").count() >= 1
    # The 3-month settlement date is counted, not listed as today's work.
    alerts = await page.inner_text("#alerts")
    assert "可申请落户安置" not in alerts
    assert "一周以后到期" in alerts


async def test_double_submitted_intake_creates_one_case(page):
    await _logged_in(page)
    await (await IntakePage(page).open()).fill(estimated_age="30", found_place="G318")
    form = await page.eval_on_selector(
        "#intake",
        "f => Object.fromEntries([...new FormData(f).entries()]"
        ".filter(([k, v]) => typeof v === 'string'))",
    )
    first = await page.request.post("/cases", multipart=form)
    second = await page.request.post("/cases", multipart=form)
    assert first.ok
    assert second.ok
    assert first.url == second.url
    from rescue.cases.tables import Case

    assert await Case.count() == 1


async def test_schema_renders_offline(page):
    outside: list[str] = []

    async def block(route):
        if not route.request.url.startswith("http://127.0.0.1"):
            outside.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()

    await page.route("**/*", block)
    await page.goto("/schema")
    await page.wait_for_selector(".swagger-ui .information-container", timeout=30_000)
    assert outside == []


async def test_psychiatric_placement_with_its_document(page):
    await _logged_in(page)
    await (await (await IntakePage(page).open()).fill(estimated_age="35")).submit()
    await page.click("#placement-new summary")
    await page.select_option("#f-kind", "psychiatric_hospital")
    await page.fill("#f-facility", "市第三人民医院")
    await page.fill("#f-reason", "精神症状，需住院治疗")
    await page.fill("#f-document_title", "入院证明")
    from tests.support import OBAMA_B

    await page.set_input_files("#f-document", str(FACES_DIR / OBAMA_B))
    async with page.expect_navigation():
        await page.click("#placement-form button[type=submit]")
    placements = await page.inner_text("#placements")
    assert "精神病医院" in placements
    assert "市第三人民医院" in placements
    link = page.locator("#placements a", has_text="入院证明")
    document = await page.request.get(await link.get_attribute("href"))
    assert document.status == 200
    assert document.headers["content-type"] == "image/jpeg"
