"""Recovery of work owed after a broker, worker or object-store failure.

The database is the record of what is owed; the broker only carries reminders.
:func:`run_sweep` (sent every ``RECOVERY_SWEEP_SECONDS`` by the scheduler that
``rescue retention schedule`` and embedded ``rescue serve`` run; executed by a
worker as the ``recover`` actor) does two things, both safe to repeat:

1. **Lost jobs.** A photo still ``pending`` that was never handed to the broker
   (``queued_at`` empty: the broker was down at upload), or was handed to it
   more than ``PHOTO_REQUEUE_AFTER_SECONDS`` ago (the message was lost with
   Redis, or its worker died), is queued again. Face processing is idempotent
   (rescue.matching.services.process_photo), so a duplicate costs time only.
2. **Orphan objects.** An object under ``photos/``, ``documents/`` or
   ``evidence/`` older than ``ORPHAN_GRACE_SECONDS`` that no row refers to
   (:func:`object_references`: an upload whose outcome could not be decided, or
   a write the store finished after the client was told it failed) is removed.

:func:`status` gives what a readiness check needs: whether the broker answers
and the pending-photo backlog with its oldest age.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio.to_thread

from media.storage import ObjectStore
from rescue import clock
from rescue.photos.services import Backlog, pending_backlog, pending_photo_ids, queue_photos
from rescue.photos.tables import Photo
from rescue.settings import RecoverySettings

__all__ = ["RecoveryStatus", "SweepReport", "remove_orphan_objects", "run_sweep", "status"]

log = logging.getLogger(__name__)

#: Keys looked up per query when matching objects to rows.
_KEY_BATCH = 500


def object_references() -> dict[str, list[Any]]:
    """Object-key prefix → the columns whose rows refer to objects under it
    (every ``new_object_key(prefix, …)`` of the service)."""
    from rescue.escorts.tables import Handover
    from rescue.matching.tables import CandidateEvidence
    from rescue.placements.tables import PlacementDocument

    return {
        "photos": [Photo.object_key],
        "documents": [PlacementDocument.object_key, Handover.sheet_object_key],
        "evidence": [CandidateEvidence.attachment_key],
    }


async def _referenced(columns: list[Any], keys: list[str]) -> set[str]:
    found: set[str] = set()
    for column in columns:
        table = column._meta.table
        rows = await table.select(column).where(column.is_in(keys))
        found |= {r[column._meta.name] for r in rows}
    return found


@dataclass
class SweepReport:
    requeued: int = 0
    orphans_removed: int = 0
    errors: list[str] | None = None


async def requeue_stale_photos(
    *, settings: RecoverySettings, send: Callable[[int], Awaitable[None]]
) -> int:
    """Queue again every pending photo never queued or queued before
    ``now - PHOTO_REQUEUE_AFTER_SECONDS``. Returns how many were sent."""
    before = clock.now() - timedelta(seconds=settings.requeue_after_seconds)
    ids = await pending_photo_ids(queued_before=before)
    if not ids:
        return 0
    sent = await queue_photos(photo_ids=ids, send=send)
    log.info("recovery: queued %d pending photo(s) again", sent)
    return sent


async def remove_orphan_objects(*, settings: RecoverySettings, store: ObjectStore) -> int:
    """Remove objects older than ``ORPHAN_GRACE_SECONDS`` that no row refers to
    (:func:`object_references`). Returns how many were removed."""
    before = clock.now() - timedelta(seconds=settings.orphan_grace_seconds)
    removed = 0
    for prefix, columns in object_references().items():
        keys = await store.akeys_older_than(prefix, before)
        for start in range(0, len(keys), _KEY_BATCH):
            batch = keys[start : start + _KEY_BATCH]
            known = await _referenced(columns, batch)
            for key in batch:
                # Ask again just before removing: an upload may have recorded it since.
                if key in known or await _referenced(columns, [key]):
                    continue
                await store.aremove(key)
                removed += 1
    if removed:
        log.warning("recovery: removed %d object(s) no photo refers to", removed)
    return removed


async def run_sweep(
    *, settings: RecoverySettings, store: ObjectStore, send: Callable[[int], Awaitable[None]]
) -> SweepReport:
    """Both recovery steps; a failure of one does not stop the other.

    Raises:
        Exception: the first failure, after both steps ran (the actor retries).
    """
    report = SweepReport(errors=[])
    failures: list[Exception] = []
    try:
        report.requeued = await requeue_stale_photos(settings=settings, send=send)
    except Exception as exc:  # noqa: BLE001 - reported below
        failures.append(exc)
    try:
        report.orphans_removed = await remove_orphan_objects(settings=settings, store=store)
    except Exception as exc:  # noqa: BLE001 - reported below
        failures.append(exc)
    if failures:
        report.errors = [repr(f) for f in failures]
        raise failures[0]
    return report


@dataclass(frozen=True)
class RecoveryStatus:
    """``broker_reachable``: the job queue answers; ``backlog``: pending photos."""

    broker_reachable: bool
    backlog: Backlog


async def status() -> RecoveryStatus:
    """Broker reachability and the pending-photo backlog (for ``/health/ready``
    and metrics). Costs one PING (≤ ``BROKER_TIMEOUT_SECONDS``) and two counts."""
    from workers.broker import broker_reachable

    reachable = await anyio.to_thread.run_sync(broker_reachable)
    return RecoveryStatus(broker_reachable=reachable, backlog=await pending_backlog())
