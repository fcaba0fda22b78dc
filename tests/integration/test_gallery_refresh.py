"""A worker's gallery follows the faces table: exact-size first load in pages, then increments."""

from __future__ import annotations

import numpy as np

from rescue.matching import services
from rescue.matching.gallery import DIM, FaceGallery
from rescue.matching.services import SideGallery
from rescue.notices.tables import Notice
from rescue.photos.tables import Face
from tests.integration.helpers import stored_faces


async def _notice_faces(count: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    rows = await Notice.insert(Notice(name="王五", source="family")).returning(Notice.id)
    vectors = rng.normal(0.0, 0.05, (count, DIM))
    _photo, ids = await stored_faces(vectors, notice=rows[0]["id"])
    return dict(zip(ids, vectors, strict=True))


def _held(side: SideGallery | FaceGallery) -> dict[int, np.ndarray]:
    gallery = side.gallery if isinstance(side, SideGallery) else side
    return {int(f): gallery.vectors[i] for i, f in enumerate(gallery.face_ids)}


async def test_gallery_loads_in_pages_then_adds_and_reloads_after_removal(monkeypatch):
    monkeypatch.setattr(services, "_LOAD_BATCH", 3)  # several pages
    rng = np.random.default_rng(0)
    faces = await _notice_faces(7, rng)
    side = SideGallery("notice")

    gallery = await side.refresh()
    assert _held(side).keys() == faces.keys()
    for face_id, vector in faces.items():
        np.testing.assert_allclose(_held(side)[face_id], vector, rtol=1e-6)
    assert gallery.nbytes <= 1.06 * len(gallery) * DIM * 4 + 1024  # exact-size first load

    def no_count(*args, **kwargs):
        raise AssertionError("refresh counted the faces table")

    monkeypatch.setattr(Face, "count", no_count)  # later refreshes never scan the table
    faces |= await _notice_faces(2, rng)
    assert await side.refresh() is gallery  # incremental: the same gallery grows
    assert _held(side).keys() == faces.keys()

    gone = next(iter(faces))
    await Face.delete().where(Face.id == gone)
    assert await side.refresh() is gallery  # from the deletion log, no reload
    assert _held(side).keys() == faces.keys() - {gone}
    assert gallery.owner_count == 2  # two notices


async def test_a_face_committed_late_under_a_larger_id_is_still_loaded(monkeypatch):
    """Another worker's insert can take an id, then commit after a larger id was
    loaded: the id is remembered as a gap and loaded when it appears."""
    from rescue import clock
    from rescue.photos.tables import Face as FaceTable

    rng = np.random.default_rng(1)
    await _notice_faces(2, rng)
    side = SideGallery("notice")
    await side.refresh()
    # A face committed with a larger id while top + 1 .. top + 2 are still in flight.
    late = dict(await _notice_faces(3, rng))
    first, second, third = sorted(late)
    held_back = {first: late[first], second: late[second]}
    rows = await FaceTable.select().where(FaceTable.id.is_in([first, second]))
    await FaceTable.delete().where(FaceTable.id.is_in([first, second]))
    await services.FaceDeletion.delete().where(services.FaceDeletion.face_id.is_in([first, second]))
    await side.refresh()
    assert third in _held(side)
    assert first not in _held(side)
    assert {first, second} <= side.gaps.keys()
    # Now they "commit" (same ids), and the next refresh finds them.
    await FaceTable.insert(*[FaceTable(**r) for r in rows])
    await side.refresh()
    assert held_back.keys() <= _held(side).keys()
    assert not {first, second} & side.gaps.keys()
    # A gap that never fills is forgotten after GAP_SECONDS.
    monkeypatch.setattr(clock, "_monotonic_offset", clock._monotonic_offset)  # restored after
    side.gaps[10**9] = clock.monotonic()
    clock.advance(services.GAP_SECONDS + 1)
    await side.refresh()
    assert 10**9 not in side.gaps


async def test_truncating_the_faces_table_empties_the_gallery():
    rng = np.random.default_rng(2)
    await _notice_faces(3, rng)
    side = SideGallery("notice")
    assert len(await side.refresh()) == 3
    await Face._meta.db.run_ddl("TRUNCATE faces")
    faces = await _notice_faces(1, rng)
    assert _held(await side.refresh()).keys() == faces.keys()


async def test_gallery_holds_only_faces_of_the_model_in_use():
    """Distances across two models mean nothing: faces of another model are loaded
    neither at the first load nor later (they wait for a re-encoding run)."""
    rng = np.random.default_rng(1)
    current = await _notice_faces(3, rng)
    stale = await _notice_faces(2, rng)
    await Face.update({Face.model: "another-model"}).where(Face.id.is_in(list(stale)))
    side = SideGallery("notice")
    await side.refresh()
    assert _held(side).keys() == current.keys()
    later = await _notice_faces(2, rng)
    await Face.update({Face.model: "another-model"}).where(Face.id == min(later))
    await side.refresh()
    assert _held(side).keys() == current.keys() | {max(later)}


async def test_a_worker_behind_the_pruned_deletion_log_reloads_and_drops_the_deleted_face():
    """The retention run prunes the deletion log (rescue.retention.prune_deletion_log):
    a gallery that had not read the pruned entries (an idle worker) must not keep a
    face deleted meanwhile; one that had read them goes on incrementally."""
    from datetime import timedelta

    from rescue import clock
    from rescue.matching.tables import RELOAD_MARKER, FaceDeletion
    from rescue.retention import DELETION_LOG_DAYS, prune_deletion_log

    await FaceDeletion.delete(force=True)  # the set-up's TRUNCATE logged a marker
    rng = np.random.default_rng(3)
    faces = await _notice_faces(4, rng)
    first, second, third, _fourth = sorted(faces)
    stale, current = SideGallery("notice"), SideGallery("notice")
    assert _held(await stale.refresh()).keys() == faces.keys()
    await Face.delete().where(Face.id == first)
    stale_gallery = await stale.refresh()  # reads the entry of ``first``
    await Face.delete().where(Face.id == second)  # the stale worker never reads this one
    current_gallery = await current.refresh()
    assert second in _held(stale)
    assert second not in _held(current)
    assert await FaceDeletion.count() == 2

    later = clock.now() + timedelta(days=DELETION_LOG_DAYS, minutes=1)
    assert await prune_deletion_log(now=clock.now()) == 0  # nothing old yet
    assert await prune_deletion_log(now=later) == 2

    # The stale gallery's position is under the pruned entries: it still drops
    # ``second`` (by reloading).
    reloaded = await stale.refresh()
    assert _held(stale).keys() == faces.keys() - {first, second}
    assert reloaded is not stale_gallery
    # The current one read past the pruned entries: no reload, nothing missed.
    assert await current.refresh() is current_gallery
    assert _held(current).keys() == faces.keys() - {first, second}
    # What is left of the log: the marker in place of the newest pruned entry.
    (marker,) = await FaceDeletion.select()
    assert marker["face_id"] == RELOAD_MARKER
    assert await prune_deletion_log(now=later) == 0  # idempotent: the marker stays
    assert await FaceDeletion.count() == 1
    # Both go on incrementally from the log after the marker.
    await Face.delete().where(Face.id == third)
    assert await stale.refresh() is reloaded
    assert await current.refresh() is current_gallery
    assert third not in _held(stale)
    assert third not in _held(current)


async def _connection():
    """A connection of its own (asyncpg), for a transaction kept open across refreshes."""
    import asyncpg

    from rescue.db import postgres_config
    from rescue.settings import get_settings

    return await asyncpg.connect(**postgres_config(get_settings().database.url))


async def _log_id(face_id: int) -> int:
    from rescue.matching.tables import FaceDeletion

    row = await FaceDeletion.select(FaceDeletion.id).where(FaceDeletion.face_id == face_id).first()
    assert row is not None
    return int(row["id"])


async def test_a_deletion_committed_after_a_later_one_still_removes_its_face():
    """Deletion-log ids are taken at the delete and seen at the commit: a deletion
    that commits after a later one must still reach the gallery (a deletion gap)."""
    rng = np.random.default_rng(4)
    faces = await _notice_faces(3, rng)
    a, b, kept = sorted(faces)
    side = SideGallery("notice")
    await side.refresh()
    t1, t2 = await _connection(), await _connection()
    try:
        first = t1.transaction()
        await first.start()
        await t1.execute("DELETE FROM faces WHERE id = $1", a)  # takes a log id, stays open
        async with t2.transaction():
            await t2.execute("DELETE FROM faces WHERE id = $1", b)  # the next log id, committed
        await side.refresh()
        assert b not in _held(side)
        assert a in _held(side)  # not deleted yet: its deletion is uncommitted
        await first.commit()
    finally:
        await t1.close()
        await t2.close()
    assert await _log_id(a) < await _log_id(b)  # the race as it happens: a's entry read late
    await side.refresh()
    assert _held(side).keys() == {kept}
    assert not side.deletion_gaps  # found: no longer looked up


async def test_a_rolled_back_deletion_leaves_a_hole_forgotten_after_gap_seconds(monkeypatch):
    from rescue import clock

    monkeypatch.setattr(clock, "_monotonic_offset", clock._monotonic_offset)  # restored after
    rng = np.random.default_rng(5)
    faces = await _notice_faces(3, rng)
    a, b, kept = sorted(faces)
    side = SideGallery("notice")
    await side.refresh()
    t1 = await _connection()
    try:
        undone = t1.transaction()
        await undone.start()
        await t1.execute("DELETE FROM faces WHERE id = $1", a)
        await Face.delete().where(Face.id == b)
        await side.refresh()
        (hole,) = side.deletion_gaps
        assert hole < await _log_id(b)
        await undone.rollback()  # the log id is never used
    finally:
        await t1.close()
    clock.advance(services.GAP_SECONDS - 1)
    await side.refresh()
    assert hole in side.deletion_gaps  # still looked up
    assert _held(side).keys() == {a, kept}
    clock.advance(2)
    await side.refresh()
    assert not side.deletion_gaps  # forgotten
    await Face.delete().where(Face.id == kept)  # later deletions still arrive
    await side.refresh()
    assert _held(side).keys() == {a}


async def test_a_deletion_uncommitted_at_the_first_load_still_removes_its_face():
    """The same race at a (re)load: the log position is the largest entry visible,
    and an entry under it still uncommitted is a deletion gap; the holes under a
    reload marker (the set-up's TRUNCATE left one) are not."""
    from rescue.matching.tables import RELOAD_MARKER, FaceDeletion

    rng = np.random.default_rng(6)
    await _notice_faces(2, rng)
    await Face.delete(force=True)  # two log entries, then emptied: holes under the marker
    await Face._meta.db.run_ddl("TRUNCATE faces, face_deletions")
    (marker,) = await FaceDeletion.select()
    assert marker["face_id"] == RELOAD_MARKER
    faces = await _notice_faces(3, rng)
    a, b, kept = sorted(faces)
    t1, t2 = await _connection(), await _connection()
    try:
        first = t1.transaction()
        await first.start()
        await t1.execute("DELETE FROM faces WHERE id = $1", a)
        async with t2.transaction():
            await t2.execute("DELETE FROM faces WHERE id = $1", b)
        side = SideGallery("notice")  # a worker starting now
        await side.refresh()
        assert _held(side).keys() == {a, kept}
        await first.commit()
    finally:
        await t1.close()
        await t2.close()
    assert side.deletion_gaps.keys() == {await _log_id(a)}
    await side.refresh()
    assert _held(side).keys() == {kept}
    assert not side.deletion_gaps
