"""Matching filters the reviewer can see and relax per case or notice (issue 16,
"use what staff know"): real photos, the real worker, through the HTTP API and the
reviewer's page. A sex recorded wrongly removes the true pair; the reviewer sees
it counted, relaxes the filter with a reason (audited, on the timeline), the worker
re-matches, and the pair comes back flagged ``sex_mismatch`` and ranked lower;
restoring the filter removes new such pairs again."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.helpers import candidates, new_case, new_notice, upload_file
from tests.support import OBAMA_A, OBAMA_B

PLAUSIBLE = {"missing_since": "2015-03-01", "age_when_missing": 45}


async def _filters(client: Any, headers: dict[str, str], side: str, owner_id: int) -> Any:
    response = await client.get(f"/api/{side}s/{owner_id}/match-filters", headers=headers)
    assert response.status_code == 200, response.text
    (sex,) = response.json()
    assert sex["filter"] == "sex"
    return sex


async def _rematched(client: Any, headers: dict[str, str], side: str, owner_id: int) -> Any:
    """Poll until the worker has re-matched the owner after the last change."""
    from tests.conftest import worker_alive, worker_log

    deadline = time.monotonic() + 90
    while True:
        sex = await _filters(client, headers, side, owner_id)
        if sex["history"] and sex["history"][0]["rematched_at"] is not None:
            return sex
        assert time.monotonic() < deadline, worker_log()[-3000:]
        assert worker_alive(), worker_log()[-3000:]
        await _sleep()


async def _sleep() -> None:
    import anyio

    await anyio.sleep(0.2)


async def _login(client: Any, username: str, password: str) -> str:
    """Sign in a session (the reviewer's pages); returns the CSRF token."""
    await client.get("/login")
    token = client.cookies.get("rescue_csrf")
    assert token
    done = await client.post(
        "/login",
        data={"username": username, "password": password, "next": "/"},
        headers={"x-csrftoken": token},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return str(client.cookies.get("rescue_csrf") or token)


async def _events(side: str, owner_id: int) -> list[dict[str, Any]]:
    if side == "case":
        from rescue.cases.events import CaseEvent

        return list(await CaseEvent.select().where(CaseEvent.case == owner_id))
    from rescue.notices.events import NoticeEvent

    return list(await NoticeEvent.select().where(NoticeEvent.notice == owner_id))


async def test_reviewer_sees_relaxes_and_restores_the_sex_filter_of_a_case(client, staff, reviewer):
    from rescue.audit.tables import AuditRecord

    same_sex = await new_notice(client, staff, sex="male", **PLAUSIBLE)
    await upload_file(client, staff, "notice", same_sex["id"], OBAMA_B)
    recorded_female = await new_notice(client, staff, sex="female", **PLAUSIBLE)
    await upload_file(client, staff, "notice", recorded_female["id"], OBAMA_B)
    case = await new_case(client, staff, sex="male", estimated_age=55)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)

    found = await candidates(client, staff, "case", case["id"])
    assert [c["notice_id"] for c in found] == [same_sex["id"]]
    sex = await _filters(client, reviewer, "case", case["id"])
    assert (sex["removed"], sex["removed_ids"], sex["relaxed"]) == (
        1,
        [recorded_female["id"]],
        False,
    )
    # The notice's side shows the same removed pair.
    notice_side = await _filters(client, reviewer, "notice", recorded_female["id"])
    assert notice_side["removed_ids"] == [case["id"]]

    path = f"/api/cases/{case['id']}/match-filters/sex"
    # Only reviewers relax; a reason is required; unknown filters and actions are named.
    assert (
        await client.post(f"{path}/relax", json={"reason": "x"}, headers=staff)
    ).status_code == 403
    empty = await client.post(f"{path}/relax", json={"reason": ""}, headers=reviewer)
    assert empty.status_code == 400
    assert "reason" in empty.text
    unknown = await client.post(
        f"/api/cases/{case['id']}/match-filters/age/relax", json={"reason": "x"}, headers=reviewer
    )
    assert unknown.status_code == 400
    assert "sex" in unknown.text
    bad_action = await client.post(f"{path}/ignore", json={"reason": "x"}, headers=reviewer)
    assert bad_action.status_code == 400
    assert "restore" in bad_action.text
    not_relaxed = await client.post(f"{path}/restore", json={"reason": "x"}, headers=reviewer)
    assert not_relaxed.status_code == 409

    reason = "sex uncertain: recorded at night intake, not checked"
    relaxed = await client.post(f"{path}/relax", json={"reason": reason}, headers=reviewer)
    assert relaxed.status_code == 200, relaxed.text
    assert relaxed.json()[0]["relaxed"] is True
    again = await client.post(f"{path}/relax", json={"reason": reason}, headers=reviewer)
    assert again.status_code == 409

    sex = await _rematched(client, reviewer, "case", case["id"])
    assert (sex["removed"], sex["relaxed"]) == (0, True)
    assert sex["history"][0]["reason"] == reason
    found = await candidates(client, staff, "case", case["id"])
    assert [c["notice_id"] for c in found] == [same_sex["id"], recorded_female["id"]]
    back = found[1]
    assert "sex_mismatch" in back["flags"]
    assert back["score"] < found[0]["score"]  # same face, ranked lower by its flag
    assert "sex_mismatch" not in found[0]["flags"]

    events = await _events("case", case["id"])
    relaxed_event = next(e for e in events if e["kind"] == "match_filter_relaxed")
    assert relaxed_event["reason"] == reason
    assert relaxed_event["actor_role"] == "reviewer"
    audited = await AuditRecord.select(AuditRecord.status_code).where(
        AuditRecord.path == f"{path}/relax"
    )
    assert sorted(r["status_code"] for r in audited) == [200, 400, 403, 409]

    # Restore: the filter is in force again for later searches; the pair already
    # proposed stays in the ledger with its flag.
    restored = await client.post(
        f"{path}/restore", json={"reason": "sex checked: male"}, headers=reviewer
    )
    assert restored.status_code == 200, restored.text
    sex = await _rematched(client, reviewer, "case", case["id"])
    assert sex["relaxed"] is False
    assert sex["history"][0]["restore_reason"] == "sex checked: male"
    assert "match_filter_restored" in [e["kind"] for e in await _events("case", case["id"])]
    another_female = await new_notice(client, staff, sex="female", **PLAUSIBLE)
    await upload_file(client, staff, "notice", another_female["id"], OBAMA_B)
    found = await candidates(client, staff, "case", case["id"])
    assert another_female["id"] not in {c["notice_id"] for c in found}
    assert recorded_female["id"] in {c["notice_id"] for c in found}
    sex = await _filters(client, reviewer, "case", case["id"])
    # Both are removed from searches again; the one proposed meanwhile stays a candidate.
    assert sex["removed_ids"] == [recorded_female["id"], another_female["id"]]


async def test_relaxing_a_notice_rematches_it_and_the_page_shows_it_in_chinese(
    client, staff, reviewer
):
    case = await new_case(client, staff, sex="male", estimated_age=55)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    notice = await new_notice(client, staff, sex="female", **PLAUSIBLE)
    await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    assert await candidates(client, staff, "notice", notice["id"]) == []

    from tests.browser.conftest import make_user

    base = f"/notices/{notice['id']}/match-filters"
    zh = {"Accept-Language": "zh-CN"}
    try:
        # Staff see the page but not the form.
        await _login(client, *(await make_user("station_staff")))
        staff_page = await client.get(base, headers=zh)
        assert staff_page.status_code == 200, staff_page.text[:500]
        assert "被此筛选排除的配对：1" in staff_page.text
        assert "filter-sex-form" not in staff_page.text
        client.cookies.clear()

        token = await _login(client, *(await make_user("reviewer")))
        form = {**zh, "x-csrftoken": token}
        page = await client.get(base, headers=zh)
        assert "filter-sex-form" in page.text
        # A reason is required: the page says so next to the field, in Chinese.
        empty = await client.post(f"{base}/sex/relax", data={"reason": ""}, headers=form)
        assert empty.status_code == 400, empty.text[:500]
        assert 'role="alert"' in empty.text
        done = await client.post(
            f"{base}/sex/relax",
            data={"reason": "家属报告的性别有误"},
            headers=form,
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text[:500]
        await _rematched(client, reviewer, "notice", notice["id"])
        (candidate,) = await candidates(client, staff, "notice", notice["id"])
        assert candidate["case_id"] == case["id"]
        assert "sex_mismatch" in candidate["flags"]
        page = await client.get(base, headers=zh)
        assert "家属报告的性别有误" in page.text
        assert "恢复此筛选" in page.text
    finally:
        client.cookies.clear()
    kinds = [e["kind"] for e in await _events("notice", notice["id"])]
    assert "match_filter_relaxed" in kinds
