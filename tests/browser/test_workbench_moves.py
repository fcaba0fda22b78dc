"""The station's remaining moves in a real browser, in Chinese (issue 10): correct
the record, end a placement, unpublish an announcement, the police liaison's task
and DNA result, the reviewer taking a candidate on. (The phone navigation is
checked in test_staff_layout.)

The records each test starts from are made with the services (what is tested is
the page of the move, not how the record came to be); the moves themselves are
made by clicking."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from rescue import clock
from tests.browser.conftest import make_user
from tests.browser.pages import CasePage, LoginPage
from tests.browser.test_workbench import _logged_in


@pytest.fixture
def station_morning():
    """09:00 CST on 2 December 2026: dates typed below fall inside the case's stay."""
    with clock.frozen(datetime(2026, 12, 2, 1, 0, tzinfo=UTC)):
        yield


async def _principal(role: str) -> Any:
    from rescue.users.services import Principal, create_user
    from rescue.users.tables import Role

    name = f"setup-{role}-{secrets.token_hex(3)}"
    user_id = await create_user(username=name, role=role, station="north")
    return Principal(user_id=user_id, username=name, role=Role(role), station="north")


async def _case(**fields: Any) -> int:
    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import create_case

    staff = await _principal("station_staff")
    case = await create_case(
        data=CaseCreate(estimated_age=50, found_place="G318", **fields), by=staff
    )
    return case.id


async def test_correct_the_record_with_errors_in_chinese(page, station_morning):
    case_id = await _case(reported_name="张三")
    await _logged_in(page)
    await CasePage(page).open(case_id)
    async with page.expect_navigation():
        await page.click("#edit-case")
    await page.fill("#f-height_cm", "300")
    await page.fill("#f-reason", "重新测量")
    async with page.expect_navigation():
        await page.click("#assessment-form button[type=submit]")
    assert await page.inner_text("#e-height_cm") == "不得大于 250。"
    assert await page.input_value("#f-height_cm") == "300"  # what was typed is kept
    assert await page.input_value("#f-reason") == "重新测量"
    await page.fill("#f-height_cm", "168")
    await page.fill("#f-birth_date_estimate", "1976-05-01")
    await page.check("#f-lacks_capacity")
    async with page.expect_navigation():
        await page.click("#assessment-form button[type=submit]")
    assert page.url.endswith(f"/cases/{case_id}#details")
    details = await page.inner_text("#details")
    for shown in ("168", "1976-05-01", "只能交由监护人"):
        assert shown in details

    await page.goto(f"/cases/{case_id}/edit")
    await page.fill("#f-id_number", "51010019760501")  # too short
    await page.fill("#f-confirmed_name", "张三丰")
    async with page.expect_navigation():
        await page.click("#identity-form button[type=submit]")
    assert "18位公民身份号码" in await page.inner_text("#e-id_number")
    assert await page.input_value("#f-confirmed_name") == "张三丰"
    await page.fill("#f-id_number", "51010019760501001X")
    async with page.expect_navigation():
        await page.click("#identity-form button[type=submit]")
    assert await page.inner_text("#e-id_reason") == "此项必填。"
    await page.fill("#f-id_reason", "派出所核实")
    async with page.expect_navigation():
        await page.click("#identity-form button[type=submit]")
    assert "张三丰" in await page.inner_text("#details")
    assert "派出所核实" in await page.inner_text("#timeline")


async def test_end_a_placement(page, station_morning):
    from rescue.placements.schemas import PlacementCreate
    from rescue.placements.services import create_placement
    from rescue.placements.tables import PlacementKind

    case_id = await _case()
    staff = await _principal("station_staff")
    clock.advance(3600)
    await create_placement(
        case_id=case_id,
        data=PlacementCreate(kind=PlacementKind.general_hospital, facility="市第一人民医院"),
        by=staff,
    )
    clock.advance(3600)  # 11:00 CST
    await _logged_in(page)
    await CasePage(page).open(case_id)
    await page.click("#placement-end summary")
    await page.fill("#end-ended_at", "2026-12-02T15:00")  # later than now
    await page.fill("#end-reason", "出院")
    async with page.expect_navigation():
        await page.click("#placement-end-form button[type=submit]")
    assert "不晚于现在" in await page.inner_text("#placement-end")
    assert await page.input_value("#end-reason") == "出院"
    await page.fill("#end-ended_at", "2026-12-02T10:30")
    async with page.expect_navigation():
        await page.click("#placement-end-form button[type=submit]")
    assert "2026-12-02 10:30" in await page.inner_text("#placements")
    assert await page.locator("#placement-end").count() == 0  # nothing left to end


async def test_unpublish_takes_the_public_page_down(page, station_morning):
    from rescue.announcements.schemas import AnnouncementIn
    from rescue.announcements.services import publish

    case_id = await _case()
    announcement = await publish(
        case_id=case_id,
        data=AnnouncementIn(found_place="火车站附近"),
        by=await _principal("station_staff"),
    )
    public = f"/family/announcements/{announcement.id}"
    assert (await page.request.get(public)).status == 200
    await _logged_in(page)
    await CasePage(page).open(case_id)
    await page.click("#unpublish summary")
    await page.fill("#unpublish-reason", "家属要求撤下")
    async with page.expect_navigation():
        await page.click("#unpublish-form button[type=submit]")
    assert "未发布" in await page.inner_text("#announcement")
    assert (await page.request.get(public)).status == 404
    assert (await page.request.get(f"/api/public/announcements/{announcement.id}")).status == 404


async def test_police_liaison_completes_a_task_and_records_a_dna_result(page, station_morning):
    from rescue.escorts.tables import LiaisonTask, TaskKind
    from rescue.searches.schemas import DnaRequestCreate
    from rescue.searches.services import record_dna_request

    case_id = await _case()
    await LiaisonTask.insert(
        LiaisonTask(case=case_id, kind=TaskKind.cancel_collective_household.value, note="")
    )
    request = await record_dna_request(
        case_id=case_id,
        data=DnaRequestCreate(requested_on=clock.today(), police_unit="市公安局刑侦支队"),
        by=await _principal("station_staff"),
    )
    await _logged_in(page, role="police_liaison")
    await CasePage(page).open(case_id)
    await page.fill("[id^=task-note-]", "户籍科已注销")
    async with page.expect_navigation():
        await page.click("[id^=task-done-] button[type=submit]")
    assert await page.get_attribute("#handovers .task", "data-done") == "yes"
    assert await page.locator("[id^=task-done-]").count() == 0

    action = request.id
    await page.click(f"#dna-result-{action} summary")
    await page.fill(f"#dna-{action}-result_on", "2026-12-05")  # after today
    await page.fill(f"#dna-{action}-result", "比中，亲子关系成立")
    async with page.expect_navigation():
        await page.click(f"#dna-result-form-{action} button[type=submit]")
    assert "晚于" in await page.inner_text(f"#e-dna-{action}-result_on")
    assert await page.input_value(f"#dna-{action}-result") == "比中，亲子关系成立"
    await page.fill(f"#dna-{action}-result_on", "2026-12-02")
    async with page.expect_navigation():
        await page.click(f"#dna-result-form-{action} button[type=submit]")
    assert "比中，亲子关系成立" in await page.inner_text("#search-actions")
    assert await page.locator(f"#dna-result-form-{action}").count() == 0


async def _police_candidate(case_id: int) -> int:
    from rescue.matching.ledger import submit_candidate
    from rescue.matching.tables import EvidenceKind
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from tests.browser.test_review import _notice

    detail, _new = await submit_candidate(
        kind=EvidenceKind.police_face,
        values={"score": 0.93, "system": "公安人像比对系统", "report_number": "GA-2026-7"},
        by=await _principal("police_liaison"),
        store=get_store(),
        limits=get_settings().upload,
        settings=get_settings(),
        case_id=case_id,
        notice_id=await _notice(),
    )
    return detail.candidate.id


async def _border(page: Any, selector: str) -> str:
    return str(await page.eval_on_selector(selector, "el => getComputedStyle(el).borderColor"))


async def test_reviewer_takes_a_candidate_on_and_sees_only_allowed_moves(page, station_morning):
    from rescue.cases.tables import Sex

    candidate_id = await _police_candidate(await _case(sex=Sex.male))
    username, password = await make_user("reviewer")
    await (await LoginPage(page).open(f"/candidates/{candidate_id}")).log_in(username, password)

    evidence = await page.inner_text("#evidence")
    for raw in ("score:", "system:", "report_number:"):
        assert raw not in evidence
    assert "比对系统：公安人像比对系统" in evidence
    assert "报告编号" in evidence
    assert "性别" in await page.inner_text("#score-components")
    # start, reject: confirming waits for a family confirmation (the page says so)
    assert await page.locator("#decide form").count() == 2
    assert await page.locator("#confirm-needs-family").count() == 1

    async with page.expect_navigation():
        await page.click("#decide-start_review button[type=submit]")
    assert await page.inner_text("#e-reason-start_review") == "此项必填。"  # the reason
    # Marked like every other form's field: in red, only the one that was sent.
    assert await page.locator("#decide-start_review .has-error #reason-start_review").count() == 1
    assert await page.locator("#decide-reject .has-error").count() == 0
    assert await _border(page, "#reason-start_review") != await _border(page, "#reason-reject")
    await page.fill("#reason-start_review", "由我审核")
    async with page.expect_navigation():
        await page.click("#decide-start_review button[type=submit]")
    assert await page.inner_text("#candidate-status") == "审核中"
    assert await page.locator("#decide-start_review").count() == 0

    await page.fill("#f-confirmer_name", "李大妈")
    await page.fill("#f-relationship", "母亲")
    async with page.expect_navigation():
        await page.click("#family-form button[type=submit]")
    await page.fill("#reason-confirm", "视频确认")
    async with page.expect_navigation():
        await page.click("#decide-confirm button[type=submit]")
    assert await page.inner_text("#candidate-status") == "已确认"
    assert await page.locator("#decide").count() == 0  # no decision is left
    # A further family confirmation (the visit) is still allowed, not offered first.
    assert not await page.is_visible("#family-form")


async def test_review_queue_says_what_each_empty_section_lacks(page, station_morning):
    from rescue.cases.tables import Sex

    await _police_candidate(await _case(sex=Sex.male))
    username, password = await make_user("reviewer")
    await (await LoginPage(page).open("/review")).log_in(username, password)
    assert await page.locator("#proposed table.queue tr").count() == 2  # header + 1
    assert await page.locator("#proposed .empty").count() == 0
    assert await page.inner_text("#in-review .empty") == "没有审核中的候选。"
    await page.goto("/review?lang=en")
    assert await page.inner_text("#in-review .empty") == "No candidate is under review."
