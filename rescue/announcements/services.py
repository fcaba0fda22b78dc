"""Publishing, unpublishing and serving family-search announcements (寻亲公告).

The public view (:func:`public_view`) is built only from the fields staff entered
and did not mark internal; it never reads the case file, so reporter contacts,
internal notes and exact addresses can never appear in it. An announcement is
unpublished automatically when its case is identified or closed (including
death): :func:`unpublish_for_status`, called by ``rescue.cases.flows.transition``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread

from media.images import public_copy
from media.storage import ObjectStore, new_object_key
from rescue.announcements.schemas import (
    AnnouncedField,
    AnnouncementIn,
    AnnouncementOut,
    PublicFilter,
)
from rescue.announcements.tables import Announcement
from rescue.audit import unit
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.i18n import _, label
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

log = logging.getLogger(__name__)

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


#: Longest side of the public photo and of its list thumbnail, pixels.
PUBLIC_PHOTO_SIDE = 1024
PUBLIC_THUMB_SIDE = 240


async def _public_copies(photo_id: int, store: ObjectStore) -> tuple[str, str]:
    """Make the clean public copy and the list thumbnail of a photo once, at
    publish time (upright, no metadata: media.images.public_copy); their keys."""
    photo = await Photo.select(Photo.object_key).where(Photo.id == photo_id).first()
    if photo is None:
        raise NotFound(_("photo {photo_id} does not exist", photo_id=photo_id))
    original = await store.aget(photo["object_key"])
    limit = get_settings().upload.max_pixels
    clean = await anyio.to_thread.run_sync(
        lambda: public_copy(original, max_pixels=limit, max_side=PUBLIC_PHOTO_SIDE)
    )
    thumb = await anyio.to_thread.run_sync(
        lambda: public_copy(clean, max_pixels=limit, max_side=PUBLIC_THUMB_SIDE)
    )
    keys = (new_object_key("public", "jpg"), new_object_key("public", "jpg"))
    await store.aput(keys[0], clean, "image/jpeg")
    await store.aput(keys[1], thumb, "image/jpeg")
    # Their announcement commits with the request (rescue.audit.unit): if the
    # request is rolled back, the copies go too.
    unit.after_rollback(lambda: _remove_objects(list(keys)))
    return keys


async def _remove_objects(keys: list[str]) -> None:
    from rescue.runtime import get_store

    store = get_store()
    for key in keys:
        if not key:
            continue
        try:
            await store.aremove(key)
        except Exception:  # noqa: BLE001 - unreachable anyway: only published rows are served
            log.warning("could not remove a public photo copy")


async def publish(*, case_id: int, data: AnnouncementIn, by: Principal) -> AnnouncementOut:
    """Publish (or replace) the announcement of a case. The public photo and its
    thumbnail are made here, once (not per request).

    Raises:
        NotFound: no such case.
        Conflict: the case is identified or closed (nothing to announce).
        InvalidInput: ``photo_id`` is not a photo of this case, or no found place.
    """
    case = await Case.select().where(Case.id == case_id).first()
    if case is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    if CaseStatus(case["status"]) in UNPUBLISH_STATUSES:
        raise Conflict(
            _(
                "case {case_id} is {status}; only a person still searched for is announced",
                case_id=case_id,
                status=label(CaseStatus(case["status"])),
            ),
            accepted=sorted(s.value for s in set(CaseStatus) - UNPUBLISH_STATUSES),
        )
    if data.photo_id is not None and not await Photo.exists().where(
        (Photo.id == data.photo_id) & (Photo.case == case_id)
    ):
        raise InvalidInput(
            _(
                "photo {photo_id} is not a photo of case {case_id}",
                photo_id=data.photo_id,
                case_id=case_id,
            ),
            accepted=_("the id of one of this case's photos, or null"),
        )
    if not data.found_place.strip():
        raise InvalidInput(
            _("found_place is required"),
            accepted=_("the district or road where found, no exact address"),
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
        "dialect": (case["dialect"] if data.dialect is None else data.dialect).strip(),
        "station_contact": data.station_contact,
    }
    fields["sex"] = str(getattr(fields["sex"], "value", fields["sex"]))
    internal = sorted({f.value for f in data.internal})
    from rescue.runtime import get_store

    previous = (
        await Announcement.select(Announcement.public_photo_key, Announcement.public_thumb_key)
        .where(Announcement.case == case_id)
        .first()
    )
    keys = ("", "")
    if data.photo_id is not None and AnnouncedField.photo.value not in internal:
        keys = await _public_copies(data.photo_id, get_store())
    now = datetime.now(UTC)
    values = {
        Announcement.public_photo_key: keys[0],
        Announcement.public_thumb_key: keys[1],
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
    if previous is not None:
        await _remove_objects([previous["public_photo_key"], previous["public_thumb_key"]])
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
        raise NotFound(_("case {case_id} has no announcement", case_id=case_id))
    return _out(row)


async def unpublish(*, case_id: int, reason: str) -> bool:
    """Take a case's announcement off the public view; True if it was published.
    Its public photo copies are removed."""
    copies = (
        await Announcement.select(Announcement.public_photo_key, Announcement.public_thumb_key)
        .where(Announcement.case == case_id)
        .first()
    )
    changed = (
        await Announcement.update(
            {
                Announcement.published: False,
                Announcement.unpublished_at: datetime.now(UTC),
                Announcement.unpublish_reason: reason,
                Announcement.updated_at: datetime.now(UTC),
                Announcement.public_photo_key: "",
                Announcement.public_thumb_key: "",
            }
        )
        .where((Announcement.case == case_id) & (Announcement.published == True))  # noqa: E712
        .returning(Announcement.id)
    )
    if changed and copies is not None:
        await _remove_objects([copies["public_photo_key"], copies["public_thumb_key"]])
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
        view["thumb_url"] = f"/public/announcements/{row['id']}/photo?size=thumb"
    return view


def _matches(view: dict[str, Any], where: PublicFilter) -> bool:
    """Whether a public view passes the filters (published fields only)."""
    if where.sex is not None and view.get("sex") != where.sex.value:
        return False
    age = view.get("estimated_age")
    if where.age_min is not None and (age is None or age < where.age_min):
        return False
    if where.age_max is not None and (age is None or age > where.age_max):
        return False
    if where.place.strip() and where.place.strip() not in str(view.get("found_place", "")):
        return False
    if where.dialect.strip() and where.dialect.strip() not in str(view.get("dialect", "")):
        return False
    found = view.get("found_date")
    if where.found_from is not None and (found is None or found < where.found_from.isoformat()):
        return False
    return not (
        where.found_to is not None and (found is None or found > where.found_to.isoformat())
    )


async def _published(announcement_id: int) -> dict[str, Any]:
    row = (
        await Announcement.select()
        .where((Announcement.id == announcement_id) & (Announcement.published == True))  # noqa: E712
        .first()
    )
    if row is None:
        raise NotFound(
            _("announcement {announcement_id} is not published", announcement_id=announcement_id)
        )
    return row


async def public_get(*, announcement_id: int) -> dict[str, Any]:
    """One published announcement's public view. Raises NotFound (also when unpublished)."""
    return public_view(await _published(announcement_id))


async def public_list(
    *, limit: int, offset: int, where: PublicFilter | None = None
) -> Page[dict[str, Any]]:
    """Published announcements, newest first, filtered on their public views
    (``where``; the JSON API and the public pages call this one function).

    The filters run over the public views in Python: a station publishes
    hundreds, not millions, and filtering what is public guarantees an internal
    field can never be probed through a filter."""
    published = Announcement.published == True  # noqa: E712
    if where is None or where == PublicFilter():
        rows = (
            await Announcement.select()
            .where(published)
            .order_by(Announcement.published_at, ascending=False)
            .limit(limit)
            .offset(offset)
        )
        return Page(
            items=[public_view(r) for r in rows],
            total=await Announcement.count().where(published),
            limit=limit,
            offset=offset,
        )
    rows = (
        await Announcement.select()
        .where(published)
        .order_by(Announcement.published_at, ascending=False)
    )
    views = [v for v in (public_view(r) for r in rows) if _matches(v, where)]
    return Page(items=views[offset : offset + limit], total=len(views), limit=limit, offset=offset)


async def public_photo(
    *, announcement_id: int, store: ObjectStore, thumb: bool = False
) -> tuple[bytes, str]:
    """(bytes, media type) of a published announcement's photo: the clean JPEG copy
    made at publish time (upright, ≤ 1024 px, no EXIF/GPS or other metadata;
    media.images.public_copy), or with ``thumb`` its ≤ 240 px thumbnail; never
    the original file, never re-encoded per request.

    Raises:
        NotFound: not published, no photo, or the photo is internal.
    """
    row = await _published(announcement_id)
    fields = _loads(row["fields"])
    if row["photo"] is None or not fields.get("photo") or "photo" in _loads(row["internal"]):
        raise NotFound(
            _("announcement {announcement_id} publishes no photo", announcement_id=announcement_id)
        )
    key = row["public_thumb_key"] if thumb else row["public_photo_key"]
    if key:
        return await store.aget(key), "image/jpeg"
    # Published before copies were made at publish time: make them now, once.
    photo = (
        await Photo.select(Photo.object_key, Photo.media_type)
        .where(Photo.id == row["photo"])
        .first()
    )
    if photo is None:
        raise NotFound(
            _("announcement {announcement_id} publishes no photo", announcement_id=announcement_id)
        )
    keys = await _public_copies(row["photo"], store)
    await Announcement.update(
        {Announcement.public_photo_key: keys[0], Announcement.public_thumb_key: keys[1]}
    ).where(Announcement.id == announcement_id)
    return await store.aget(keys[1] if thumb else keys[0]), "image/jpeg"
