"""Missing-person notice registration and lookup."""

from __future__ import annotations

from typing import Any

from rescue import clock
from rescue.errors import InvalidInput, NotFound
from rescue.i18n import _
from rescue.notices.schemas import NoticeCreate, NoticeOut
from rescue.notices.tables import Notice
from rescue.photos.schemas import PhotoSummary
from rescue.photos.services import photo_summaries
from rescue.schemas import Page
from rescue.users.services import Principal

__all__ = ["create_notice", "get_notice", "list_notices", "require_notice"]


def _validate_dates(data: NoticeCreate) -> None:
    today = clock.today()  # the station's date, not UTC's
    if data.date_of_birth and data.date_of_birth > today:
        raise InvalidInput(
            _("date_of_birth is in the future"), accepted=_("a date on or before today")
        )
    if data.missing_since and data.missing_since > today:
        raise InvalidInput(
            _("missing_since is in the future"), accepted=_("a date on or before today")
        )
    if data.date_of_birth and data.missing_since and data.missing_since < data.date_of_birth:
        raise InvalidInput(
            _("missing_since is before date_of_birth"), accepted=_("date_of_birth <= missing_since")
        )


async def create_notice(*, data: NoticeCreate, by: Principal) -> NoticeOut:
    """Register a notice. Raises InvalidInput for impossible dates."""
    _validate_dates(data)
    now = clock.now()
    rows = await Notice.insert(
        Notice(
            name=data.name.strip(),
            sex=data.sex.value,
            date_of_birth=data.date_of_birth,
            age_when_missing=data.age_when_missing,
            missing_since=data.missing_since,
            last_seen_place=data.last_seen_place,
            source=data.source.value,
            reporter_name=data.reporter_name,
            reporter_contact=data.reporter_contact,
            description=data.description,
            created_by=by.user_id,
            station=by.station,
            created_at=now,
            updated_at=now,
        )
    ).returning(Notice.id)
    return await get_notice(notice_id=int(rows[0]["id"]))


async def require_notice(*, notice_id: int) -> dict[str, Any]:
    """The notice row as a dict. Raises NotFound."""
    row = await Notice.select().where(Notice.id == notice_id).first()
    if row is None:
        raise NotFound(_("notice {notice_id} does not exist", notice_id=notice_id))
    return row


def _notice_out(row: dict[str, Any], photos: list[PhotoSummary]) -> NoticeOut:
    fields = {k: row[k] for k in NoticeOut.__struct_fields__ if k != "photos"}
    return NoticeOut(**fields, photos=photos)


async def get_notice(*, notice_id: int) -> NoticeOut:
    """One notice with its photos. Raises NotFound."""
    row = await require_notice(notice_id=notice_id)
    return _notice_out(row, await photo_summaries(notice_id=notice_id))


async def list_notices(
    *, limit: int, offset: int, status: str | None = None, text: str | None = None
) -> Page[NoticeOut]:
    """Notices, newest first; ``text``: part of the name or the last-seen place."""
    query = Notice.select().order_by(Notice.id, ascending=False).limit(limit).offset(offset)
    count = Notice.count()
    if status is not None:
        query = query.where(Notice.status == status)
        count = count.where(Notice.status == status)
    if text and text.strip():
        pattern = f"%{text.strip()}%"
        match = Notice.name.ilike(pattern) | Notice.last_seen_place.ilike(pattern)
        query = query.where(match)
        count = count.where(match)
    return Page(
        items=[_notice_out(r, []) for r in await query],
        total=await count,
        limit=limit,
        offset=offset,
    )
