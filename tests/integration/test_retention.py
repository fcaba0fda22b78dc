"""Retention: face encodings and photos of closed cases are deleted on time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio.to_thread
from click.testing import CliRunner

from tests.integration.helpers import admitted_days_ago, new_case, upload_file
from tests.support import OBAMA_A, TWO_PEOPLE


async def _close(case_id: int, status: str, by) -> None:  # type: ignore[no-untyped-def]
    from rescue.cases.flows import transition
    from rescue.cases.tables import CaseStatus

    await transition(case_id=case_id, to=CaseStatus(status), by=by, reason="test")


async def _welfare_home(case_id: int, by) -> None:  # type: ignore[no-untyped-def]
    """Settlement needs a current welfare-home placement (rescue.cases.flows)."""
    from rescue.placements.schemas import PlacementCreate
    from rescue.placements.services import create_placement
    from rescue.placements.tables import PlacementKind

    await create_placement(
        case_id=case_id,
        data=PlacementCreate(kind=PlacementKind.welfare_home, facility="区福利院"),
        by=by,
    )


async def _principal():  # type: ignore[no-untyped-def]
    from rescue.users.services import Principal, create_user
    from rescue.users.tables import Role

    user = await create_user(username="retention-staff", role="station_staff", station="north")
    return Principal(
        user_id=user, username="retention-staff", role=Role.station_staff, station="north"
    )


async def test_faces_of_closed_cases_deleted_after_the_period_and_galleries_follow(client, staff):
    from rescue.cases.events import CaseEvent
    from rescue.cases.tables import CaseStatus
    from rescue.matching.services import GallerySet
    from rescue.photos.tables import Face, Photo
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings

    by = await _principal()
    closed = await new_case(client, staff)
    await upload_file(client, staff, "case", closed["id"], OBAMA_A)
    settled = await new_case(client, staff)
    await upload_file(client, staff, "case", settled["id"], TWO_PEOPLE)
    open_case = await new_case(client, staff)
    await upload_file(client, staff, "case", open_case["id"], OBAMA_A)
    await _close(closed["id"], CaseStatus.deceased.value, by)
    await admitted_days_ago(settled["id"], 100)
    for step in ("stranded", "settlement_pending"):
        await _close(settled["id"], step, by)
    await _welfare_home(settled["id"], by)
    await _close(settled["id"], "settled", by)

    galleries = GallerySet()
    assert len(await galleries.cases.refresh()) == 4
    settings = RetentionSettings(face_days=30)
    store = get_store()
    # Within the period nothing is deleted.
    report = await run_retention(
        settings=settings, store=store, now=datetime.now(UTC) + timedelta(days=29)
    )
    assert report.faces_deleted == 0
    later = datetime.now(UTC) + timedelta(days=31)
    report = await run_retention(settings=settings, store=store, now=later)
    assert report.faces_deleted == 1
    assert report.cases == [closed["id"]]
    assert await Face.count().where(Face.case == closed["id"]) == 0
    assert await Face.count().where(Face.case == settled["id"]) == 2  # settled: search continues
    assert await Face.count().where(Face.case == open_case["id"]) == 1
    assert await Photo.count().where(Photo.case == closed["id"]) == 1  # photo_days=0 keeps photos
    event = (
        await CaseEvent.select()
        .where((CaseEvent.case == closed["id"]) & (CaseEvent.kind == "faces_deleted"))
        .first()
    )
    assert event is not None
    # The in-memory gallery notices the drop and reloads.
    gallery = await galleries.cases.refresh()
    assert len(gallery) == 3
    remaining = {int(f) for f in gallery.face_ids}
    assert remaining == {r["id"] for r in await Face.select(Face.id).where(Face.case.is_not_null())}
    # Idempotent.
    again = await run_retention(settings=settings, store=store, now=later)
    assert again.faces_deleted == 0


async def test_stale_login_counters_are_dropped(client):
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings
    from rescue.users.tables import LoginThrottle

    await client.post("/auth/login", json={"username": "ghost", "password": "x" * 12})
    assert await LoginThrottle.count() == 2  # the username and the address
    settings = RetentionSettings()
    await run_retention(settings=settings, store=get_store())
    assert await LoginThrottle.count() == 2  # recent: kept for the backoff
    report = await run_retention(
        settings=settings, store=get_store(), now=datetime.now(UTC) + timedelta(days=2)
    )
    assert report.login_counters_deleted == 2
    assert await LoginThrottle.count() == 0


async def test_photos_follow_the_station_setting(client, staff):
    from rescue.matching.tables import Candidate
    from rescue.photos.tables import Face, Photo
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings
    from tests.integration.helpers import new_notice
    from tests.support import OBAMA_B

    by = await _principal()
    notice = await new_notice(client, staff)
    await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    case = await new_case(client, staff)
    uploaded = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    assert await Candidate.count().where(Candidate.case == case["id"]) == 1
    await _close(case["id"], "deceased", by)
    row = await Photo.select(Photo.object_key).where(Photo.id == uploaded["id"]).first()
    store = get_store()
    assert await store.aexists(row["object_key"])

    now = datetime.now(UTC) + timedelta(days=100)
    keep = RetentionSettings(face_days=30, photo_days=0, photo_days_by_station={"south": 90})
    await run_retention(settings=keep, store=store, now=now)
    assert await Photo.count().where(Photo.case == case["id"]) == 1  # north keeps photos
    north90 = RetentionSettings(face_days=30, photo_days=0, photo_days_by_station={"north": 90})
    report = await run_retention(settings=north90, store=store, now=now)
    assert report.photos_deleted == 1
    assert await Photo.count().where(Photo.case == case["id"]) == 0
    assert await Face.count().where(Face.case == case["id"]) == 0
    assert not await store.aexists(row["object_key"])
    candidate = await Candidate.select().where(Candidate.case == case["id"]).first()
    assert candidate is not None  # the candidate's history stays
    assert candidate["case_photo"] is None


async def test_retention_cli_and_actor(client, staff, monkeypatch):
    from rescue.cli import main
    from rescue.photos.tables import Face

    by = await _principal()
    case = await new_case(client, staff)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    await _close(case["id"], "deceased", by)
    monkeypatch.setenv("FACE_RETENTION_DAYS", "0")
    from rescue.settings import get_settings

    get_settings.cache_clear()
    try:
        result = await anyio.to_thread.run_sync(
            lambda: CliRunner().invoke(main, ["retention", "run"])
        )
    finally:
        monkeypatch.delenv("FACE_RETENTION_DAYS")
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "deleted 1 face encoding(s)" in result.output
    assert await Face.count().where(Face.case == case["id"]) == 0


def test_scheduler_has_the_daily_retention_job():
    from rescue.scheduler import build_scheduler

    scheduler = build_scheduler(blocking=False)
    job = scheduler.get_job("retention")
    assert job is not None
    assert "hour='3'" in str(job.trigger)
    deadlines = scheduler.get_job("deadlines")
    assert deadlines is not None
    assert "minute='5'" in str(deadlines.trigger)
    assert "hour" not in str(deadlines.trigger)


async def test_retention_actor_runs_in_the_real_worker():
    from workers.actors import apply_retention
    from workers.broker import broker

    await anyio.to_thread.run_sync(apply_retention.send)
    await anyio.to_thread.run_sync(lambda: broker.join("maintenance", timeout=60_000))
