"""Dramatiq actors. Thin: they receive ids and call the domain services."""

from __future__ import annotations

import dramatiq

import workers.broker  # noqa: F401  (sets the broker before actors are declared)
from rescue.matching import services as matching
from rescue.runtime import get_galleries, get_store
from rescue.settings import get_settings

__all__ = [
    "apply_deadlines",
    "apply_retention",
    "process_photo",
    "recover",
    "reencode",
    "rematch",
    "rematch_owner",
    "run_import",
]


@dramatiq.actor(
    queue_name="photos",
    max_retries=5,
    min_backoff=2_000,
    max_backoff=60_000,
    time_limit=15 * 60_000,
)
async def process_photo(photo_id: int) -> None:
    """Detect, encode and match the faces of photo ``photo_id``, then compare a case
    photo's faces with the other cases (duplicate intake). Idempotent.

    A transient failure (a service unreachable) raises and is retried with
    back-off (2 s, 4 s … ≤ 60 s); a permanent one ends the photo ``failed`` with
    its reason and returns (nothing to retry).
    """
    await matching.process_photo_job(
        photo_id=photo_id, store=get_store(), settings=get_settings(), galleries=get_galleries()
    )


@dramatiq.actor(queue_name="imports", max_retries=3, time_limit=6 * 60 * 60_000)
async def run_import(run_id: int, chunk_no: int | None = None) -> None:
    """Store and compare one chunk of an external list's rows (``chunk_no`` None:
    every unfinished chunk in order, or a backlog run); resumes after the chunk's
    last committed row. One message per chunk: the worker processes share a list
    (the "imports" queue is consumed one message at a time per process,
    workers.broker.LONG_JOB_QUEUES)."""
    from rescue.imports.services import execute_run

    await execute_run(run_id=run_id, store=get_store(), chunk_no=chunk_no)


async def send_import(run_id: int, chunk_no: int | None = None) -> None:
    """Queue ``run_import`` for one chunk of a run (None: the whole run, as a
    backlog run is); the broker client blocks: run it in a thread."""
    import anyio.to_thread

    if chunk_no is None:
        await anyio.to_thread.run_sync(run_import.send, run_id)
    else:
        await anyio.to_thread.run_sync(run_import.send, run_id, chunk_no)


async def send_photo(photo_id: int) -> None:
    """Queue ``process_photo`` (the broker client blocks: run it in a thread)."""
    import anyio.to_thread

    await anyio.to_thread.run_sync(process_photo.send, photo_id)


@dramatiq.actor(queue_name="maintenance", max_retries=0, time_limit=10 * 60_000)
async def recover() -> None:
    """Queue pending photos whose job was lost and remove orphan objects
    (rescue.recovery; idempotent; sent every RECOVERY_SWEEP_SECONDS)."""
    from rescue.recovery import run_sweep

    await run_sweep(settings=get_settings().recovery, store=get_store(), send=send_photo)


@dramatiq.actor(queue_name="rematch", max_retries=0, time_limit=6 * 60 * 60_000)
async def rematch(run_id: int) -> None:
    """Re-match every processed photo for rematch run ``run_id`` (progress in the run row)."""
    from rescue.matching.rematch import run_rematch

    await run_rematch(run_id=run_id, settings=get_settings(), galleries=get_galleries())


@dramatiq.actor(queue_name="rematch", max_retries=0, time_limit=24 * 60 * 60_000)
async def reencode(run_id: int) -> None:
    """Re-encode photos whose faces another model encoded, then re-match them
    (rescue.matching.reencode; progress in the run row)."""
    from rescue.matching.reencode import run_reencode

    await run_reencode(
        run_id=run_id, settings=get_settings(), store=get_store(), galleries=get_galleries()
    )


@dramatiq.actor(queue_name="rematch", max_retries=3, time_limit=60 * 60_000)
async def rematch_owner(side: str, owner_id: int) -> None:
    """Re-match one case (``side="case"``) or notice after a reviewer relaxed or
    restored one of its filters (rescue.matching.filters). Idempotent."""
    from rescue.matching.filters import rematch_owner as run

    await run(side=side, owner_id=owner_id, settings=get_settings(), galleries=get_galleries())


@dramatiq.actor(queue_name="maintenance", max_retries=3, time_limit=60 * 60_000)
async def apply_retention() -> None:
    """Delete face encodings, photos, search-request data and import lists past
    retention, and prune the face deletion log (rescue.retention; idempotent)."""
    from rescue.retention import run_retention

    await run_retention(settings=get_settings().retention, store=get_store())


@dramatiq.actor(queue_name="deadlines", max_retries=3, time_limit=10 * 60_000)
async def apply_deadlines() -> None:
    """Move cases over 10 days unidentified to ``stranded`` (idempotent; schedule daily)."""
    from rescue.alerts.services import apply_stranded

    await apply_stranded()
