"""Re-encoding of stored photos when the face model changes (issue 16).

Every face records the model that encoded it (``faces.model``). Distances between
encodings of two models mean nothing, so galleries hold only faces of the model in
use (``MODEL_NAME``; rescue.matching.services.SideGallery) and a search probes
only with those: faces of another model are not searched until re-encoded.

A re-encoding run (a ``rematch_runs`` row with ``kind="reencode"``, progress in
``total``/``done``; CLI ``rescue reencode``, admin API ``/api/admin/reencode``):

1. takes every photo with a face of another model (``total``);
2. per photo: reads the original from the object store, detects and encodes it
   again with the model in use, and replaces the photo's faces in one
   transaction (new face rows, so every worker's gallery drops the old ones
   through the deletion log and loads the new ones);
3. then re-matches each re-encoded photo (rescue.matching.services.match_photo),
   so candidates are proposed again from the new encodings (the ledger keeps one
   row per pair, its reviews and rejections).

A photo whose original is missing (or no longer decodes) keeps its old faces,
which stay out of every search; it is counted in ``error``. The calibration
bands are per model already (``match_calibrations.model``; the shipped default
applies to the model it was measured on only: rescue.matching.calibration).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from media.images import ImageRejected
from media.storage import ObjectMissing, ObjectStore
from rescue import clock
from rescue.matching.embedding import MODEL_NAME
from rescue.matching.rematch import FINISHED, PROGRESS_EVERY, _cancelled, get_rematch
from rescue.matching.schemas import RematchRunOut
from rescue.matching.tables import RematchRun
from rescue.photos.tables import Face, Photo
from rescue.settings import Settings
from rescue.users.services import Principal

__all__ = ["run_reencode", "stale_photo_ids", "start_reencode"]

log = logging.getLogger(__name__)


async def stale_photo_ids() -> list[int]:
    """Ids of photos with at least one face encoded by another model than ``MODEL_NAME``."""
    rows = await Face.select(Face.photo).where(Face.model != MODEL_NAME).distinct()
    return sorted(int(r["photo"]) for r in rows)


async def start_reencode(
    *,
    by: Principal | None,
    settings: Settings,
    enqueue: Callable[[int], Awaitable[None]],
) -> RematchRunOut:
    """Create a re-encoding run over the photos with faces of another model and
    queue it. Returns the run (``queued``; ``total`` photos, ``model`` the one in use)."""
    rows = await RematchRun.insert(
        RematchRun(
            kind="reencode",
            status="queued",
            total=len(await stale_photo_ids()),
            threshold=settings.matching.threshold,
            model=MODEL_NAME,
            requested_by=by.user_id if by else None,
        )
    ).returning(RematchRun.id)
    run_id = int(rows[0]["id"])
    await enqueue(run_id)
    return await get_rematch(run_id=run_id)


async def _reencode_photo(photo_id: int, *, store: ObjectStore, settings: Settings) -> bool:
    """Replace one photo's faces by faces of the model in use. False: the original
    is missing or no longer decodes (the old faces stay, out of every search)."""
    from rescue.matching.services import detect_faces, face_rows

    photo = (
        await Photo.select(Photo.id, Photo.case, Photo.notice, Photo.object_key)
        .where(Photo.id == photo_id)
        .first()
    )
    if photo is None:
        return True  # deleted meanwhile: nothing left to re-encode
    try:
        data = await store.aget(photo["object_key"])
        faces, qualities = await anyio.to_thread.run_sync(detect_faces, data, settings)
    except (ObjectMissing, ImageRejected) as exc:
        log.warning("photo %s not re-encoded: %s", photo_id, type(exc).__name__)
        return False
    async with Face._meta.db.transaction():
        await Face.delete().where(Face.photo == photo_id)
        if faces:
            await Face.insert(*face_rows(photo, faces, qualities))
    return True


async def run_reencode(
    *,
    run_id: int,
    settings: Settings,
    store: ObjectStore,
    galleries: Any,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Re-encode, then re-match, every photo with faces of another model; returns the
    final status (``done``, ``failed``, ``cancelled``).

    Idempotent: a finished run is left alone; a redelivered one takes the photos
    still stale (re-encoded ones are no longer). ``done`` counts photos re-encoded
    (or found unreadable); matching follows once all are re-encoded, so each
    search sees the whole re-encoded gallery.

    Args:
        progress: called with (done, total) after each photo (the CLI's progress bar).
    """
    from rescue.matching.services import match_photo

    row = await RematchRun.select().where(RematchRun.id == run_id).first()
    if row is None or row["status"] in FINISHED:
        return row["status"] if row else "missing"
    ids = await stale_photo_ids()
    await RematchRun.update(
        {
            RematchRun.status: "running",
            RematchRun.total: len(ids),
            RematchRun.done: 0,
            RematchRun.started_at: clock.now(),
        }
    ).where((RematchRun.id == run_id) & RematchRun.status.is_in(["queued", "running"]))
    if await _cancelled(run_id):
        return "cancelled"
    unreadable: list[int] = []
    touched: set[int] = set()
    try:
        for done, photo_id in enumerate(ids, start=1):
            if not await _reencode_photo(photo_id, store=store, settings=settings):
                unreadable.append(photo_id)
            if progress is not None:
                progress(done, len(ids))
            if done % PROGRESS_EVERY == 0 or done == len(ids):
                if await _cancelled(run_id):
                    return "cancelled"
                await RematchRun.update({RematchRun.done: done}).where(RematchRun.id == run_id)
        for photo_id in ids:
            if photo_id not in unreadable:
                touched.update(
                    await match_photo(photo_id=photo_id, settings=settings, galleries=galleries)
                )
    except Exception as exc:
        log.exception("re-encoding run %s failed", run_id)
        await RematchRun.update(
            {
                RematchRun.status: "failed",
                RematchRun.error: f"{type(exc).__name__}: {exc}"[:2000],
                RematchRun.finished_at: clock.now(),
            }
        ).where(RematchRun.id == run_id)
        return "failed"
    note = f"{len(unreadable)} photo(s) not re-encoded (original missing or unreadable): "
    await RematchRun.update(
        {
            RematchRun.status: "done",
            RematchRun.done: len(ids),
            RematchRun.candidates_touched: len(touched),
            RematchRun.error: (note + ", ".join(map(str, unreadable)))[:2000] if unreadable else "",
            RematchRun.finished_at: clock.now(),
        }
    ).where((RematchRun.id == run_id) & (RematchRun.status == "running"))
    return "done"
