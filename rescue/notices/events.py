"""The notice log: an append-only record of what happened to a missing-person notice.

Cases have their timeline (rescue.cases.events); notices get this smaller log so
that confirming a candidate is visible from both sides.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSON, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.notices.tables import Notice

__all__ = ["NoticeEvent", "notice_events", "record_notice_event"]


class NoticeEvent(Table, tablename="notice_events"):
    """One notice log entry (who, when, what, why). Never updated or deleted."""

    id: Serial
    notice = ForeignKey(references=Notice)
    at = Timestamptz(default=TimestamptzNow())
    actor_id = Integer(null=True, default=None)  # users.id; None = the system
    actor_role = Varchar(length=32, default="system")
    kind = Varchar(length=48)  # e.g. status_changed, candidate_confirmed
    from_status = Varchar(length=16, null=True, default=None)
    to_status = Varchar(length=16, null=True, default=None)
    reason = Text(default="")
    data = JSON(default="{}")


async def record_notice_event(
    *,
    notice_id: int,
    kind: str,
    actor_id: int | None,
    actor_role: str,
    reason: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Append an event to a notice's log; returns its id."""
    rows = await NoticeEvent.insert(
        NoticeEvent(
            notice=notice_id,
            actor_id=actor_id,
            actor_role=actor_role,
            kind=kind,
            reason=reason,
            from_status=from_status,
            to_status=to_status,
            data=data or {},
        )
    ).returning(NoticeEvent.id)
    return int(rows[0]["id"])


async def notice_events(*, notice_id: int) -> list[dict[str, Any]]:
    """A notice's log, oldest first (rows as dicts)."""
    return list(
        await NoticeEvent.select().where(NoticeEvent.notice == notice_id).order_by(NoticeEvent.id)
    )
