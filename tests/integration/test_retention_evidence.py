"""Retention keeps the decision and its evidence (issue 12 item 12) and deletes
closed online search requests' data (issue 14), on the real services."""

from __future__ import annotations

from datetime import date
from typing import Any

from rescue import clock
from tests.integration.helpers import (
    decide,
    family_confirmation,
    new_case,
    new_notice,
    upload_file,
)
from tests.support import BIDEN, OBAMA_A, OBAMA_B, photo

DAY = 24 * 3600.0
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def _handed_to_family(client: Any, staff: dict[str, str], case_id: int) -> None:
    """The workflow's way out after identification: a handover record, then
    ``handed_to_family`` (tests/integration/test_custody.py)."""
    form = {
        "receiving_party": "family",
        "receiver_name": "张某",
        "relationship": "father",
        "id_document_type": "居民身份证",
        "id_document_number": "510802197001011234",
        "id_document_checked": "true",
        "handed_over_at": clock.now().isoformat(),
        "place": "站内",
    }
    response = await client.post(
        f"/api/cases/{case_id}/handover",
        files={"sheet": ("s.pdf", PDF, "application/pdf")},
        data=form,
        headers=staff,
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": "handed_to_family", "reason": "family came"},
        headers=staff,
    )
    assert response.status_code == 200, response.text


async def _object_keys(owner: Any, owner_id: int) -> list[str]:
    from rescue.photos.tables import Photo

    return [r["object_key"] for r in await Photo.select(Photo.object_key).where(owner == owner_id)]


async def test_closed_case_keeps_its_confirmed_candidate_and_the_matched_notice_follows(
    client, staff, reviewer
):
    from rescue.audit.tables import AuditRecord
    from rescue.cases.events import CaseEvent
    from rescue.matching.embedding import MODEL_NAME
    from rescue.matching.tables import Candidate, CandidateEvidence
    from rescue.notices.events import NoticeEvent
    from rescue.photos.tables import Face, Photo
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings

    store = get_store()
    notice = await new_notice(client, staff, missing_since="2015-03-01", age_when_missing=45)
    notice_photo = await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    other = await new_notice(client, staff, name="王五")  # matches nothing, stays open
    await upload_file(client, staff, "notice", other["id"], BIDEN)
    case = await new_case(client, staff)
    case_photo = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    listed = (await client.get(f"/api/cases/{case['id']}/candidates", headers=staff)).json()
    [candidate] = [c for c in listed["items"] if c["notice_id"] == notice["id"]]
    await family_confirmation(client, reviewer, candidate["id"])
    confirmed = await decide(client, reviewer, candidate["id"], "confirm", "mother recognised him")
    assert confirmed.status_code == 200, confirmed.text
    before = (await client.get(f"/api/candidates/{candidate['id']}", headers=reviewer)).json()
    decided_by = (
        await Candidate.select(Candidate.decided_by).where(Candidate.id == candidate["id"]).first()
    )["decided_by"]
    assert decided_by is not None
    audit_before = await AuditRecord.count()
    other_keys = await _object_keys(Photo.notice, other["id"])
    case_keys = await _object_keys(Photo.case, case["id"])
    notice_keys = await _object_keys(Photo.notice, notice["id"])
    assert all([await store.aexists(k) for k in case_keys + notice_keys + other_keys])

    settings = RetentionSettings(face_days=30, photo_days=0, photo_days_by_station={"north": 90})
    with clock.frozen(clock.now()):
        await _handed_to_family(client, staff, case["id"])
        clock.advance(29 * DAY)  # within the period: nothing goes
        report = await run_retention(settings=settings, store=store)
        assert report.faces_deleted == 0
        assert await Face.count().where(Face.notice == notice["id"]) == 1
        assert await Face.count().where(Face.case == case["id"]) == 1

        clock.advance(2 * DAY)  # 31 days: encodings of both sides
        report = await run_retention(settings=settings, store=store)
        assert report.cases == [case["id"]]
        assert report.notices == [notice["id"]]
        assert await Face.count().where(Face.case == case["id"]) == 0
        assert await Face.count().where(Face.notice == notice["id"]) == 0
        assert await Face.count().where(Face.notice == other["id"]) == 1  # open, unmatched
        assert await Photo.count().where(Photo.notice == notice["id"]) == 1  # photos: 90 days
        marked = await Candidate.select(Candidate.photos_deleted_at).where(
            Candidate.id == candidate["id"]
        )
        assert marked[0]["photos_deleted_at"] == clock.now()  # summary written before deleting

        clock.advance(60 * DAY)  # 91 days: photos of both sides, objects first
        report = await run_retention(settings=settings, store=store)
        assert report.photos_deleted == 2
        assert await Photo.count().where(Photo.case == case["id"]) == 0
        assert await Photo.count().where(Photo.notice == notice["id"]) == 0
        for key in case_keys + notice_keys:
            assert not await store.aexists(key)
        assert await Photo.count().where(Photo.notice == other["id"]) == 1
        assert await Face.count().where(Face.notice == other["id"]) == 1
        assert all([await store.aexists(k) for k in other_keys])
        again = await run_retention(settings=settings, store=store)  # idempotent
        assert (again.faces_deleted, again.photos_deleted) == (0, 0)

    # The decision, its evidence and its trail stay, readable through the API.
    after = (await client.get(f"/api/candidates/{candidate['id']}", headers=reviewer)).json()
    kept = after["candidate"]
    assert kept["status"] == "confirmed"
    assert kept["case_photo_id"] is None
    assert kept["notice_photo_id"] is None
    assert kept["best_distance"] == before["candidate"]["best_distance"]
    assert kept["photos_deleted_at"] is not None
    summary = kept["retained_evidence"]
    assert summary["best_distance"] == before["candidate"]["best_distance"]
    assert summary["model"] == MODEL_NAME
    assert summary["decided_by"] == decided_by
    assert summary["decided_at"]
    assert summary["case_photo_id"] == case_photo["id"]
    assert summary["notice_photo_id"] == notice_photo["id"]
    assert summary["status"] == "confirmed"
    face_evidence = [e for e in after["evidence"] if e["kind"] == "face"]
    assert len(face_evidence) == 1  # not cascaded away with the photos
    assert face_evidence[0]["distance"] == before["candidate"]["best_distance"]
    assert face_evidence[0]["model"] == MODEL_NAME
    assert [r["decision"] for r in after["reviews"]] == ["confirm"]
    assert len(after["family_confirmations"]) == 1
    assert await CandidateEvidence.count() >= 1
    assert await AuditRecord.count() >= audit_before  # nothing of the audit trail went
    kinds = {
        r["kind"]
        for r in await CaseEvent.select(CaseEvent.kind).where(CaseEvent.case == case["id"])
    }
    assert {"candidate_confirmed", "faces_deleted", "photos_deleted"} <= kinds
    notice_kinds = {
        r["kind"]
        for r in await NoticeEvent.select(NoticeEvent.kind).where(
            NoticeEvent.notice == notice["id"]
        )
    }
    assert {"candidate_confirmed", "faces_deleted", "photos_deleted"} <= notice_kinds

    # The comparison page answers and says why the photos are missing.
    page = await client.get(f"/api/candidates/{candidate['id']}/compare", headers=reviewer)
    assert page.status_code == 200, page.text
    assert page.text.count("Photo deleted under the retention rules.") == 2
    zh = await client.get(
        f"/api/candidates/{candidate['id']}/compare",
        headers={**reviewer, "Accept-Language": "zh-CN"},
    )
    assert zh.status_code == 200
    assert "照片已按保留规则删除" in zh.text
    await _workbench_compare_page(client, candidate["id"])


async def _page(client: Any, role: str, path: str) -> str:
    """A workbench page (session login, Chinese) as ``role`` of station north. The
    session client's cookies are cleared afterwards (it is shared)."""
    from tests.browser.conftest import make_user

    username, password = await make_user(role)
    zh = {"Accept-Language": "zh-CN"}
    try:
        await client.get("/login", headers=zh)
        token = client.cookies.get("rescue_csrf")
        assert token
        done = await client.post(
            "/login",
            data={"username": username, "password": password, "next": "/"},
            headers={**zh, "x-csrftoken": token},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        response = await client.get(path, headers=zh)
        assert response.status_code == 200, response.text[:500]
        return str(response.text)
    finally:
        client.cookies.clear()


async def _workbench_compare_page(client: Any, candidate_id: int) -> None:
    """The reviewer's compare page of a candidate whose photos are gone."""
    text = await _page(client, "reviewer", f"/candidates/{candidate_id}")
    assert text.count("照片已按保留规则删除") == 2
    assert 'id="retained-evidence"' in text


async def _request(address: str, contact: str, with_photo: bool = True, name: str = "李四") -> Any:
    import msgspec

    from rescue.family_requests import services
    from rescue.family_requests.schemas import SearchRequestIn
    from rescue.runtime import get_store
    from rescue.settings import PublicSettings, get_settings

    data = msgspec.convert(
        {
            "missing_name": name,
            "reporter_name": "李大妈",
            "reporter_contact": contact,
            "sex": "male",
            "missing_since": date(2020, 3, 1),
            "region": "城西区",
            "consent_personal": True,
            "consent_face": True,
        },
        SearchRequestIn,
    )
    return await services.submit(
        data=data,
        photos=[(photo(OBAMA_A), None)] if with_photo else [],
        address=address,
        store=get_store(),
        upload=get_settings().upload,
        public=PublicSettings(regions=(("城西区", "north"),), lookups_per_hour=100),
    )


async def _status(code: str) -> Any:
    from rescue.family_requests import services
    from rescue.settings import PublicSettings

    return await services.status_for_code(
        code=code, address="10.9.9.9", public=PublicSettings(lookups_per_hour=100)
    )


async def test_rejected_request_loses_photos_and_contact_after_the_period(client, staff):
    from rescue.family_requests.tables import SearchRequest, SearchRequestPhoto
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings

    store = get_store()
    settings = RetentionSettings(request_days=30)
    with clock.frozen(clock.now()):
        done = await _request("10.3.0.1", "138 0000 0101")
        [key] = [r["object_key"] for r in await SearchRequestPhoto.select()]
        assert await store.aexists(key)
        rejected = await client.post(
            f"/api/family-requests/{done.id}/decision",
            json={"decision": "reject", "message": "不属于本站受理范围"},
            headers=staff,
        )
        assert rejected.status_code == 200, rejected.text
        clock.advance(29 * DAY)
        report = await run_retention(settings=settings, store=store)
        assert report.requests_purged == 0
        assert await store.aexists(key)
        clock.advance(2 * DAY)
        report = await run_retention(settings=settings, store=store)
        assert report.requests_purged == 1
        again = await run_retention(settings=settings, store=store)
        assert again.requests_purged == 0

    assert not await store.aexists(key)
    assert await SearchRequestPhoto.count() == 0
    row = await SearchRequest.select().where(SearchRequest.id == done.id).first()
    assert row["reporter_contact"] == ""
    assert row["reporter_name"] == ""
    assert row["contact_key"] == ""
    assert row["missing_name"] == ""
    assert row["purged_at"] is not None
    status = await _status(done.code)
    assert (status.status.value, status.message) == ("closed", "不属于本站受理范围")
    staff_view = (await client.get(f"/api/family-requests/{done.id}", headers=staff)).json()
    assert staff_view["reporter_contact"] == ""
    assert staff_view["photos"] == []
    assert staff_view["purged_at"] is not None
    page = await _page(client, "station_staff", f"/search-requests/{done.id}")
    assert 'id="request-purged"' in page
    assert "按保留规则删除" in page


async def test_request_waiting_for_information_is_closed_then_purged(client, staff):
    from rescue.family_requests.tables import SearchRequest, SearchRequestPhoto
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings

    store = get_store()
    settings = RetentionSettings(request_days=30, request_stale_days=90)
    with clock.frozen(clock.now()):
        waiting = await _request("10.4.0.1", "138 0000 0201")
        fresh = await _request("10.4.0.2", "138 0000 0202", with_photo=False, name="赵六")
        for item in (waiting, fresh):
            response = await client.post(
                f"/api/family-requests/{item.id}/decision",
                json={"decision": "more_info", "message": "请补充近照"},
                headers=staff,
            )
            assert response.status_code == 200, response.text
        clock.advance(89 * DAY)
        # The family answered the second one (back under review, then asked again).
        for decision in ("review", "more_info"):
            await client.post(
                f"/api/family-requests/{fresh.id}/decision",
                json={"decision": decision, "message": "请补充近照"},
                headers=staff,
            )
        report = await run_retention(settings=settings, store=store)
        assert report.requests_closed == 0
        clock.advance(2 * DAY)  # 91 days waiting
        report = await run_retention(settings=settings, store=store)
        assert report.requests_closed == 1
        status = await _status(waiting.code)
        assert status.status.value == "closed"
        assert "90" in status.message
        assert (await _status(fresh.code)).status.value == "more_info"
        assert await SearchRequestPhoto.count() == 1  # closed, not yet purged
        clock.advance(31 * DAY)
        report = await run_retention(settings=settings, store=store)
        assert report.requests_purged == 1
    assert await SearchRequestPhoto.count() == 0
    row = await SearchRequest.select().where(SearchRequest.id == waiting.id).first()
    assert row["reporter_contact"] == ""
    assert row["purged_at"] is not None
    assert (await _status(waiting.code)).status.value == "closed"
