"""Publishing, unpublishing and serving family-search announcements (寻亲公告).

The public view (:func:`public_view`) is built only from the fields staff entered
and did not mark internal; it never reads the case file, so reporter contacts,
internal notes and exact addresses can never appear in it. An announcement is
unpublished automatically when its case is identified or closed (including
death): :func:`unpublish_for_status`, called by ``rescue.cases.flows.transition``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread

from media.images import public_copy
from media.storage import ObjectStore
from rescue.announcements.schemas import AnnouncedField, AnnouncementIn, AnnouncementOut
from rescue.announcements.tables import Announcement
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.photos.tables import Photo
from rescue.schemas import Page
from rescue.settings import get_settings
from rescue.users.services import Principal

__all__ = [
    "UNPUBLISH_STATUSES",
    "get_for_staff",
    "public_list",
    "public_photo",
    "public_view",
    "publish",
    "unpublish",
    "unpublish_for_status",
]

#: Statuses that end an announcement: identity found, or the person left care.
UNPUBLISH_STATUSES: frozenset[CaseStatus] = TERMINAL_STATUSES | {CaseStatus.identified}


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _public_url(row: dict[str, Any]) -> str | None:
    return f"/public/announcements/{row['id']}" if row["published"] else None


def _out(row: dict[str, Any]) -> AnnouncementOut:
    return AnnouncementOut(
        id=row["id"],
        case_id=row["case"],
        published=row["published"],
        published_at=row["published_at"],
        unpublished_at=row["unpublished_at"],
        unpublish_reason=row["unpublish_reason"],
        fields=_loads(row["fields"]),
        internal=_loads(row["internal"]),
        public_url=_public_url(row),
    )


async def publish(*, case_id: int, data: AnnouncementIn, by: Principal) -> AnnouncementOut:
    """Publish (or replace) the announcement of a case.

    Raises:
        NotFound: no such case.
        Conflict: the case is identified or closed (nothing to announce).
        InvalidInput: ``photo_id`` is not a photo of this case, or no found place.
    """
    case = await Case.select().where(Case.id == case_id).first()
    if case is None:
        raise NotFound(f"case {case_id} does not exist")
    if CaseStatus(case["status"]) in UNPUBLISH_STATUSES:
        raise Conflict(
            f"case {case_id} is {case['status']}; only a person still searched for is announced",
            accepted=sorted(s.value for s in set(CaseStatus) - UNPUBLISH_STATUSES),
        )
    if data.photo_id is not None and not await Photo.exists().where(
        (Photo.id == data.photo_id) & (Photo.case == case_id)
    ):
        raise InvalidInput(
            f"photo {data.photo_id} is not a photo of case {case_id}",
            accepted="the id of one of this case's photos, or null",
        )
    if not data.found_place.strip():
        raise InvalidInput(
            "found_place is required", accepted="the district or road where found, no exact address"
        )
    found_at = case["found_at"] or case["admitted_at"]
    fields: dict[str, Any] = {
        "photo": data.photo_id is not None,
        "name": data.name or case["reported_name"] or case["placeholder_name"],
        "sex": (data.sex or case["sex"]),
        "estimated_age": data.estimated_age
        if data.estimated_age is not None
        else case["estimated_age"],
        "height_cm": data.height_cm,
        "physical_features": data.physical_features,
        "mental_state": data.mental_state,
        "clothing": data.clothing,
        "found_date": (data.found_date or found_at.date()).isoformat(),
        "found_place": data.found_place.strip(),
        "station_contact": data.station_contact,
    }
    fields["sex"] = str(getattr(fields["sex"], "value", fields["sex"]))
    internal = sorted({f.value for f in data.internal})
    now = datetime.now(UTC)
    values = {
        Announcement.photo: data.photo_id,
        Announcement.fields: fields,
        Announcement.internal: internal,
        Announcement.published: True,
        Announcement.published_at: now,
        Announcement.published_by: by.user_id,
        Announcement.unpublished_at: None,
        Announcement.unpublish_reason: "",
        Announcement.updated_at: now,
    }
    async with Announcement._meta.db.transaction():
        await Announcement.insert(Announcement(case=case_id)).on_conflict(
            target=Announcement.case, action="DO NOTHING"
        )
        await Announcement.update(values).where(Announcement.case == case_id)  # type: ignore[arg-type]
        await _record_publication(case_id=case_id, by=by)
    return await get_for_staff(case_id=case_id)


async def _record_publication(*, case_id: int, by: Principal) -> None:
    """Publishing the 寻亲公告 here is the announcement action the 24-hour deadline
    waits for (2015 意见): the first publication records one search action (channel
    本站寻亲公告, today's station date) and its ``announcement`` timeline event;
    republishing or editing adds none (one announcement, one entry). Other
    channels are recorded against the same announcement
    (rescue.searches.services.record_announcement)."""
    from rescue import clock
    from rescue.cases.events import record_event
    from rescue.searches.tables import AnnouncementChannel, SearchAction, SearchKind

    own = await Announcement.select(Announcement.id).where(Announcement.case == case_id).first()
    assert own is not None
    channel = AnnouncementChannel.this_service.value
    if await SearchAction.exists().where(
        (SearchAction.announcement == own["id"])
        & (SearchAction.channel == channel)
        & SearchAction.voided_at.is_null()
    ):
        return
    rows = await SearchAction.insert(
        SearchAction(
            case=case_id,
            kind=SearchKind.announcement.value,
            on_date=clock.today(),
            channel=channel,
            reference=f"announcement {own['id']}",
            announcement=own["id"],
            recorded_by=by.user_id,
        )
    ).returning(SearchAction.id)
    await record_event(
        case_id=case_id,
        kind=SearchKind.announcement.value,
        actor_id=by.user_id,
        actor_role=by.role.value,
        reason=f"announcement on {channel}",
        data={"search_action_id": rows[0]["id"], "announcement_id": own["id"]},
    )


async def get_for_staff(*, case_id: int) -> AnnouncementOut:
    """The case's announcement, all fields. Raises NotFound."""
    row = await Announcement.select().where(Announcement.case == case_id).first()
    if row is None:
        raise NotFound(f"case {case_id} has no announcement")
    return _out(row)


async def unpublish(*, case_id: int, reason: str) -> bool:
    """Take a case's announcement off the public view; True if it was published."""
    changed = (
        await Announcement.update(
            {
                Announcement.published: False,
                Announcement.unpublished_at: datetime.now(UTC),
                Announcement.unpublish_reason: reason,
                Announcement.updated_at: datetime.now(UTC),
            }
        )
        .where((Announcement.case == case_id) & (Announcement.published == True))  # noqa: E712
        .returning(Announcement.id)
    )
    return bool(changed)


async def unpublish_for_status(*, case_id: int, status: CaseStatus) -> None:
    """Called on every status change: unpublish when the case is identified or closed."""
    if status in UNPUBLISH_STATUSES:
        await unpublish(case_id=case_id, reason=f"case became {status.value}")


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    """Exactly the published fields: those entered and not marked internal."""
    fields = _loads(row["fields"])
    internal = set(_loads(row["internal"]))
    view: dict[str, Any] = {"id": row["id"], "published_at": row["published_at"]}
    for name in AnnouncedField:
        if name.value in internal or name == AnnouncedField.photo:
            continue
        value = fields.get(name.value)
        if value not in (None, ""):
            view[name.value] = value
    if fields.get("photo") and "photo" not in internal and row["photo"] is not None:
        view["photo_url"] = f"/public/announcements/{row['id']}/photo"
    return view


async def _published(announcement_id: int) -> dict[str, Any]:
    row = (
        await Announcement.select()
        .where((Announcement.id == announcement_id) & (Announcement.published == True))  # noqa: E712
        .first()
    )
    if row is None:
        raise NotFound(f"announcement {announcement_id} is not published")
    return row


async def public_get(*, announcement_id: int) -> dict[str, Any]:
    """One published announcement's public view. Raises NotFound (also when unpublished)."""
    return public_view(await _published(announcement_id))


async def public_list(*, limit: int, offset: int) -> Page[dict[str, Any]]:
    """Published announcements, newest first."""
    where = Announcement.published == True  # noqa: E712
    rows = (
        await Announcement.select()
        .where(where)
        .order_by(Announcement.published_at, ascending=False)
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=[public_view(r) for r in rows],
        total=await Announcement.count().where(where),
        limit=limit,
        offset=offset,
    )


async def public_photo(*, announcement_id: int, store: ObjectStore) -> tuple[bytes, str]:
    """(bytes, media type) of a published announcement's photo: a clean JPEG copy
    (upright, ≤ 1024 px, no EXIF/GPS or other metadata; media.images.public_copy),
    never the original file.

    Raises:
        NotFound: not published, no photo, or the photo is internal.
    """
    row = await _published(announcement_id)
    fields = _loads(row["fields"])
    if row["photo"] is None or not fields.get("photo") or "photo" in _loads(row["internal"]):
        raise NotFound(f"announcement {announcement_id} publishes no photo")
    photo = (
        await Photo.select(Photo.object_key, Photo.media_type)
        .where(Photo.id == row["photo"])
        .first()
    )
    if photo is None:
        raise NotFound(f"announcement {announcement_id} publishes no photo")
    original = await store.aget(photo["object_key"])
    limit = get_settings().upload.max_pixels
    clean = await anyio.to_thread.run_sync(lambda: public_copy(original, max_pixels=limit))
    return clean, "image/jpeg"
