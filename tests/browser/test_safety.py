"""Pages keep the API's rules: upload checks, station scoping of photos, audited
photo reads, htmx after the session ended, session clean-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rescue import clock
from tests.browser.conftest import ARTIFACTS, make_user
from tests.browser.pages import CasePage, IntakePage, LoginPage
from tests.browser.test_workbench import _logged_in
from tests.support import FACES_DIR, OBAMA_A


async def test_a_non_image_upload_is_refused_next_to_the_field(page):
    await _logged_in(page)
    await (await (await IntakePage(page).open()).fill(estimated_age="40")).submit()
    ARTIFACTS.mkdir(exist_ok=True)
    fake = ARTIFACTS / "not-a-photo.jpg"
    fake.write_text("this is text, not a photo")
    await page.set_input_files("#photo-upload input[type=file]", str(fake))
    async with page.expect_navigation():
        await page.click("#photo-upload button[type=submit]")
    assert await page.locator("#photo-upload .field-error").count() == 1
    from rescue.photos.tables import Photo

    assert await Photo.count() == 0


async def test_photo_reads_are_audited_and_scoped_to_the_station(page, browser, live_server):
    username = await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(estimated_age="50")
    await intake.take_photo(str(FACES_DIR / OBAMA_A))
    await intake.submit()
    await CasePage(page).wait_for_photos_processed()
    src = await page.get_attribute("#photos-block img", "src")
    assert src.startswith("/photos/")  # served by the app, never the object store
    html = await page.content()
    assert "X-Amz-" not in html  # no presigned object-store address on the page
    response = await page.request.get(src)
    assert response.status == 200
    from rescue.audit.tables import AuditRecord

    reads = await AuditRecord.select().where(
        (AuditRecord.route == "/photos/{photo_id}/image") & (AuditRecord.kind == "read")
    )
    assert reads, [
        (r["route"], r["kind"])
        for r in await AuditRecord.select(AuditRecord.route, AuditRecord.kind)
    ]
    assert {r["username"] for r in reads} == {username}

    other = await browser.new_context(base_url=live_server, locale="zh-CN")
    south = await other.new_page()
    try:
        south_user, password = await make_user("station_staff", "south")
        await (await LoginPage(south).open()).log_in(south_user, password)
        refused = await south.request.get(src)
        assert refused.status == 403
    finally:
        await other.close()


async def test_htmx_request_after_the_session_ended_redirects_the_page(page):
    with clock.frozen(datetime(2026, 12, 1, 12, tzinfo=UTC)):
        await _logged_in(page)
        await (await (await IntakePage(page).open()).fill(estimated_age="40")).submit()
        case_id = CasePage(page).case_id()
        from rescue.settings import get_settings

        clock.advance(get_settings().web.session_idle_seconds + 1)
        response = await page.request.get(
            f"/cases/{case_id}/photos/status",
            headers={"HX-Request": "true", "HX-Current-URL": f"http://x/cases/{case_id}"},
        )
        assert response.headers["hx-redirect"].startswith(f"/login?next=%2Fcases%2F{case_id}")


async def test_expired_sessions_and_old_form_keys_are_purged():
    from rescue.web.sessions import DatabaseSessionStore, purge_expired
    from rescue.web.tables import FormSubmission, WebSession

    store = DatabaseSessionStore()
    with clock.frozen(datetime(2026, 12, 1, 12, tzinfo=UTC)):
        await store.set("old", b"{}", expires_in=60)
        await store.set("fresh", b"{}", expires_in=7200)
        await FormSubmission.insert(FormSubmission(key="k" * 20, user_id=1, result_url="/"))
        await FormSubmission.update(
            {FormSubmission.created_at: clock.now() - timedelta(days=2)}
        ).where(FormSubmission.key == "k" * 20)
        clock.advance(120)
        assert await store.get("old") is None  # expired: not served
        assert await purge_expired(now=clock.now()) == 0  # get() already removed it
        await store.set("stale", b"{}", expires_in=1)
        clock.advance(5)
        assert await purge_expired(now=clock.now()) == 1
        assert [r["key"] for r in await WebSession.select(WebSession.key)] == ["fresh"]
        assert await FormSubmission.count() == 0
