"""Work owed is recovered from the database (rescue.recovery), permanent worker
failures end ``failed`` with a reason, and object-store calls are bounded.

The faults of whole services (Redis, S3, PostgreSQL, workers) are in tests/faults/.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.conftest import wait_for_photo
from tests.integration.helpers import new_case
from tests.support import OBAMA_A, photo


async def _principal(headers: dict[str, str]):
    from rescue.users.services import authenticate

    return await authenticate(headers["Authorization"].split()[1])


async def _upload(case_id: int, data: bytes, principal, enqueue):
    from rescue.photos.services import upload_photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    return await upload_photo(
        owner="case",
        owner_id=case_id,
        data=data,
        taken_on=None,
        by=principal,
        store=get_store(),
        limits=get_settings().upload,
        enqueue=enqueue,
    )


def _worker_text(msgid: str, **params) -> str:
    """A message as the worker writes it: in DEFAULT_LOCALE (no request locale)."""
    from rescue.i18n import _, use_locale
    from rescue.settings import get_settings

    with use_locale(get_settings().default_locale):
        return _(msgid, **params)


async def test_upload_says_queued_and_a_deferred_photo_is_queued_by_the_sweep(client, staff):
    from rescue.photos.tables import Photo
    from rescue.recovery import requeue_stale_photos
    from rescue.settings import get_settings
    from workers.actors import send_photo

    case = await new_case(client, staff)
    response = await client.post(
        f"/api/cases/{case['id']}/photos", files={"file": ("a.jpg", photo(OBAMA_A))}, headers=staff
    )
    assert response.status_code == 202
    assert response.json()["queue"] == "queued"

    async def broker_down(photo_id: int) -> None:
        raise ConnectionError("redis unreachable")

    other = await new_case(client, staff)
    stored = await _upload(other["id"], photo(OBAMA_A), await _principal(staff), broker_down)
    assert (stored.status, stored.queue) == ("pending", "deferred")
    seen = (await client.get(f"/api/photos/{stored.id}", headers=staff)).json()
    assert seen["queue"] == "deferred"
    row = await Photo.select(Photo.queued_at).where(Photo.id == stored.id).first()
    assert row["queued_at"] is None
    # The sweep queues a deferred photo at once (no need to wait for the bound).
    assert await requeue_stale_photos(settings=get_settings().recovery, send=send_photo) == 1
    done = await wait_for_photo(client, staff, stored.id)
    assert (done["status"], done["queue"]) == ("processed", None)


async def test_a_lost_job_is_queued_again_after_the_bound_only(client, staff):
    from rescue import clock
    from rescue.photos.tables import Photo
    from rescue.recovery import requeue_stale_photos
    from rescue.settings import get_settings
    from workers.actors import send_photo

    case = await new_case(client, staff)
    sent: list[int] = []

    async def lost(photo_id: int) -> None:  # the broker took it, then lost it
        sent.append(photo_id)

    settings = get_settings().recovery
    with clock.frozen(clock.now()):
        stored = await _upload(case["id"], photo(OBAMA_A), await _principal(staff), lost)
        assert stored.queue == "queued"
        clock.advance(settings.requeue_after_seconds - 1)
        assert await requeue_stale_photos(settings=settings, send=send_photo) == 0
        clock.advance(2)
        assert await requeue_stale_photos(settings=settings, send=send_photo) == 1
        row = await Photo.select(Photo.queued_at).where(Photo.id == stored.id).first()
        assert row["queued_at"] == clock.now()  # not sent again until the bound passes
        assert await requeue_stale_photos(settings=settings, send=send_photo) == 0
    done = await wait_for_photo(client, staff, stored.id)
    assert done["status"] == "processed"


async def test_requeue_cli_still_queues_every_pending_photo(client, staff):
    """(``rescue photos requeue`` itself: tests/integration/test_requeue.py.)"""
    from rescue.photos.services import pending_backlog

    case = await new_case(client, staff)

    async def broker_down(photo_id: int) -> None:
        raise ConnectionError("redis unreachable")

    await _upload(case["id"], photo(OBAMA_A), await _principal(staff), broker_down)
    backlog = await pending_backlog()
    assert (backlog.pending, backlog.unqueued) == (1, 1)
    assert backlog.oldest_created_at is not None
    assert backlog.oldest_age_seconds >= 0


async def test_status_reports_the_broker_and_the_backlog():
    from media.s3server import free_port
    from rescue.recovery import status
    from rescue.settings import get_settings
    from workers.broker import broker_reachable, redis_broker

    now = await status()
    assert now.broker_reachable is True
    assert now.backlog.pending == 0
    settings = get_settings()
    dead = redis_broker(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    assert broker_reachable(dead) is False
    assert time.monotonic() - started < settings.recovery.broker_timeout_seconds + 2


async def test_a_photo_whose_file_is_missing_ends_failed_with_a_reason(client, staff):
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store
    from workers.actors import process_photo

    case = await new_case(client, staff)
    stored = await _upload(case["id"], photo(OBAMA_A), await _principal(staff), _no_send)
    key = (await Photo.select(Photo.object_key).where(Photo.id == stored.id).first())["object_key"]
    get_store().remove(key)  # lost from the object store
    process_photo.send(stored.id)
    done = await wait_for_photo(client, staff, stored.id, within=60)
    assert done["status"] == "failed"
    assert done["failure_reason"] == _worker_text(
        "the photo's file is missing from the object store; upload the photo again"
    )
    row = await Photo.select(Photo.attempts).where(Photo.id == stored.id).first()
    assert row["attempts"] == 1  # failed at once, not retried


async def _no_send(photo_id: int) -> None:
    return None


async def test_a_photo_started_too_often_ends_failed(client, staff):
    """An attempt that never ended (its worker was killed, e.g. by the photo
    itself) counts; past PHOTO_MAX_ATTEMPTS the photo ends failed with a reason."""
    from rescue.matching.services import GallerySet, process_photo
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    settings = get_settings()
    case = await new_case(client, staff)
    stored = await _upload(case["id"], photo(OBAMA_A), await _principal(staff), _no_send)
    limit = settings.recovery.max_attempts
    await Photo.update({Photo.attempts: limit, Photo.last_error: "WorkerLost"}).where(
        Photo.id == stored.id
    )
    status = await process_photo(
        photo_id=stored.id, store=get_store(), settings=settings, galleries=GallerySet()
    )
    assert status == "failed"
    row = await Photo.select(Photo.failure_reason).where(Photo.id == stored.id).first()
    assert str(limit) in row["failure_reason"]
    assert "WorkerLost" in row["failure_reason"]


async def test_a_transient_failure_is_retried_and_not_counted(client, staff):
    from media.s3server import free_port
    from media.storage import ObjectStore, StorageUnavailable
    from rescue.matching.services import GallerySet, process_photo
    from rescue.photos.tables import Photo
    from rescue.settings import get_settings

    settings = get_settings()
    case = await new_case(client, staff)
    stored = await _upload(case["id"], photo(OBAMA_A), await _principal(staff), _no_send)
    down = ObjectStore.from_settings(
        replace(settings.storage, timeout_seconds=1, retries=0), f"127.0.0.1:{free_port()}"
    )
    with pytest.raises(StorageUnavailable):
        await process_photo(
            photo_id=stored.id, store=down, settings=settings, galleries=GallerySet()
        )
    row = (
        await Photo.select(Photo.status, Photo.attempts, Photo.last_error)
        .where(Photo.id == stored.id)
        .first()
    )
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "pending",
        0,
        "StorageUnavailable",
    )


async def test_orphan_objects_are_removed_once_old_enough_and_rows_keep_theirs(client, staff):
    from media.storage import new_object_key
    from rescue.photos.tables import Photo
    from rescue.recovery import object_references, remove_orphan_objects
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    store = get_store()
    for prefix in object_references():  # objects of earlier tests, whose rows were truncated
        for key in list(store.keys_older_than(prefix, _far_future())):
            store.remove(key)
    case = await new_case(client, staff)
    kept = await _upload(case["id"], photo(OBAMA_A), await _principal(staff), _no_send)
    orphans = [new_object_key("photos", "jpg"), new_object_key("documents", "pdf")]
    for orphan in orphans:
        store.put(orphan, b"an upload whose outcome was not decided", "image/jpeg")
    settings = get_settings().recovery
    assert await remove_orphan_objects(settings=settings, store=store) == 0  # within grace
    assert all(store.exists(orphan) for orphan in orphans)
    removed = await remove_orphan_objects(
        settings=replace(settings, orphan_grace_seconds=0), store=store
    )
    assert removed == 2
    assert not any(store.exists(orphan) for orphan in orphans)
    key = (await Photo.select(Photo.object_key).where(Photo.id == kept.id).first())["object_key"]
    assert store.exists(key)


def _far_future():
    from rescue import clock

    return clock.now() + timedelta(days=1)


def test_object_store_calls_are_bounded_when_refused_or_silent():
    from media.s3server import free_port
    from media.storage import ObjectStore, StorageUnavailable
    from rescue.settings import get_settings

    settings = replace(get_settings().storage, timeout_seconds=1, retries=1)
    refused = ObjectStore.from_settings(settings, f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        refused.put("photos/x.jpg", b"x", "image/jpeg")
    assert time.monotonic() - started < 5
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = ObjectStore.from_settings(settings, f"127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            store.get("photos/x.jpg")
        # (retries + 1) × timeout, plus back-off and slack for a loaded machine
        assert time.monotonic() - started < 2 * 1 + 5
