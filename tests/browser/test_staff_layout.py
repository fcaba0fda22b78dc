"""Staff pages read like the rest of the workbench, on a desk and on a phone
(fresh-user trial): the moderation page of an online search request laid out as
the other staff detail pages, and the case's candidate list readable at 390 px.

What is checked is the layout the browser actually draws (boxes and computed
styles), so a page that loses the workbench's components fails here; each test
saves screenshots under /tmp for a person to look at."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rescue import clock
from tests.browser.conftest import make_user
from tests.browser.pages import CasePage, LoginPage
from tests.browser.test_workbench_moves import _case, _police_candidate, _principal
from tests.support import OBAMA_A, OBAMA_B, photo

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
SHOTS = Path("/tmp/rescue-screens")
#: The phone-polish pictures (the staff menu, the placements), before and after.
PHONE_SHOTS = Path("/tmp/phone-polish")


@pytest.fixture
def station_morning():
    """09:00 CST on 2 December 2026 (timestamps on the pages do not follow the wall clock)."""
    with clock.frozen(datetime(2026, 12, 2, 1, 0, tzinfo=UTC)):
        yield


async def _context(browser: Any, live_server: str, viewport: dict[str, int]) -> Any:
    context = await browser.new_context(
        base_url=live_server,
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN"},
        viewport=viewport,
        is_mobile=viewport is PHONE,
        has_touch=viewport is PHONE,
    )
    context.set_default_timeout(20_000)
    return context


@contextlib.asynccontextmanager
async def _signed_in(
    browser: Any,
    live_server: str,
    viewport: dict[str, int],
    username: str,
    password: str,
    path: str = "/",
) -> AsyncIterator[Any]:
    """A page at ``viewport`` signed in as ``username``, on ``path``; its browser
    context closed afterwards."""
    context = await _context(browser, live_server, viewport)
    try:
        page = await context.new_page()
        await (await LoginPage(page).open(path)).log_in(username, password)
        yield page
    finally:
        await context.close()


async def _shot(page: Any, name: str) -> None:
    # (Playwright makes the folder.)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _request_waiting_for_more_information() -> int:
    """A family's request with a photo, asked for more information, answered with a
    second photo (the services, as the family's phone would through the public pages)."""
    import msgspec

    from rescue.family_requests import services
    from rescue.family_requests.schemas import DecisionIn, ReplyIn, SearchRequestIn
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    settings = get_settings()
    done = await services.submit(
        data=msgspec.convert(
            {
                "missing_name": "赵六",
                "sex": "male",
                "age_when_missing": 67,
                "missing_since": "2025-10-03",
                "last_seen_place": "县城汽车站",
                "description": "身高约一米七\n左手有疤，说四川话",
                "dialect": "四川话",
                "relation": "儿子",
                "reporter_name": "赵小明",
                "reporter_contact": "137 5555 0000",
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
        by=Principal(user_id=0, username="t", role=Role.station_staff, station="north"),
        store=get_store(),
        upload=settings.upload,
        enqueue=no_enqueue,
    )
    await services.reply(
        data=ReplyIn(code=done.code, message="这是去年拍的", consent_face=True),
        photos=[(photo(OBAMA_B), None)],
        address="192.0.2.1",
        store=get_store(),
        upload=settings.upload,
        public=settings.public,
    )
    return int(done.id)


#: The moderation page's layout as drawn: facts beside their labels, every block a
#: card with a heading, the status a badge in the heading, the form stacked.
_LAYOUT = """() => {
    const box = el => el.getBoundingClientRect();
    const rows = [...document.querySelectorAll('#request-fields tr')].map(tr => {
        const th = box(tr.querySelector('th')), td = box(tr.querySelector('td'));
        // The label's text, not its cell (a cell is as tall as its row).
        const text = document.createRange();
        text.selectNodeContents(tr.querySelector('th'));
        const line = parseFloat(getComputedStyle(tr.querySelector('th')).lineHeight);
        return {label: tr.querySelector('th').innerText, sameLine: Math.abs(th.top - td.top) < 2,
                beside: td.left >= th.right - 1,
                oneLine: text.getBoundingClientRect().height < 1.5 * line};
    });
    const cards = [...document.querySelectorAll('main section')].map(s => ({
        id: s.id, card: s.classList.contains('card'),
        background: getComputedStyle(s).backgroundColor,
        border: getComputedStyle(s).borderTopStyle,
        heading: !!s.querySelector(':scope > h2'),
    }));
    const badge = document.querySelector('#request-status');
    const label = box(document.querySelector('#decision-form label[for=f-message]'));
    const text = box(document.querySelector('#f-message'));
    const buttons = [...document.querySelectorAll('#decision-form button')].map(box);
    return {
        rows, cards,
        badgeInHeading: !!badge.closest('h1'),
        badgeBackground: getComputedStyle(badge).backgroundColor,
        labelAbove: label.bottom <= text.top + 1,
        buttonsBelow: buttons.every(b => b.top >= text.bottom - 1),
        photoWidths: [...document.querySelectorAll('#request-photos img')].map(i => box(i).width),
        photosSideBySide: new Set([...document.querySelectorAll('#request-photos img')]
            .map(i => Math.round(box(i).top))).size === 1,
        pageWidth: document.documentElement.scrollWidth,
    };
}"""


async def test_moderation_page_is_laid_out_like_the_other_staff_pages(
    browser, live_server, station_morning
):
    request_id = await _request_waiting_for_more_information()
    username, password = await make_user("station_staff", "north")
    for viewport, name in ((DESK, "moderation-desk"), (PHONE, "moderation-phone")):
        async with _signed_in(
            browser, live_server, viewport, username, password, f"/search-requests/{request_id}"
        ) as page:
            assert page.url.endswith(f"/search-requests/{request_id}"), page.url
            await page.wait_for_function(
                "[...document.querySelectorAll('#request-photos img')]"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
            layout = await page.evaluate(_LAYOUT)
            await _shot(page, name)
            # Every fact sits on the line of its label, to its right (not a list of
            # labels with the values indented below them), each label on one line.
            labels = [r["label"] for r in layout["rows"]]
            assert {"姓名", "描述", "联系方式", "同意处理人脸信息"} <= set(labels), labels
            for row in layout["rows"]:
                assert row["sameLine"], (name, row)
                assert row["beside"], (name, row)
                assert row["oneLine"], (name, row)
            # Every block is a white card with a heading of its own.
            cards = {c["id"]: c for c in layout["cards"]}
            assert {"missing-person", "reporter", "photos", "thread", "moderate"} <= set(cards)
            for card in layout["cards"]:
                assert card["card"], (name, card)
                assert card["heading"], (name, card)
                assert card["background"] == "rgb(255, 255, 255)", (name, card)
                assert card["border"] == "solid", (name, card)
            assert layout["badgeInHeading"]
            assert layout["badgeBackground"] not in ("rgba(0, 0, 0, 0)", "transparent")
            assert await page.inner_text("#request-status") == "审核中"  # the family answered
            # The moderation form reads top to bottom: the label, the message, the steps.
            assert layout["labelAbove"], layout
            assert layout["buttonsBelow"], layout
            # The family's photos side by side at a size to compare, not page-wide.
            assert len(layout["photoWidths"]) == 2
            assert all(0 < w <= 200 for w in layout["photoWidths"]), layout["photoWidths"]
            assert layout["photosSideBySide"], (name, layout)
            assert layout["pageWidth"] <= viewport["width"], (name, layout["pageWidth"])
            assert await page.inner_text("[data-field=relation]") == "儿子"
            # a fact the family left out says so instead of an empty cell
            assert await page.inner_text("[data-field=date_of_birth]") == "未填写"
            assert await page.locator("a[href='/search-requests']").count() >= 2  # nav + back


#: The candidate list's labels as drawn: their heights against the text's line
#: height, and how wide the explanation may be.
_CANDIDATES = """() => {
    const list = document.querySelector('#candidate-list');
    const visible = el => el.getClientRects().length > 0;
    const labels = [...list.querySelectorAll('th, .cell-label')].filter(visible).map(el => {
        const style = getComputedStyle(el);
        return {text: el.innerText, height: el.getBoundingClientRect().height,
                line: parseFloat(style.lineHeight)};
    });
    const why = [...list.querySelectorAll('tr')].at(-1).lastElementChild;  // 依据
    return {labels, whyWidth: why.getBoundingClientRect().width,
            listWidth: list.getBoundingClientRect().width,
            pageWidth: document.documentElement.scrollWidth};
}"""


async def test_case_candidates_are_readable_on_a_phone_and_a_desk(
    browser, live_server, station_morning
):
    from rescue.cases.tables import Sex

    case_id = await _case(sex=Sex.male)
    candidate_id = await _police_candidate(case_id)
    username, password = await make_user("station_staff", "north")
    for viewport, name in ((PHONE, "case-candidates-phone"), (DESK, "case-candidates-desk")):
        async with _signed_in(
            browser, live_server, viewport, username, password, f"/cases/{case_id}"
        ) as page:
            await CasePage(page).open(case_id)
            await page.locator("#candidate-list").scroll_into_view_if_needed()
            sizes = await page.evaluate(_CANDIDATES)
            await _shot(page, name)
            await page.locator("#candidate-list").screenshot(path=str(SHOTS / f"{name}-list.png"))
            texts = {label["text"] for label in sizes["labels"]}
            # The names of the columns are shown (as headers or beside each value) ...
            assert {"寻人启事", "状态", "得分", "依据"} <= texts, texts
            # ... each on one line, never one character per line.
            for label in sizes["labels"]:
                assert label["height"] < 1.5 * label["line"], (name, label)
            # The explanation gets most of the width, and nothing runs off the screen.
            if viewport is PHONE:
                assert sizes["whyWidth"] >= 0.5 * sizes["listWidth"], sizes
            assert sizes["pageWidth"] <= viewport["width"], (name, sizes)
            compare = page.locator(f"#candidate-list a[href='/candidates/{candidate_id}']")
            assert await compare.count() == 1


#: The staff menu as drawn: every item inside the viewport and not covered, the
#: menu itself not scrolling sideways, how many rows it takes.
_MENU = """() => {
    const nav = document.querySelector('header.top nav');
    const links = [...nav.querySelectorAll('a')].map(a => {
        const r = a.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return {text: a.innerText, left: r.left, right: r.right, top: Math.round(r.top),
                height: r.height, onTop: !!hit && (hit === a || a.contains(hit))};
    });
    const page = document.scrollingElement;
    return {links, viewport: window.innerWidth,
            navScroll: nav.scrollWidth, navClient: nav.clientWidth,
            rows: new Set(links.map(l => l.top)).size,
            header: document.querySelector('header.top').getBoundingClientRect().height,
            pageScroll: page.scrollWidth, pageClient: page.clientWidth};
}"""


async def test_the_whole_staff_menu_is_in_view_on_a_phone(browser, live_server):
    """Fresh-user trial: the menu scrolled sideways on a phone with nothing to say
    that more items hid to the right. It wraps instead: every item in view."""
    username, password = await make_user("admin")  # the longest menu
    for viewport, name in ((PHONE, "menu-phone"), ({"width": 360, "height": 740}, "menu-360")):
        async with _signed_in(browser, live_server, viewport, username, password) as page:
            menu = await page.evaluate(_MENU)
            await _shot(page, name)
            await page.screenshot(path=str(PHONE_SHOTS / f"{name}.png"))
            texts = [link["text"] for link in menu["links"]]
            assert {"今日工作", "受助人员", "统计", "用户管理"} <= set(texts), texts
            for link in menu["links"]:
                # inside the screen, and nothing (a scroll edge, the account) over it
                assert link["left"] >= 0, (name, link)
                assert link["right"] <= menu["viewport"], (name, link)
                assert link["onTop"], (name, link)
            # The menu does not scroll sideways: nothing hidden to reach by swiping.
            assert menu["navScroll"] <= menu["navClient"], (name, menu)
            assert menu["pageScroll"] <= menu["pageClient"], (name, menu)
            # Wrapped, but still a short header: the admin's 15 items in a few rows.
            assert menu["rows"] <= 4, (name, menu["rows"])
            await page.click("header.top nav a[href='/stats']")  # the last item
            assert page.url.endswith("/stats")


async def _case_with_placements() -> int:
    """Admitted at 09:00 (站内), in hospital from 10:00 with its admission paper,
    back in the station from 11:00 (the current placement, open to documents)."""
    from rescue.placements.schemas import PlacementCreate
    from rescue.placements.services import add_document, create_placement
    from rescue.placements.tables import PlacementKind
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    case_id = await _case()
    staff = await _principal("station_staff")
    clock.advance(3600)
    hospital = await create_placement(
        case_id=case_id,
        data=PlacementCreate(kind=PlacementKind.general_hospital, facility="市第一人民医院"),
        by=staff,
    )
    await add_document(
        placement_id=hospital.id,
        title="入院证明",
        data=photo(OBAMA_A),
        by=staff,
        store=get_store(),
        limits=get_settings().upload,
    )
    clock.advance(3600)
    await create_placement(
        case_id=case_id,
        data=PlacementCreate(kind=PlacementKind.in_station, facility="north"),
        by=staff,
    )
    return case_id


#: The placements as drawn: how many lines each placement's kind takes, the width
#: of the document picker.
_PLACEMENTS = """() => {
    const section = document.querySelector('#placements');
    const rows = [...section.querySelectorAll('table tr')].filter(tr => tr.querySelector('td'));
    const lines = el => {
        // the kind's own words (not a column name shown beside it)
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        const tops = new Set();
        let text = '';
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            if (!n.textContent.trim() || n.parentElement.closest('.cell-label')) continue;
            text += n.textContent.trim();
            const range = document.createRange();
            range.selectNodeContents(n);
            for (const r of range.getClientRects()) tops.add(Math.round(r.top));
        }
        return {text, lines: tops.size};
    };
    const kinds = rows.map(tr => lines(tr.querySelector('td')));
    const file = section.querySelector('input[type=file]');
    const page = document.scrollingElement;
    return {kinds, fileWidth: file.getBoundingClientRect().width,
            sectionRight: section.getBoundingClientRect().right, viewport: window.innerWidth,
            pageScroll: page.scrollWidth, pageClient: page.clientWidth};
}"""


async def test_case_placements_are_readable_on_a_phone_and_a_desk(
    browser, live_server, station_morning
):
    case_id = await _case_with_placements()
    username, password = await make_user("station_staff", "north")
    for viewport, name in ((PHONE, "placements-phone"), (DESK, "placements-desk")):
        async with _signed_in(
            browser, live_server, viewport, username, password, f"/cases/{case_id}"
        ) as page:
            await CasePage(page).open(case_id)
            await page.locator("#placements").scroll_into_view_if_needed()
            drawn = await page.evaluate(_PLACEMENTS)
            await _shot(page, name)
            await page.locator("#placements").screenshot(path=str(PHONE_SHOTS / f"{name}.png"))
            assert [k["text"] for k in drawn["kinds"]] == ["站内", "综合医院", "站内"], drawn
            for kind in drawn["kinds"]:
                assert kind["lines"] == 1, (name, kind)  # 站内 on one line
            assert drawn["fileWidth"] >= 150, (name, drawn)  # a picker one can tap
            assert drawn["sectionRight"] <= drawn["viewport"], (name, drawn)
            assert drawn["pageScroll"] <= drawn["pageClient"], (name, drawn)
            assert await page.locator("#placements a", has_text="入院证明").count() == 1
            assert await page.locator("#placement-end").count() == 1  # the current one


async def test_my_account_and_log_out_stand_apart(browser, live_server):
    """Fresh-user trial: 我的账户 sat flush against the 退出登录 button."""
    username, password = await make_user("station_staff")
    for viewport in (DESK, PHONE):
        async with _signed_in(browser, live_server, viewport, username, password) as page:
            account = await page.locator("header.top .who a[href='/account']").bounding_box()
            logout = await page.locator("header.top .who button").bounding_box()
            assert account is not None
            assert logout is not None
            gap = logout["x"] - (account["x"] + account["width"])
            assert gap >= 10, (viewport, account, logout)
