"""Retention of biometric data and photos after a case closes.

- Face encodings of a closed case (status in ``TERMINAL_STATUSES``) are deleted
  ``FACE_RETENTION_DAYS`` (default 30) after it closed; PIPL art. 19 and 47:
  personal information is deleted once the purpose (the family search) is
  achieved or ended, and art. 28 makes face data sensitive.
- Photos of a closed case are deleted after the station's photo retention
  (``PHOTO_RETENTION_DAYS``, per station ``PHOTO_RETENTION_DAYS_BY_STATION``;
  0 keeps them), objects first, then their rows; candidates keep their record
  with the photo reference cleared.
- Failed-login counters (usernames, client addresses) are deleted a day after
  their last failure; expired page sessions and day-old once-only form keys
  (rescue.web.sessions.purge_expired) too.
- Settled people (落户安置) are not closed: their search continues, so they keep
  both.

The moment a case closed is its last ``status_changed`` event into a terminal
status (the case timeline). Runs daily from the scheduler (``rescue retention
schedule``, or inside ``rescue serve`` in embedded mode) through the Dramatiq
actor ``workers.actors.apply_retention``, or by hand: ``rescue retention run``.
Idempotent. Each deletion is written to the case's timeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from media.storage import ObjectStore
from rescue.cases.events import CaseEvent, record_event
from rescue.cases.tables import TERMINAL_STATUSES, Case
from rescue.matching.tables import Candidate
from rescue.photos.tables import Face, Photo
from rescue.settings import RetentionSettings
from rescue.users.tables import LoginThrottle

__all__ = ["RetentionReport", "closed_cases", "run_retention"]

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    faces_deleted: int = 0
    photos_deleted: int = 0
    login_counters_deleted: int = 0
    sessions_deleted: int = 0
    cases: list[int] = field(default_factory=list)


async def closed_cases() -> dict[int, tuple[datetime, str]]:
    """Closed cases: id → (when it closed, station)."""
    terminal = [s.value for s in TERMINAL_STATUSES]
    cases = await Case.select(Case.id, Case.station, Case.updated_at).where(
        Case.status.is_in(terminal)
    )
    if not cases:
        return {}
    events = await CaseEvent.select(CaseEvent.case, CaseEvent.at).where(
        CaseEvent.case.is_in([c["id"] for c in cases])
        & (CaseEvent.kind == "status_changed")
        & CaseEvent.to_status.is_in(terminal)
    )
    closed_at: dict[int, datetime] = {}
    for e in events:
        if e["case"] not in closed_at or e["at"] > closed_at[e["case"]]:
            closed_at[e["case"]] = e["at"]
    return {c["id"]: (closed_at.get(c["id"], c["updated_at"]), str(c["station"])) for c in cases}


async def run_retention(
    *, settings: RetentionSettings, store: ObjectStore, now: datetime | None = None
) -> RetentionReport:
    """Delete face encodings and photos whose retention has passed. Idempotent.

    Returns:
        What was deleted (counts, and the cases concerned).
    """
    now = now or datetime.now(UTC)
    report = RetentionReport()
    for case_id, (closed, station) in (await closed_cases()).items():
        touched = False
        if closed <= now - timedelta(days=settings.face_days):
            deleted = await Face.delete().where(Face.case == case_id).returning(Face.id)
            if deleted:
                report.faces_deleted += len(deleted)
                touched = True
                await record_event(
                    case_id=case_id,
                    kind="faces_deleted",
                    actor_id=None,
                    actor_role="system",
                    reason=f"retention: {settings.face_days} days after closing",
                    data={"faces": len(deleted)},
                )
        photo_days = settings.photo_days_for(station)
        if photo_days > 0 and closed <= now - timedelta(days=photo_days):
            photos = await Photo.select(Photo.id, Photo.object_key).where(Photo.case == case_id)
            if photos:
                from rescue.photos.thumbnails import thumb_key

                for p in photos:  # objects first: a failure leaves rows to retry with
                    await store.aremove(thumb_key(p["object_key"]))  # pages' thumbnail
                    await store.aremove(p["object_key"])
                ids = [p["id"] for p in photos]
                async with Photo._meta.db.transaction():
                    await Candidate.update({Candidate.case_photo: None}).where(
                        Candidate.case_photo.is_in(ids)
                    )
                    from rescue.announcements.tables import Announcement

                    await Announcement.update({Announcement.photo: None}).where(
                        Announcement.photo.is_in(ids)
                    )
                    faces = await Face.delete().where(Face.photo.is_in(ids)).returning(Face.id)
                    await Photo.delete().where(Photo.id.is_in(ids))
                    await record_event(
                        case_id=case_id,
                        kind="photos_deleted",
                        actor_id=None,
                        actor_role="system",
                        reason=f"retention: {photo_days} days after closing ({station or '-'})",
                        data={"photos": len(ids)},
                    )
                report.faces_deleted += len(faces)
                report.photos_deleted += len(ids)
                touched = True
        if touched:
            report.cases.append(case_id)
    stale = (
        await LoginThrottle.delete()
        .where(LoginThrottle.last_failed_at < now - timedelta(days=1))
        .returning(LoginThrottle.id)
    )
    report.login_counters_deleted = len(stale)
    from rescue.web.sessions import purge_expired

    report.sessions_deleted = await purge_expired(now=now)
    log.info(
        "retention: %s face encodings and %s photos deleted (%s cases)",
        report.faces_deleted,
        report.photos_deleted,
        len(report.cases),
    )
    return report
