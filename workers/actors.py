"""Dramatiq actors. Thin: they receive ids and call the domain services."""

from __future__ import annotations

import dramatiq

import workers.broker  # noqa: F401  (sets the broker before actors are declared)
from rescue.matching import services as matching
from rescue.runtime import get_galleries, get_store
from rescue.settings import get_settings

__all__ = ["apply_deadlines", "process_photo"]


@dramatiq.actor(queue_name="photos", max_retries=5, min_backoff=2_000, time_limit=15 * 60_000)
async def process_photo(photo_id: int) -> None:
    """Detect, encode and match the faces of photo ``photo_id`` (idempotent)."""
    await matching.process_photo(
        photo_id=photo_id, store=get_store(), settings=get_settings(), galleries=get_galleries()
    )


@dramatiq.actor(queue_name="deadlines", max_retries=3, time_limit=10 * 60_000)
async def apply_deadlines() -> None:
    """Move cases over 10 days unidentified to ``stranded`` (idempotent; schedule daily)."""
    from rescue.alerts.services import apply_stranded

    await apply_stranded()
