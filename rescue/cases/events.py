"""The case timeline: an append-only record of everything that happened to a case."""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSON, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case

__all__ = ["CaseEvent", "record_event"]


class CaseEvent(Table, tablename="case_events"):
    """One timeline entry (who, when, what, why). Never updated or deleted: a
    database trigger refuses UPDATE and DELETE (migration 2026-11-29T12:12:03)."""

    id: Serial
    case = ForeignKey(references=Case)
    at = Timestamptz(default=TimestamptzNow())
    actor_id = Integer(null=True, default=None)  # users.id; None = the system
    actor_role = Varchar(length=32, default="system")
    kind = Varchar(length=48)  # e.g. status_changed, photo_added, candidate_confirmed
    from_status = Varchar(length=32, null=True, default=None)
    to_status = Varchar(length=32, null=True, default=None)
    reason = Text(default="")
    data = JSON(default="{}")
    #: For an entry recorded later (历史补录): when it happened; ``at`` is when it
    #: was recorded. None: it happened at ``at``.
    occurred_at = Timestamptz(null=True, default=None)


async def record_event(
    *,
    case_id: int,
    kind: str,
    actor_id: int | None,
    actor_role: str,
    reason: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: Any = None,
) -> int:
    """Append an event to a case's timeline; returns its id. ``occurred_at``: an
    entry recorded later (历史补录) — when it happened (``at`` stays the moment
    it is recorded)."""
    from rescue import clock

    rows = await CaseEvent.insert(
        CaseEvent(
            case=case_id,
            at=clock.now(),
            actor_id=actor_id,
            actor_role=actor_role,
            kind=kind,
            reason=reason,
            from_status=from_status,
            to_status=to_status,
            data=data or {},
            occurred_at=occurred_at,
        )
    ).returning(CaseEvent.id)
    return int(rows[0]["id"])
