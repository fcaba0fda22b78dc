"""Online search requests and the public announcement list: API and services on
the real services (PostgreSQL, S3, the worker)."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, date, datetime

import pytest
from PIL import Image

from rescue import clock
from rescue.errors import InvalidInput, TooManyRequests, UnsupportedMedia
from rescue.family_requests import services
from rescue.family_requests.schemas import SearchRequestIn
from rescue.family_requests.tables import SearchRequest, SearchRequestPhoto
from rescue.photos.tables import Photo
from rescue.runtime import get_store
from rescue.settings import PublicSettings, get_settings
from tests.integration.helpers import new_case, upload_file
from tests.support import OBAMA_A, OBAMA_B, photo

PUBLIC = PublicSettings(
    regions=(("城西区", "north"),), limit_per_address=3, limit_per_contact=2, lookups_per_hour=5
)


def _data(**fields):  # type: ignore[no-untyped-def]
    base = {
        "missing_name": "李四",
        "reporter_contact": "138 0000 0001",
        "sex": "male",
        "missing_since": date(2020, 3, 1),
        "region": "城西区",
        "consent_personal": True,
        "consent_face": True,
    }
    import msgspec

    return msgspec.convert({**base, **fields}, SearchRequestIn)


async def _submit(data, photos=(), address="10.0.0.1"):  # type: ignore[no-untyped-def]
    return await services.submit(
        data=data,
        photos=[(p, None) for p in photos],
        address=address,
        store=get_store(),
        upload=get_settings().upload,
        public=PUBLIC,
    )


async def test_photos_without_face_consent_are_refused_and_nothing_is_kept():
    with pytest.raises(InvalidInput) as refused:
        await _submit(_data(consent_face=False), [photo(OBAMA_A)])
    assert refused.value.extra["field"] == "consent_face"
    with pytest.raises(InvalidInput):
        await _submit(_data(consent_personal=False))
    assert await SearchRequest.count() == 0


async def test_a_file_that_is_not_an_image_is_refused():
    with pytest.raises(UnsupportedMedia):
        await _submit(_data(), [b"<script>alert(1)</script>" * 10])
    assert await SearchRequest.count() == 0
    assert await SearchRequestPhoto.count() == 0


async def test_submission_is_not_matched_and_goes_to_the_station_by_place():
    done = await _submit(_data(), [photo(OBAMA_A)])
    # 16 letters of Crockford's base32 (80 bits) in groups of 4: no 0/O, 1/l/I to confuse
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", done.code)
    row = await SearchRequest.select().where(SearchRequest.id == done.id).first()
    assert row["station"] == "north"
    assert row["code_hash"] != done.code
    assert done.code not in str(row)
    assert await Photo.count() == 0  # nothing reaches the matching pipeline


async def test_rate_limits_per_contact_and_per_address_with_the_clock():
    with clock.frozen(datetime(2026, 12, 1, 1, tzinfo=UTC)):
        await _submit(_data(missing_name="甲"))
        await _submit(_data(missing_name="乙"))
        with pytest.raises(TooManyRequests):  # third from the same contact today
            await _submit(_data(missing_name="丙"))
        with pytest.raises(TooManyRequests):  # fourth from the same address today
            await _submit(_data(missing_name="丁", reporter_contact="139 0000 0002"))
        clock.advance(24 * 3600)
        await _submit(_data(missing_name="戊"))  # a new day


async def test_duplicates_are_linked_not_multiplied():
    first = await _submit(_data(), [photo(OBAMA_A)])
    same_photo = await _submit(
        _data(missing_name="另一个名字", reporter_contact="137 0000 0003"),
        [photo(OBAMA_A)],
        address="10.0.0.2",
    )
    same_person = await _submit(_data(reporter_contact="136 0000 0004"), [], address="10.0.0.3")
    assert same_photo.duplicate_of == first.id
    assert same_person.duplicate_of == first.id
    queue = await services.list_queue(stations=["north"], status=None, limit=50, offset=0)
    assert [item.id for item in queue.items] == [first.id]
    assert queue.items[0].duplicates == [same_photo.id, same_person.id]


async def test_status_by_code_reveals_only_the_status_and_is_rate_limited():
    done = await _submit(_data())
    status = await services.status_for_code(code=done.code, address="10.1.1.1", public=PUBLIC)
    assert status.status.value == "received"
    assert set(status.__struct_fields__) == {"status", "message", "updated_at"}
    from rescue.errors import NotFound

    # One letter changed, never to itself (a code ending in X would otherwise match).
    other = done.code[:-1] + ("Y" if done.code[-1] != "Y" else "Z")
    with pytest.raises(NotFound) as wrong:
        await services.status_for_code(code=other, address="10.1.1.1", public=PUBLIC)
    assert "李四" not in wrong.value.detail
    for _ in range(3):
        with pytest.raises(NotFound):
            await services.status_for_code(code="guess", address="10.1.1.1", public=PUBLIC)
    with pytest.raises(TooManyRequests):
        await services.status_for_code(code=done.code, address="10.1.1.1", public=PUBLIC)


async def test_moderation_api_accept_creates_the_notice_with_photos(client, staff, admin):
    from tests.conftest import make_token

    done = await _submit(_data(), [photo(OBAMA_B)])
    south = {"Authorization": f"Bearer {await make_token('station_staff', 'south')}"}
    assert (await client.get(f"/api/family-requests/{done.id}", headers=south)).status_code == 403
    listed = (await client.get("/api/family-requests", headers=south)).json()
    assert listed["total"] == 0
    refused = await client.post(
        f"/api/family-requests/{done.id}/decision", json={"decision": "reject"}, headers=staff
    )
    assert refused.status_code == 400
    more = await client.post(
        f"/api/family-requests/{done.id}/decision",
        json={"decision": "more_info", "message": "请补充近照"},
        headers=staff,
    )
    assert more.status_code == 200, more.text
    status = await services.status_for_code(code=done.code, address="10.2.2.2", public=PUBLIC)
    assert (status.status.value, status.message) == ("more_info", "请补充近照")
    accepted = await client.post(
        f"/api/family-requests/{done.id}/decision", json={"decision": "accept"}, headers=staff
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "registered"
    assert body["notice_id"]
    notice = (await client.get(f"/api/notices/{body['notice_id']}", headers=staff)).json()
    assert notice["source"] == "family"
    assert len(notice["photos"]) == 1
    again = await client.post(
        f"/api/family-requests/{done.id}/decision", json={"decision": "accept"}, headers=staff
    )
    assert again.status_code == 409


async def test_public_list_filters_pages_and_hides_unpublished(client, staff):
    ids = {}
    for name, sex, age, place, dialect in [
        ("甲", "male", 30, "城西区 G318", "四川话"),
        ("乙", "female", 60, "城东区", "粤语"),
        ("丙", "male", 70, "城西区 南门", "四川话"),
    ]:
        case = await new_case(client, staff, sex=sex, estimated_age=age, dialect=dialect)
        published = await client.post(
            f"/api/cases/{case['id']}/announcement",
            json={"found_place": place, "name": name},
            headers=staff,
        )
        assert published.status_code == 201, published.text
        ids[name] = (case["id"], published.json()["id"])
    got = (
        await client.get(
            "/public/announcements", params={"sex": "male", "dialect": "四川", "age_min": 65}
        )
    ).json()
    assert [a["name"] for a in got["items"]] == ["丙"]
    page = await client.get("/family", params={"place": "城西"})
    assert page.status_code == 200
    assert "public" in page.headers["cache-control"]
    assert "甲" in page.text
    assert "丙" in page.text
    assert "乙" not in page.text
    await client.delete(f"/api/cases/{ids['乙'][0]}/announcement", headers=staff)
    assert (await client.get(f"/family/announcements/{ids['乙'][1]}")).status_code == 404
    assert (await client.get(f"/public/announcements/{ids['乙'][1]}")).status_code == 404


async def test_publish_makes_the_thumbnail_once(client, staff):
    case = await new_case(client, staff)
    uploaded = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    published = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={"found_place": "城西", "photo_id": uploaded["id"]},
        headers=staff,
    )
    from rescue.announcements.tables import Announcement

    keys = await Announcement.select(
        Announcement.public_photo_key, Announcement.public_thumb_key
    ).first()
    assert keys["public_thumb_key"]
    assert keys["public_photo_key"]
    public_id = published.json()["id"]
    first = await client.get(f"/public/announcements/{public_id}/photo?size=thumb")
    second = await client.get(f"/public/announcements/{public_id}/photo?size=thumb")
    assert first.content == second.content  # the stored copy, not a new encoding
    assert max(Image.open(io.BytesIO(first.content)).size) <= 240
    assert first.headers["cache-control"] == "public, max-age=60"
    stored = await get_store().aget(keys["public_thumb_key"])
    assert stored == first.content


# --- Pages on HTTP: CSRF token of a page form, sessions of staff ------------------

_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def _csrf(client, path="/family/status"):  # type: ignore[no-untyped-def]
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = _CSRF.search(page.text)
    assert match, "no CSRF field"
    return match.group(1)


def _peer_client(app, host):  # type: ignore[no-untyped-def]
    """A second client on the running app whose socket peer is ``host`` (the
    test transport always says "testclient"); its own cookies."""
    from litestar.testing import AsyncTestClient

    async def as_peer(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            scope = {**scope, "client": (host, 40000)}
        await app(scope, receive, send)

    test_client = AsyncTestClient(app=as_peer)  # type: ignore[arg-type]
    test_client.headers["Accept-Language"] = "en"
    return test_client


async def _staff_pages(app):  # type: ignore[no-untyped-def]
    """A browser-like session (cookies) of a north station_staff user on the pages."""
    from rescue.users.services import create_user

    await create_user(
        username="pages-staff", role="station_staff", station="north", password="correct horse 1"
    )
    session = _peer_client(app, "127.0.0.1")
    token = await _csrf(session, "/login")
    done = await session.post(
        "/login",
        data={"username": "pages-staff", "password": "correct horse 1", "_csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return session


async def _reply(client, code, message="", photos=(), consent=True, headers=None):  # type: ignore[no-untyped-def]
    token = await _csrf(client)
    form = {"code": code, "message": message, "_csrf_token": token}
    if consent:
        form["consent_face"] = "true"
    files = [("photos", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return await client.post("/family/reply", data=form, files=files or None, headers=headers or {})


async def _more_info(client, staff, request_id, message="请补充近照"):  # type: ignore[no-untyped-def]
    more = await client.post(
        f"/api/family-requests/{request_id}/decision",
        json={"decision": "more_info", "message": message},
        headers=staff,
    )
    assert more.status_code == 200, more.text


# --- 1. The family answers "more information needed" online ------------------------


async def test_family_answers_more_info_online_and_staff_see_the_thread(client, staff):
    done = await _submit(_data(description="<b>x</b>"), [photo(OBAMA_A)])
    other = await _submit(
        _data(missing_name="王五", reporter_contact="135 0000 0009", missing_since=None),
        address="10.0.0.9",
    )
    # Before staff ask, there is nothing to answer.
    early = await _reply(client, done.code, "她左手有疤")
    assert early.status_code == 409
    assert "reply-form" not in early.text
    await _more_info(client, staff, done.id)
    await _more_info(client, staff, other.id, "请告知身高")
    # The status page offers the answer form only with the right code.
    token = await _csrf(client)
    page = await client.post("/family/status", data={"code": done.code, "_csrf_token": token})
    assert 'id="reply-form"' in page.text
    assert "请补充近照" in page.text
    assert "请告知身高" not in page.text  # another family's exchange
    # Photos without the separate consent are refused, nothing kept.
    refused = await _reply(client, done.code, "近照", [photo(OBAMA_B)], consent=False)
    assert refused.status_code == 400
    assert 'id="e-consent_face"' in refused.text
    assert "近照" in refused.text  # what was typed is kept
    # A file that is not an image: refused as every upload.
    not_image = await _reply(client, done.code, "近照", [b"%PDF-1.4 " * 50])
    assert not_image.status_code == 415
    assert 'id="e-photos"' in not_image.text
    # More photos than the request may hold in all (one is there already).
    too_many = await _reply(client, done.code, "近照", [photo(OBAMA_B)] * 5)
    assert too_many.status_code == 400
    assert 'id="e-photos"' in too_many.text
    assert await SearchRequestPhoto.count().where(SearchRequestPhoto.request == done.id) == 1
    # A wrong code reveals nothing and changes nothing.
    wrong = await _reply(client, done.code[:-2] + "zz", "冒充")
    assert wrong.status_code == 404
    assert "李四" not in wrong.text
    assert "请补充近照" not in wrong.text
    # The answer: text and a photo with consent.
    sent = await _reply(client, done.code, "<script>alert(1)</script> 她左手有疤", [photo(OBAMA_B)])
    assert sent.status_code == 200, sent.text
    assert 'id="reply-sent"' in sent.text
    assert 'data-status="under_review"' in sent.text
    assert "reply-form" not in sent.text
    assert "左手有疤" not in sent.text  # the answer is not shown back
    status = await services.status_for_code(code=done.code, address="10.3.3.3", public=PUBLIC)
    assert status.status.value == "under_review"
    # Answering twice: staff have not asked again.
    assert (await _reply(client, done.code, "再说一遍")).status_code == 409
    # Back in the queue, marked as answered.
    queue = (await client.get("/api/family-requests", headers=staff)).json()
    mine = next(item for item in queue["items"] if item["id"] == done.id)
    assert mine["status"] == "under_review"
    assert mine["answered"] is True
    assert mine["photo_count"] == 2
    theirs = next(item for item in queue["items"] if item["id"] == other.id)
    assert (theirs["status"], theirs["answered"]) == ("more_info", False)
    # Staff see the exchange as a thread, with the answer's photo.
    detail = (await client.get(f"/api/family-requests/{done.id}", headers=staff)).json()
    thread = detail["thread"]
    assert [(m["author"], m["body"]) for m in thread] == [
        ("staff", "请补充近照"),
        ("family", "<script>alert(1)</script> 她左手有疤"),
    ]
    assert thread[1]["consent_face"] is True
    assert len(thread[1]["photos"]) == 1
    assert [p["message_id"] for p in detail["photos"]] == [None, thread[1]["id"]]
    other_detail = (await client.get(f"/api/family-requests/{other.id}", headers=staff)).json()
    assert [m["body"] for m in other_detail["thread"]] == ["请告知身高"]
    # The staff page shows the thread, the script as text.
    pages = await _staff_pages(client.app)
    moderate = await pages.get(f"/search-requests/{done.id}")
    assert moderate.status_code == 200
    assert 'id="thread"' in moderate.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 她左手有疤" in moderate.text
    assert "<script>alert(1)" not in moderate.text
    answer_photo = thread[1]["photos"][0]
    shown = await pages.get(f"/search-requests/{done.id}/photos/{answer_photo}")
    assert shown.status_code == 200
    assert shown.headers["content-type"].startswith("image/")
    # Accepting takes the answer's photo to the notice too.
    accepted = await client.post(
        f"/api/family-requests/{done.id}/decision", json={"decision": "accept"}, headers=staff
    )
    assert accepted.status_code == 200, accepted.text
    notice = (
        await client.get(f"/api/notices/{accepted.json()['notice_id']}", headers=staff)
    ).json()
    assert len(notice["photos"]) == 2


async def test_answers_are_rate_limited_like_submissions(client, staff, monkeypatch):
    monkeypatch.setenv("REQUEST_LIMIT_PER_ADDRESS", "2")
    monkeypatch.setenv("REQUEST_LIMIT_PER_CONTACT", "2")
    get_settings.cache_clear()
    try:
        with clock.frozen(datetime(2026, 12, 1, 1, tzinfo=UTC)):
            done = await _submit(_data())
            for n in range(2):
                await _more_info(client, staff, done.id, f"问题{n}")
                answer = await _reply(client, done.code, f"答复{n}")
                assert answer.status_code == 200, answer.text
            await _more_info(client, staff, done.id, "问题3")
            refused = await _reply(client, done.code, "答复3")
            assert refused.status_code == 429
            clock.advance(24 * 3600)
            assert (await _reply(client, done.code, "答复3")).status_code == 200
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


# --- 2. Staff reads of a request's text are audited; the list carries no text -------


async def test_reading_a_request_is_audited_and_the_list_leaks_no_text(client, staff):
    from rescue.audit.tables import AuditRecord

    done = await _submit(_data(description="左手有疤，爱唱歌"), [photo(OBAMA_A)])
    listed = await client.get("/api/family-requests", headers=staff)
    assert listed.status_code == 200
    item = listed.json()["items"][0]
    assert "description" not in item
    assert "reporter_contact" not in item
    assert "左手有疤" not in listed.text
    assert "138 0000 0001" not in listed.text
    assert await AuditRecord.count().where(AuditRecord.kind == "read") == 0
    detail = await client.get(f"/api/family-requests/{done.id}", headers=staff)
    assert detail.status_code == 200
    assert "左手有疤" in detail.text
    records = await AuditRecord.select().where(AuditRecord.kind == "read")
    assert [(r["route"], r["resource_type"], r["resource_id"]) for r in records] == [
        ("/api/family-requests/{request_id}", "request", str(done.id))
    ]
    assert records[0]["status_code"] == 200
    pages = await _staff_pages(client.app)
    queue = await pages.get("/search-requests")
    assert queue.status_code == 200
    assert "左手有疤" not in queue.text
    assert "138 0000 0001" not in queue.text
    assert await AuditRecord.count().where(AuditRecord.kind == "read") == 1
    page = await pages.get(f"/search-requests/{done.id}")
    assert page.status_code == 200
    assert "左手有疤" in page.text
    photo_id = (await SearchRequestPhoto.select().first())["id"]
    assert (await pages.get(f"/search-requests/{done.id}/photos/{photo_id}")).status_code == 200
    reads = await AuditRecord.select().where(AuditRecord.kind == "read").order_by(AuditRecord.id)
    assert [(r["route"], r["resource_type"], r["username"]) for r in reads[1:]] == [
        ("/search-requests/{request_id}", "request", "pages-staff"),
        (
            "/search-requests/{request_id}/photos/{request_photo_id}",
            "request_photo",
            "pages-staff",
        ),
    ]
    assert reads[2]["case_id"] is None  # a request photo is no case's photo


async def test_another_stations_staff_cannot_read_a_request_or_its_photo(client):
    from rescue.users.services import create_user

    done = await _submit(_data(), [photo(OBAMA_A)])
    photo_id = (await SearchRequestPhoto.select().first())["id"]
    await create_user(
        username="south-pages", role="station_staff", station="south", password="correct horse 2"
    )
    south = _peer_client(client.app, "127.0.0.2")
    token = await _csrf(south, "/login")
    login = await south.post(
        "/login",
        data={"username": "south-pages", "password": "correct horse 2", "_csrf_token": token},
        follow_redirects=False,
    )
    assert login.status_code == 303
    assert (await south.get(f"/search-requests/{done.id}")).status_code == 403
    assert (await south.get(f"/search-requests/{done.id}/photos/{photo_id}")).status_code == 403
    queue = await south.get("/search-requests")
    assert "李四" not in queue.text


# --- 3. Client address behind a proxy -------------------------------------------------


async def _lookups(http, n, forwarded):  # type: ignore[no-untyped-def]
    codes = []
    for i in range(n):
        token = await _csrf(http)
        response = await http.post(
            "/family/status",
            data={"code": "wrong-code-wrong-code-1", "_csrf_token": token},
            headers={"X-Forwarded-For": forwarded(i)},
        )
        codes.append(response.status_code)
    return codes


async def test_forged_forwarded_for_does_not_evade_the_limit_and_a_trusted_proxy_is_used(
    client, monkeypatch
):
    monkeypatch.setenv("STATUS_LOOKUPS_PER_HOUR", "3")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.9.9.0/24,::1")
    get_settings.cache_clear()
    try:
        with clock.frozen(datetime(2026, 12, 1, 2, tzinfo=UTC)):
            # An untrusted peer writing a new X-Forwarded-For each time: still one address.
            direct = _peer_client(client.app, "203.0.113.7")
            assert await _lookups(direct, 4, lambda i: f"198.51.100.{i}") == [404, 404, 404, 429]
            # Through the trusted proxy: each client counted on its own ...
            proxy = _peer_client(client.app, "10.9.9.1")
            assert await _lookups(proxy, 3, lambda i: f"198.51.100.{i}") == [404, 404, 404]
            # ... by the right-most untrusted hop: a forged left part changes nothing.
            assert await _lookups(proxy, 4, lambda i: f"192.0.2.{i}, 198.51.100.50, 10.9.9.2") == [
                404,
                404,
                404,
                429,
            ]
            # The proxy's own address is not the client's.
            assert await _lookups(proxy, 1, lambda i: "198.51.100.60") == [404]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_client_address_takes_the_right_most_untrusted_hop():
    import ipaddress

    from rescue.family_requests.limits import client_address

    proxies = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert client_address("203.0.113.7", ["1.2.3.4"], ()) == "203.0.113.7"
    assert client_address("203.0.113.7", ["1.2.3.4"], proxies) == "203.0.113.7"
    assert client_address("10.0.0.1", [], proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", ["1.1.1.1, 2.2.2.2"], proxies) == "2.2.2.2"
    assert client_address("10.0.0.1", ["1.1.1.1", "2.2.2.2, 10.0.0.5"], proxies) == "2.2.2.2"
    assert client_address("::1", ["2001:db8::1"], proxies) == "2001:db8::1"
    assert client_address("10.0.0.1", ["10.0.0.7, 10.0.0.5"], proxies) == "10.0.0.7"
    assert client_address("::ffff:10.0.0.1", ["2.2.2.2"], proxies) == "2.2.2.2"
    assert client_address(None, ["2.2.2.2"], proxies) == "unknown"


# --- 5. The named behaviours on the public pages ----------------------------


async def test_family_pages_serve_the_json_api_data_without_redacted_fields(client, staff):
    from tests.integration.test_announcements import ANNOUNCED, SECRET_PLACE
    from tests.integration.test_announcements import _case as private_case

    case = await private_case(client, staff)
    uploaded = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    published = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={**ANNOUNCED, "photo_id": uploaded["id"], "internal": ["mental_state", "photo"]},
        headers=staff,
    )
    assert published.status_code == 201, published.text
    public_id = published.json()["id"]
    api = (await client.get(f"/public/announcements/{public_id}")).json()
    page = await client.get(f"/family/announcements/{public_id}")
    assert page.status_code == 200
    assert {p.strip() for p in page.headers["cache-control"].split(",")} == {"public", "max-age=60"}
    shown = dict(re.findall(r'<dd data-field="(\w+)">([^<]*)</dd>', page.text))
    expected = {
        k: str(v)
        for k, v in api.items()
        if k not in {"id", "published_at", "photo_url", "thumb_url", "sex"}
    }
    assert {k: v for k, v in shown.items() if k != "sex"} == expected
    # Redacted (internal) fields and the case file never reach the page.
    assert "photo_url" not in api or api["photo_url"] is None
    assert 'class="photo"' not in page.text
    for private in [ANNOUNCED["mental_state"], SECRET_PLACE, "139 1111 2222", "内部备注"]:
        assert private not in page.text
    assert (await client.get(f"/public/announcements/{public_id}/photo")).status_code == 404
    # The list page: the same announcements as the JSON list, with cache headers.
    listing = await client.get("/family")
    assert {p.strip() for p in listing.headers["cache-control"].split(",")} == {
        "public",
        "max-age=60",
    }
    api_list = (await client.get("/public/announcements")).json()
    assert [int(i) for i in re.findall(r'data-id="(\d+)"', listing.text)] == [
        a["id"] for a in api_list["items"]
    ]


async def test_family_list_is_paged_by_twenty(client, staff):
    for n in range(21):
        case = await new_case(client, staff, estimated_age=30 + n)
        done = await client.post(
            f"/api/cases/{case['id']}/announcement", json={"found_place": f"城西{n}"}, headers=staff
        )
        assert done.status_code == 201
    first = await client.get("/family")
    second = await client.get("/family", params={"page": 2})
    assert len(re.findall(r'data-id="\d+"', first.text)) == 20
    assert len(re.findall(r'data-id="\d+"', second.text)) == 1
    assert 'id="next"' in first.text
    assert 'id="next"' not in second.text
    assert "1 / 2" in first.text


async def _page_submit(http, fields, photos=()):  # type: ignore[no-untyped-def]
    token = await _csrf(http, "/family/request")
    files = [("photos", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return await http.post(
        "/family/request", data={**fields, "_csrf_token": token}, files=files or None
    )


_FORM = {
    "missing_name": "<script>alert('name')</script>孙七",
    "reporter_contact": "186 2222 3333",
    "description": "<img src=x onerror=alert(1)>",
    "consent_personal": "true",
}


async def test_request_page_refuses_no_consent_large_photos_and_limits_by_address(
    client, monkeypatch
):
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "50000")
    monkeypatch.setenv("REQUEST_LIMIT_PER_ADDRESS", "2")
    get_settings.cache_clear()
    try:
        http = _peer_client(client.app, "198.51.100.77")
        no_consent = await _page_submit(http, {**_FORM, "consent_personal": ""})
        assert no_consent.status_code == 400
        assert 'id="e-consent_personal"' in no_consent.text
        too_large = await _page_submit(
            http, {**_FORM, "consent_face": "true"}, [photo(OBAMA_A)]
        )  # > 50 000 bytes
        assert too_large.status_code == 413
        assert 'id="e-photos"' in too_large.text
        assert await SearchRequest.count() == 0
        with clock.frozen(datetime(2026, 12, 1, 3, tzinfo=UTC)):
            for n in range(2):
                sent = await _page_submit(
                    http,
                    {**_FORM, "reporter_contact": f"186 2222 000{n}", "missing_name": f"孙{n}"},
                )
                assert sent.status_code == 201, sent.text
                assert 'id="code"' in sent.text
            third = await _page_submit(http, {**_FORM, "reporter_contact": "186 2222 0009"})
            assert third.status_code == 429
        assert await SearchRequest.count() == 2
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def test_script_is_inert_on_staff_pages_and_contact_is_never_public(client, staff):
    from rescue.users.services import create_user

    http = _peer_client(client.app, "198.51.100.78")
    sent = await _page_submit(http, _FORM)
    assert sent.status_code == 201, sent.text
    code = re.search(r'id="code">([^<]+)<', sent.text).group(1).strip()  # type: ignore[union-attr]
    request_id = (await SearchRequest.select(SearchRequest.id).first())["id"]
    accepted = await client.post(
        f"/api/family-requests/{request_id}/decision", json={"decision": "accept"}, headers=staff
    )
    assert accepted.status_code == 200, accepted.text
    # Staff pages: the queue and the request show the markup as text.
    await create_user(
        username="inert-staff", role="station_staff", station="north", password="correct horse 3"
    )
    pages = _peer_client(client.app, "127.0.0.3")
    token = await _csrf(pages, "/login")
    await pages.post(
        "/login",
        data={"username": "inert-staff", "password": "correct horse 3", "_csrf_token": token},
        follow_redirects=False,
    )
    queue = await pages.get("/search-requests", params={"status": "registered"})
    detail = await pages.get(f"/search-requests/{request_id}")
    for html in (queue.text, detail.text):
        assert "<script>alert('name')" not in html
        assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;孙七" in html
    assert "<img src=x" not in detail.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail.text
    # The contact: staff only. Not on the status page, the public pages or API.
    token = await _csrf(http)
    status = await http.post("/family/status", data={"code": code, "_csrf_token": token})
    assert status.status_code == 200
    public = [
        status.text,
        (await http.get("/family")).text,
        (await http.get("/public/announcements")).text,
    ]
    for text in public:
        assert "186 2222 3333" not in text
    assert "186 2222 3333" in detail.text


async def test_a_linked_familys_answer_reaches_the_original_and_reveals_nothing_else(client, staff):
    first = await _submit(_data(description="原始描述"), [photo(OBAMA_A)])
    linked = await _submit(
        _data(reporter_contact="131 0000 0007", description="第二家描述"), address="10.0.0.7"
    )
    assert linked.duplicate_of == first.id
    await _more_info(client, staff, first.id, "请补充走失时衣着")
    # Both families see the question (the linked request follows its original).
    token = await _csrf(client)
    page = await client.post("/family/status", data={"code": linked.code, "_csrf_token": token})
    assert "请补充走失时衣着" in page.text
    assert 'id="reply-form"' in page.text
    sent = await _reply(client, linked.code, "穿灰色外套")
    assert sent.status_code == 200, sent.text
    # Nothing of the other family on either family's page.
    for text in (page.text, sent.text):
        assert "原始描述" not in text
        assert "138 0000 0001" not in text
    first_page = await _reply(client, first.code, "")  # no text, no photos: refused
    assert first_page.status_code == 409  # the group is back under review
    assert "穿灰色外套" not in first_page.text
    # Staff: the original's thread carries the linked family's answer.
    original = (await client.get(f"/api/family-requests/{first.id}", headers=staff)).json()
    assert original["status"] == "under_review"
    assert [(m["request_id"], m["author"], m["body"]) for m in original["thread"]] == [
        (first.id, "staff", "请补充走失时衣着"),
        (linked.id, "family", "穿灰色外套"),
    ]
    mine = (await client.get(f"/api/family-requests/{linked.id}", headers=staff)).json()
    assert [m["body"] for m in mine["thread"]] == ["请补充走失时衣着", "穿灰色外套"]


async def test_retention_empties_the_familys_answers_and_their_photos(client, staff):
    from rescue.family_requests.tables import SearchRequestMessage
    from rescue.retention import run_retention
    from rescue.settings import RetentionSettings

    settings = RetentionSettings(request_days=30, request_stale_days=90)
    with clock.frozen(clock.now()):
        done = await _submit(_data())
        waiting = await _submit(
            _data(missing_name="周八", reporter_contact="132 0000 0008", missing_since=None),
            address="10.0.0.8",
        )
        await _more_info(client, staff, done.id)
        await _more_info(client, staff, waiting.id, "请补充身高")
        sent = await _reply(client, done.code, "他叫小名阿福", [photo(OBAMA_B)])
        assert sent.status_code == 200, sent.text
        rejected = await client.post(
            f"/api/family-requests/{done.id}/decision",
            json={"decision": "reject", "message": "已找到"},
            headers=staff,
        )
        assert rejected.status_code == 200
        clock.advance(91 * 24 * 3600)
        await run_retention(settings=settings, store=get_store())
    # Closed for waiting too long: the closing message joins the thread.
    got = await client.get(f"/api/family-requests/{waiting.id}", headers=staff)
    assert got.status_code == 200, got.text
    closed = got.json()
    assert closed["status"] == "closed"
    assert [m["author"] for m in closed["thread"]] == ["staff", "staff"]
    assert closed["thread"][-1]["body"] == closed["staff_message"]
    rows = await SearchRequestMessage.select().where(SearchRequestMessage.request == done.id)
    assert [(r["author"], r["body"]) for r in rows] == [
        ("staff", "请补充近照"),
        ("family", ""),
        ("staff", "已找到"),
    ]
    assert await SearchRequestPhoto.count().where(SearchRequestPhoto.request == done.id) == 0


async def test_a_tracking_code_is_found_however_a_family_copies_it():
    from rescue.family_requests.services import code_hash, status_of_known_code

    done = await _submit(_data(), [])
    sloppy = done.code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    for typed in (done.code, sloppy, f"  {done.code.replace('-', '')}  "):
        assert await status_of_known_code(typed) is not None, typed
    wrong = done.code[:-1] + ("Y" if done.code[-1] != "Y" else "Z")
    assert await status_of_known_code(wrong) is None
    # A code given out before (22 URL-safe characters, case-sensitive) still works.
    await SearchRequest.update(
        {SearchRequest.code_hash: hashlib.sha256(b"AbC-old_Code").hexdigest()}
    ).where(SearchRequest.id == done.id)
    assert await status_of_known_code("AbC-old_Code") is not None
    assert code_hash("AbC-old_Code") != hashlib.sha256(b"AbC-old_Code").hexdigest()
