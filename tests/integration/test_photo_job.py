"""The worker's job for a new photo (rescue.matching.services.process_photo_job):
the duplicate-intake check runs while the photo is matched, and a failure of the
check is its own: the photo stays matched and the retry checks again."""

from __future__ import annotations

import anyio
import pytest

from tests.integration.helpers import new_case
from tests.support import OBAMA_A, OBAMA_B, photo


async def _pending_case_photo(client, staff, image: str) -> int:
    """A case with one photo stored but not processed (nothing queued)."""
    from rescue.photos.services import upload_photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from rescue.users.services import authenticate

    async def no_send(photo_id: int) -> None:
        return None

    case = await new_case(client, staff)
    stored = await upload_photo(
        owner="case",
        owner_id=case["id"],
        data=photo(image),
        taken_on=None,
        by=await authenticate(staff["Authorization"].split()[1]),
        store=get_store(),
        limits=get_settings().upload,
        enqueue=no_send,
    )
    return stored.id


async def test_the_duplicate_check_runs_while_the_photo_is_matched(client, staff, monkeypatch):
    """Matching cannot get past the notices gallery until the check has started:
    run one after the other, the job would wait for ever (the test fails after
    60 s instead)."""
    from rescue.duplicates.services import check_photo_faces
    from rescue.matching.services import GallerySet, SideGallery, process_photo_job
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    settings, store = get_settings(), get_store()
    earlier = await _pending_case_photo(client, staff, OBAMA_A)
    assert (
        await process_photo_job(
            photo_id=earlier, store=store, settings=settings, galleries=GallerySet()
        )
        == "processed"
    )
    later = await _pending_case_photo(client, staff, OBAMA_B)

    check_started = anyio.Event()

    class WaitsForTheCheck(SideGallery):
        async def refresh(self):
            await check_started.wait()
            return await super().refresh()

    galleries = GallerySet(notices=WaitsForTheCheck("notice"))
    seen: list[int] = []

    async def started_check(**kwargs):
        check_started.set()
        found = await check_photo_faces(**kwargs)
        seen.append(found)
        return found

    import rescue.duplicates.services as duplicates

    monkeypatch.setattr(duplicates, "check_photo_faces", started_check)
    with anyio.fail_after(60):
        status = await process_photo_job(
            photo_id=later, store=store, settings=settings, galleries=galleries
        )
    assert status == "processed"
    assert seen == [1]  # the earlier case, found once
    row = await Photo.select(Photo.status).where(Photo.id == later).first()
    assert row["status"] == "processed"


async def test_a_failed_duplicate_check_leaves_the_photo_matched_and_the_retry_checks_again(
    client, staff, monkeypatch
):
    import rescue.duplicates.services as duplicates
    from rescue.duplicates.tables import DuplicateFaceCheck
    from rescue.matching.services import GallerySet, process_photo_job
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    settings, store, galleries = get_settings(), get_store(), GallerySet()
    earlier = await _pending_case_photo(client, staff, OBAMA_A)
    await process_photo_job(photo_id=earlier, store=store, settings=settings, galleries=galleries)
    later = await _pending_case_photo(client, staff, OBAMA_B)

    original = duplicates.check_photo_faces
    calls: list[int] = []

    async def fails_once(**kwargs):
        calls.append(kwargs["photo_id"])
        if len(calls) == 1:
            raise RuntimeError("duplicate check failed")
        return await original(**kwargs)

    monkeypatch.setattr(duplicates, "check_photo_faces", fails_once)
    with pytest.raises(RuntimeError, match="duplicate check failed"):
        await process_photo_job(photo_id=later, store=store, settings=settings, galleries=galleries)
    row = await Photo.select(Photo.status, Photo.attempts).where(Photo.id == later).first()
    assert (row["status"], row["attempts"]) == ("processed", 1)  # matched, not retried
    assert not await DuplicateFaceCheck.exists().where(DuplicateFaceCheck.photo == later)

    # The retry (Dramatiq delivers the message again): the photo is not processed
    # again, the check is.
    status = await process_photo_job(
        photo_id=later, store=store, settings=settings, galleries=galleries
    )
    assert status == "processed"
    assert calls == [later, later]
    row = await Photo.select(Photo.attempts).where(Photo.id == later).first()
    assert row["attempts"] == 1
    check = await DuplicateFaceCheck.select(DuplicateFaceCheck.hits).where(
        DuplicateFaceCheck.photo == later
    )
    assert check == [{"hits": 1}]  # the earlier case


async def test_a_database_gone_while_matching_is_raised_as_itself_and_nothing_is_half_written(
    client, staff, monkeypatch
):
    """The database stops answering once the photo's faces are being searched (its
    address is now a closed port, as when PostgreSQL goes away). The job raises the
    connection's own error, which rescue.errors.is_unavailable recognises, so the
    worker retries it as transient; with the duplicate check alongside, it used to
    come wrapped in an ExceptionGroup and count as a failed attempt (after
    PHOTO_MAX_ATTEMPTS the photo ended failed). Nothing is half-written, and the
    retry, once the database is back, finishes the photo."""
    from media.s3server import free_port
    from rescue.cases.tables import Case
    from rescue.duplicates.tables import DuplicateFaceCheck
    from rescue.errors import is_unavailable
    from rescue.matching.gallery import FaceGallery
    from rescue.matching.services import GallerySet, process_photo_job
    from rescue.matching.tables import Candidate
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    settings, store, galleries = get_settings(), get_store(), GallerySet()
    earlier = await _pending_case_photo(client, staff, OBAMA_A)
    await process_photo_job(photo_id=earlier, store=store, settings=settings, galleries=galleries)
    later = await _pending_case_photo(client, staff, OBAMA_B)

    engine = Case._meta.db
    address = dict(engine.config)
    search = FaceGallery.search

    def search_then_lose_the_database(self, probes, threshold):
        engine.config.update(host="127.0.0.1", port=free_port())
        return search(self, probes, threshold)

    monkeypatch.setattr(FaceGallery, "search", search_then_lose_the_database)
    try:
        with pytest.raises((ConnectionError, BaseExceptionGroup)) as raised:
            await process_photo_job(
                photo_id=later, store=store, settings=settings, galleries=galleries
            )
    finally:
        engine.config.update(address)
        monkeypatch.setattr(FaceGallery, "search", search)
    assert not isinstance(raised.value, BaseExceptionGroup), repr(raised.value)
    assert is_unavailable(raised.value), repr(raised.value)

    row = await Photo.select(Photo.status, Photo.processed_at).where(Photo.id == later).first()
    assert (row["status"], row["processed_at"]) == ("pending", None)
    assert not await Candidate.exists().where(Candidate.case_photo == later)
    assert not await DuplicateFaceCheck.exists().where(DuplicateFaceCheck.photo == later)

    status = await process_photo_job(
        photo_id=later, store=store, settings=settings, galleries=galleries
    )
    assert status == "processed"
    check = await DuplicateFaceCheck.select(DuplicateFaceCheck.hits).where(
        DuplicateFaceCheck.photo == later
    )
    assert check == [{"hits": 1}]  # the earlier case
