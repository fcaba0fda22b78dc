"""On-demand re-matching of every processed photo (after a threshold or model change).

A run is a row in ``rematch_runs`` (``total``/``done`` show progress); the
Dramatiq actor ``workers.actors.rematch`` works through it. New photos are
matched as they arrive (``process_photo``); this is for changes of the matcher
itself. Rejected pairs are not re-proposed by a re-match: the photos are the
same ones the reviewer saw (see rescue.matching.ledger.record_face_matches).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from rescue.errors import Conflict, NotFound
from rescue.i18n import _
from rescue.matching.embedding import MODEL_NAME
from rescue.matching.schemas import RematchRunOut
from rescue.matching.tables import RematchRun
from rescue.photos.tables import Photo, PhotoStatus
from rescue.settings import Settings
from rescue.users.services import Principal

__all__ = ["cancel_rematch", "get_rematch", "list_rematches", "run_rematch", "start_rematch"]

#: A run in one of these states is over; ``cancelled`` stops it at its next
#: progress write (within ``PROGRESS_EVERY`` photos).
FINISHED = frozenset({"done", "failed", "cancelled"})

log = logging.getLogger(__name__)

#: Progress is written every this many photos (and at the end).
PROGRESS_EVERY = 10


def _out(row: dict[str, Any]) -> RematchRunOut:
    return RematchRunOut(**{k: row[k] for k in RematchRunOut.__struct_fields__ if k in row})


async def start_rematch(
    *,
    by: Principal | None,
    settings: Settings,
    enqueue: Callable[[int], Awaitable[None]],
) -> RematchRunOut:
    """Create a run over every processed photo and queue it. Returns the run (``queued``)."""
    total = await Photo.count().where(Photo.status == PhotoStatus.processed.value)
    rows = await RematchRun.insert(
        RematchRun(
            status="queued",
            total=total,
            threshold=settings.matching.threshold,
            model=MODEL_NAME,
            requested_by=by.user_id if by else None,
        )
    ).returning(RematchRun.id)
    run_id = int(rows[0]["id"])
    await enqueue(run_id)
    return await get_rematch(run_id=run_id)


async def get_rematch(*, run_id: int) -> RematchRunOut:
    """A run's progress. Raises NotFound."""
    row = await RematchRun.select().where(RematchRun.id == run_id).first()
    if row is None:
        raise NotFound(_("rematch run {run_id} does not exist", run_id=run_id))
    return _out(row)


async def list_rematches(*, limit: int = 20) -> list[RematchRunOut]:
    """The latest ``limit`` runs, newest first."""
    rows = await RematchRun.select().order_by(RematchRun.id, ascending=False).limit(limit)
    return [_out(r) for r in rows]


async def cancel_rematch(*, run_id: int) -> RematchRunOut:
    """Cancel a queued or running run: it stops at its next progress write and keeps
    what it matched so far (matching only adds evidence). Raises NotFound, and
    Conflict when the run is already over."""
    run = await get_rematch(run_id=run_id)
    if run.status in FINISHED:
        raise Conflict(
            _("rematch run {run_id} is already {status}", run_id=run_id, status=run.status),
            accepted=_("a queued or running run"),
        )
    await RematchRun.update(
        {RematchRun.status: "cancelled", RematchRun.finished_at: datetime.now(UTC)}
    ).where((RematchRun.id == run_id) & RematchRun.status.is_in(["queued", "running"]))
    return await get_rematch(run_id=run_id)


async def _cancelled(run_id: int) -> bool:
    row = await RematchRun.select(RematchRun.status).where(RematchRun.id == run_id).first()
    return row is None or row["status"] == "cancelled"


async def run_rematch(
    *,
    run_id: int,
    settings: Settings,
    galleries: Any,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Match every processed photo again (both directions); returns the final status.

    Idempotent: a finished run is left alone; a redelivered running one starts over
    (matching only ever adds evidence or lowers distances). A run cancelled
    meanwhile (:func:`cancel_rematch`) stops at its next progress write.

    Args:
        progress: called with (done, total) after each photo (the CLI's progress bar).
    """
    from rescue.matching.services import match_photo

    row = await RematchRun.select().where(RematchRun.id == run_id).first()
    if row is None or row["status"] in FINISHED:
        return row["status"] if row else "missing"
    ids = [
        int(r["id"])
        for r in await Photo.select(Photo.id)
        .where(Photo.status == PhotoStatus.processed.value)
        .order_by(Photo.id)
    ]
    await RematchRun.update(
        {
            RematchRun.status: "running",
            RematchRun.total: len(ids),
            RematchRun.done: 0,
            RematchRun.started_at: datetime.now(UTC),
        }
    ).where((RematchRun.id == run_id) & RematchRun.status.is_in(["queued", "running"]))
    if await _cancelled(run_id):
        return "cancelled"
    touched: set[int] = set()
    try:
        for done, photo_id in enumerate(ids, start=1):
            touched.update(
                await match_photo(photo_id=photo_id, settings=settings, galleries=galleries)
            )
            if progress is not None:
                progress(done, len(ids))
            if done % PROGRESS_EVERY == 0 or done == len(ids):
                if await _cancelled(run_id):
                    log.info("rematch run %s cancelled after %d photo(s)", run_id, done)
                    return "cancelled"
                await RematchRun.update(
                    {RematchRun.done: done, RematchRun.candidates_touched: len(touched)}
                ).where(RematchRun.id == run_id)
    except Exception as exc:
        log.exception("rematch run %s failed", run_id)
        await RematchRun.update(
            {
                RematchRun.status: "failed",
                RematchRun.error: f"{type(exc).__name__}: {exc}"[:2000],
                RematchRun.finished_at: datetime.now(UTC),
            }
        ).where(RematchRun.id == run_id)
        return "failed"
    await RematchRun.update(
        {
            RematchRun.status: "done",
            RematchRun.done: len(ids),
            RematchRun.candidates_touched: len(touched),
            RematchRun.finished_at: datetime.now(UTC),
        }
    ).where((RematchRun.id == run_id) & (RematchRun.status == "running"))
    return "done"
