"""Online search requests: submission, status by tracking code, moderation.

Until a request is accepted nothing of it is matched or shown outside the
moderating staff: its photos are stored under their own keys (not ``photos``
rows), so the matching worker never sees them. Accepting creates the notice
through rescue.notices.services.create_notice and uploads each photo through
rescue.photos.services.upload_photo (the same checks, the same queue), so
matching starts at once, exactly as for a notice entered by staff.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import anyio.to_thread

from media.images import ImageRejected, inspect_image
from media.storage import ObjectStore, new_object_key
from rescue import clock
from rescue.cases.tables import Sex
from rescue.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from rescue.family_requests import limits
from rescue.family_requests.schemas import (
    Decision,
    DecisionIn,
    MessageOut,
    PublicStatus,
    ReplyIn,
    RequestPhotoOut,
    SearchRequestIn,
    SearchRequestOut,
    SearchRequestSummary,
    Submitted,
)
from rescue.family_requests.tables import (
    MessageAuthor,
    RequestStatus,
    SearchRequest,
    SearchRequestMessage,
    SearchRequestPhoto,
)
from rescue.i18n import _
from rescue.notices.schemas import NoticeCreate
from rescue.notices.tables import NoticeSource
from rescue.photos.tables import Photo
from rescue.schemas import Page
from rescue.settings import PublicSettings, UploadSettings
from rescue.users.services import Principal

__all__ = [
    "CONSENT_VERSION",
    "MAX_PHOTOS",
    "decide",
    "get_for_staff",
    "list_queue",
    "reply",
    "status_for_code",
    "submit",
]

log = logging.getLogger(__name__)

#: Up to five photos at different ages (issue 14).
MAX_PHOTOS = 5
#: Version of the consent notice shown (rescue/templates/family/request.html);
#: stored with each request so what was agreed to is known later.
CONSENT_VERSION = "2026-12"

#: Moderation moves: from status → decision → new status.
MOVES: dict[RequestStatus, dict[Decision, RequestStatus]] = {
    RequestStatus.received: {
        Decision.review: RequestStatus.under_review,
        Decision.more_info: RequestStatus.more_info,
        Decision.reject: RequestStatus.closed,
        Decision.accept: RequestStatus.registered,
    },
    RequestStatus.under_review: {
        Decision.more_info: RequestStatus.more_info,
        Decision.reject: RequestStatus.closed,
        Decision.accept: RequestStatus.registered,
    },
    RequestStatus.more_info: {
        Decision.review: RequestStatus.under_review,
        Decision.reject: RequestStatus.closed,
        Decision.accept: RequestStatus.registered,
    },
    RequestStatus.registered: {},
    RequestStatus.closed: {},
}


#: Tracking-code letters: Crockford's base32 (no I, L, O, U), so a code read out
#: over the phone or copied by hand has no 0/O or 1/l/I to confuse.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: 16 letters of 5 bits: 80 bits, shown in groups of 4 (e.g. ``7KQ3-M9XD-2HPA-W4RT``).
#: Status lookups are limited per address (``STATUS_LOOKUPS_PER_HOUR``), so guessing
#: online is hopeless; 80 bits also keeps an offline search of a leaked digest
#: beyond reach. The code was 22 mixed-case characters (``token_urlsafe``), which a
#: fresh user found hard for families to keep.
CODE_LETTERS = 16
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A new tracking code, grouped by 4 with hyphens."""
    letters = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LETTERS))
    return "-".join(letters[i : i + 4] for i in range(0, CODE_LETTERS, 4))


def _normal(code: str) -> str:
    """The code as typed, read as Crockford's base32 does: case, spaces and hyphens
    ignored, O read as 0 and I or L as 1."""
    return "".join(c for c in code.upper() if c.isalnum()).translate(_READ_AS)


def code_hash(code: str) -> str:
    """SHA-256 hex of a tracking code as stored (of its normal form; a random code
    of 80 bits: a fast hash suffices)."""
    return hashlib.sha256(_normal(code).encode()).hexdigest()


def code_hashes(code: str) -> list[str]:
    """The digests a typed code may be stored under: its normal form, and the code
    exactly as typed (codes given out before the base32 codes were case-sensitive)."""
    return [code_hash(code), hashlib.sha256(code.strip().encode()).hexdigest()]


def _person_key(data: SearchRequestIn) -> str:
    """Same missing person: same name (NFKC, no spaces) and the same date of birth,
    or, without one, the same sex and date missing since. "" when too little is known."""
    name = "".join(unicodedata.normalize("NFKC", data.missing_name).split()).lower()
    if data.date_of_birth is not None:
        basis = f"{name}|dob|{data.date_of_birth.isoformat()}"
    elif data.missing_since is not None:
        basis = f"{name}|{Sex(data.sex).value}|since|{data.missing_since.isoformat()}"
    else:
        return ""
    return hashlib.sha256(basis.encode()).hexdigest()


def _station_for(region: str, settings: PublicSettings) -> str:
    return dict(settings.regions).get(region.strip(), "")


def consent_problems(*, personal: bool, face: bool, photo_count: int) -> dict[str, str]:
    """The consents missing, by form field: ``consent_personal`` always needed
    (PIPL art. 14), ``consent_face`` separately when there are photos (PIPL art. 29,
    sensitive personal information)."""
    problems = {}
    if not personal:
        problems["consent_personal"] = _(
            "Without your consent to processing this information we cannot search."
        )
    if photo_count and not face:
        problems["consent_face"] = _(
            "Photos are only used with your separate consent to processing the faces "
            "in them. Give it, or send the request without photos."
        )
    return problems


def _check_data(data: SearchRequestIn, photo_count: int) -> None:
    problems = consent_problems(
        personal=data.consent_personal, face=data.consent_face, photo_count=photo_count
    )
    if "consent_personal" in problems:
        raise InvalidInput(
            problems["consent_personal"],
            accepted="consent_personal=true",
            field="consent_personal",
        )
    if "consent_face" in problems:
        raise InvalidInput(
            problems["consent_face"],
            accepted="consent_face=true, or no photos",
            field="consent_face",
        )
    if photo_count > MAX_PHOTOS:
        raise InvalidInput(
            _("At most {n} photos.", n=MAX_PHOTOS), accepted=MAX_PHOTOS, field="photos"
        )
    today = clock.today()
    for name, value in (
        ("date_of_birth", data.date_of_birth),
        ("missing_since", data.missing_since),
    ):
        if value is not None and value > today:
            raise InvalidInput(
                _("This date is in the future."), accepted="a date on or before today", field=name
            )
    if data.date_of_birth and data.missing_since and data.missing_since < data.date_of_birth:
        raise InvalidInput(
            _("Missing since is before the date of birth."),
            accepted="date_of_birth <= missing_since",
            field="missing_since",
        )


async def _checked_photos(
    photos: list[tuple[bytes, date | None]], upload: UploadSettings
) -> list[dict[str, Any]]:
    """The same checks as every upload (rescue.photos.services.upload_photo)."""
    from rescue.photos.services import _reject

    checked = []
    for index, (data, taken_on) in enumerate(photos, start=1):
        if not data:
            raise InvalidInput(_("Photo {n} is empty.", n=index), field="photos")
        if len(data) > upload.max_bytes:
            raise PayloadTooLarge(
                _("Photo {n} is larger than {mb} MB.", n=index, mb=upload.max_bytes // 2**20),
                accepted={"max_bytes": upload.max_bytes},
                field="photos",
            )
        try:
            info = await anyio.to_thread.run_sync(
                functools.partial(inspect_image, data, max_pixels=upload.max_pixels)
            )
        except ImageRejected as exc:
            error = _reject(exc, upload)
            error.detail = _(
                "Photo {n} is not a usable picture (JPEG, PNG or WebP photos only).", n=index
            )
            error.extra["field"] = "photos"
            raise error from exc
        checked.append(
            {
                "data": data,
                "info": info,
                "taken_on": taken_on,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return checked


async def _original_of(request_id: int) -> int:
    row = (
        await SearchRequest.select(SearchRequest.duplicate_of)
        .where(SearchRequest.id == request_id)
        .first()
    )
    return int(row["duplicate_of"]) if row and row["duplicate_of"] else request_id


async def _find_duplicate(person_key: str, digests: list[str]) -> int | None:
    """The earlier request (its original) about the same person, if any."""
    if digests:
        row = (
            await SearchRequestPhoto.select(SearchRequestPhoto.request)
            .where(SearchRequestPhoto.sha256.is_in(digests))
            .order_by(SearchRequestPhoto.id)
            .first()
        )
        if row is not None:
            return await _original_of(int(row["request"]))
        # A photo already registered as a notice photo from an accepted request.
        photo = (
            await Photo.select(Photo.id)
            .where(Photo.sha256.is_in(digests) & Photo.notice.is_not_null())
            .first()
        )
        if photo is not None:
            via = (
                await SearchRequestPhoto.select(SearchRequestPhoto.request)
                .where(SearchRequestPhoto.photo_id == photo["id"])
                .first()
            )
            if via is not None:
                return await _original_of(int(via["request"]))
    if person_key:
        row = (
            await SearchRequest.select(SearchRequest.id)
            .where(SearchRequest.person_key == person_key)
            .order_by(SearchRequest.id)
            .first()
        )
        if row is not None:
            return await _original_of(int(row["id"]))
    return None


async def submit(
    *,
    data: SearchRequestIn,
    photos: list[tuple[bytes, date | None]],
    address: str,
    store: ObjectStore,
    upload: UploadSettings,
    public: PublicSettings,
) -> Submitted:
    """Receive a request: consent, limits, photo checks, then store it.

    Args:
        photos: (bytes, date taken or None), at most :data:`MAX_PHOTOS`.
        address: the client's address (rate limit; not stored).

    Returns:
        The new request with its tracking code (shown to the family once).

    Raises:
        InvalidInput: no consent, too many photos, impossible dates; a photo that
            is empty or corrupt (400), not an image (415) or too large (413).
        TooManyRequests: more than ``REQUEST_LIMIT_PER_ADDRESS`` submissions from
            this address, or ``REQUEST_LIMIT_PER_CONTACT`` with this contact, today.
    """
    _check_data(data, len(photos))
    checked = await _checked_photos(photos, upload)
    day = 24 * 3600
    await limits.hit(
        scope="request-addr", who=address, limit=public.limit_per_address, window_seconds=day
    )
    await limits.hit(
        scope="request-contact",
        who=data.reporter_contact,
        limit=public.limit_per_contact,
        window_seconds=day,
    )
    person_key = _person_key(data)
    duplicate_of = await _find_duplicate(person_key, [c["sha256"] for c in checked])
    code = new_code()
    now = clock.now()
    stored: list[str] = []
    try:
        for item in checked:
            key = new_object_key("requests", item["info"].extension)
            await store.aput(key, item["data"], item["info"].media_type)
            stored.append(key)
        async with SearchRequest._meta.db.transaction():
            rows = await SearchRequest.insert(
                SearchRequest(
                    code_hash=code_hash(code),
                    status=RequestStatus.received.value,
                    station=_station_for(data.region, public),
                    region=data.region.strip(),
                    missing_name=data.missing_name.strip(),
                    sex=Sex(data.sex).value,
                    date_of_birth=data.date_of_birth,
                    age_when_missing=data.age_when_missing,
                    missing_since=data.missing_since,
                    last_seen_place=data.last_seen_place.strip(),
                    description=data.description.strip(),
                    dialect=data.dialect.strip(),
                    relation=data.relation.strip(),
                    reporter_name=data.reporter_name.strip(),
                    reporter_contact=data.reporter_contact.strip(),
                    contact_key=limits.identity_key(data.reporter_contact),
                    person_key=person_key,
                    consent_personal=True,
                    consent_face=data.consent_face,
                    consent_version=CONSENT_VERSION,
                    consented_at=now,
                    duplicate_of=duplicate_of,
                    created_at=now,
                    updated_at=now,
                )
            ).returning(SearchRequest.id)
            request_id = int(rows[0]["id"])
            for key, item in zip(stored, checked, strict=True):
                await SearchRequestPhoto.insert(
                    SearchRequestPhoto(
                        request=request_id,
                        object_key=key,
                        sha256=item["sha256"],
                        media_type=item["info"].media_type,
                        size_bytes=len(item["data"]),
                        width=item["info"].width,
                        height=item["info"].height,
                        taken_on=item["taken_on"],
                    )
                )
    except BaseException:
        for key in stored:  # never leave objects the database does not know about
            try:
                await store.aremove(key)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                log.warning("could not remove an unrecorded request photo object")
        raise
    return Submitted(
        id=request_id, code=code, status=RequestStatus.received, duplicate_of=duplicate_of
    )


async def status_for_code(*, code: str, address: str, public: PublicSettings) -> PublicStatus:
    """The status of the request with this tracking code, and nothing else.

    Raises:
        TooManyRequests: over ``STATUS_LOOKUPS_PER_HOUR`` lookups from this address.
        NotFound: no request has this code (the same answer for any wrong code).
    """
    return _public(await _by_code(code, address, public))


async def _by_code(code: str, address: str, public: PublicSettings) -> dict[str, Any]:
    """The request row of a tracking code; every try counts against
    ``STATUS_LOOKUPS_PER_HOUR`` of the address. Raises TooManyRequests, NotFound."""
    await limits.hit(
        scope="status-lookup", who=address, limit=public.lookups_per_hour, window_seconds=3600
    )
    row = None
    if code.strip():
        row = (
            await SearchRequest.select()
            .where(SearchRequest.code_hash.is_in(code_hashes(code)))
            .first()
        )
    if row is None:
        raise NotFound(_("No request has this tracking code. Check the code and try again."))
    return dict(row)


async def reply(
    *,
    data: ReplyIn,
    photos: list[tuple[bytes, date | None]],
    address: str,
    store: ObjectStore,
    upload: UploadSettings,
    public: PublicSettings,
) -> PublicStatus:
    """The family answers "more information needed" with its tracking code.

    The answer (text and up to :data:`MAX_PHOTOS` photos in all on the request,
    checked like every upload; photos only with ``consent_face``) joins the
    request's thread, and the request (with its linked duplicates, which share
    its status) goes back to the moderation queue as ``under_review``. The
    answer reveals nothing but the new status.

    Raises:
        TooManyRequests: over ``STATUS_LOOKUPS_PER_HOUR`` code tries from this
            address, or over ``REQUEST_LIMIT_PER_ADDRESS`` /
            ``REQUEST_LIMIT_PER_CONTACT`` answers a day (the submission limits).
        NotFound: no request has this code (the same answer as the status page).
        Conflict: staff have not asked for more information (``current``).
        InvalidInput: neither text nor photos; photos without consent; more
            photos than allowed; a photo empty or corrupt (400), not an image
            (415) or too large (413).
    """
    row = await _by_code(data.code, address, public)
    current = RequestStatus(row["status"])
    if current != RequestStatus.more_info:
        raise Conflict(
            _("The station has not asked for more information; there is nothing to answer now."),
            current=current.value,
        )
    text = data.message.strip()
    if not text and not photos:
        raise InvalidInput(
            _("Write your answer, or add photos."), accepted="a message or photos", field="message"
        )
    if photos and not data.consent_face:
        raise InvalidInput(
            _(
                "Photos are only used with your separate consent to processing the faces "
                "in them. Give it, or send the request without photos."
            ),
            accepted="consent_face=true, or no photos",
            field="consent_face",
        )
    have = await SearchRequestPhoto.count().where(SearchRequestPhoto.request == row["id"])
    if have + len(photos) > MAX_PHOTOS:
        raise InvalidInput(
            _(
                "At most {n} photos in all; {left} more can be sent.",
                n=MAX_PHOTOS,
                left=max(0, MAX_PHOTOS - have),
            ),
            accepted=max(0, MAX_PHOTOS - have),
            field="photos",
        )
    checked = await _checked_photos(photos, upload)
    day = 24 * 3600
    await limits.hit(
        scope="reply-addr", who=address, limit=public.limit_per_address, window_seconds=day
    )
    await limits.hit(
        scope="reply-contact",
        who=row["contact_key"] or str(row["id"]),
        limit=public.limit_per_contact,
        window_seconds=day,
    )
    original = int(row["duplicate_of"] or row["id"])
    now = clock.now()
    stored: list[str] = []
    try:
        for item in checked:
            key = new_object_key("requests", item["info"].extension)
            await store.aput(key, item["data"], item["info"].media_type)
            stored.append(key)
        async with SearchRequest._meta.db.transaction():
            moved = (
                await SearchRequest.update(
                    {
                        SearchRequest.status: RequestStatus.under_review.value,
                        SearchRequest.updated_at: now,
                    }
                )
                .where(
                    ((SearchRequest.id == original) | (SearchRequest.duplicate_of == original))
                    & (SearchRequest.status == RequestStatus.more_info.value)
                )
                .returning(SearchRequest.id)
            )
            if not moved:  # decided meanwhile
                raise Conflict(
                    _(
                        "The station has not asked for more information; "
                        "there is nothing to answer now."
                    ),
                    current=RequestStatus.under_review.value,
                )
            if checked:
                await SearchRequest.update({SearchRequest.consent_face: True}).where(
                    SearchRequest.id == row["id"]
                )
            rows = await SearchRequestMessage.insert(
                SearchRequestMessage(
                    request=row["id"],
                    author=MessageAuthor.family.value,
                    body=text,
                    consent_face=bool(checked),
                    created_at=now,
                )
            ).returning(SearchRequestMessage.id)
            message_id = int(rows[0]["id"])
            for key, item in zip(stored, checked, strict=True):
                await SearchRequestPhoto.insert(
                    SearchRequestPhoto(
                        request=row["id"],
                        object_key=key,
                        sha256=item["sha256"],
                        media_type=item["info"].media_type,
                        size_bytes=len(item["data"]),
                        width=item["info"].width,
                        height=item["info"].height,
                        taken_on=item["taken_on"],
                        message=message_id,
                    )
                )
    except BaseException:
        for key in stored:
            try:
                await store.aremove(key)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                log.warning("could not remove an unrecorded request photo object")
        raise
    return PublicStatus(status=RequestStatus.under_review, message="", updated_at=now)


async def status_of_known_code(code: str) -> PublicStatus | None:
    """The status of a code already checked by :func:`reply` in this request
    (re-showing its form after refused input); no limit is counted."""
    row = (
        await SearchRequest.select(
            SearchRequest.status, SearchRequest.staff_message, SearchRequest.updated_at
        )
        .where(SearchRequest.code_hash.is_in(code_hashes(code)))
        .first()
    )
    return None if row is None or not code.strip() else _public(row)


def _public(row: dict[str, Any]) -> PublicStatus:
    status = RequestStatus(row["status"])
    message = (
        row["staff_message"] if status in (RequestStatus.more_info, RequestStatus.closed) else ""
    )
    return PublicStatus(status=status, message=message, updated_at=row["updated_at"])


def _photo_out(row: dict[str, Any]) -> RequestPhotoOut:
    return RequestPhotoOut(
        id=row["id"],
        sha256=row["sha256"],
        media_type=row["media_type"],
        width=row["width"],
        height=row["height"],
        taken_on=row["taken_on"],
        photo_id=row["photo_id"],
        message_id=row["message"],
    )


def _out(
    row: dict[str, Any], photos: list[RequestPhotoOut], duplicates: list[int]
) -> SearchRequestOut:
    return SearchRequestOut(
        id=row["id"],
        status=RequestStatus(row["status"]),
        station=row["station"],
        region=row["region"],
        missing_name=row["missing_name"],
        sex=Sex(row["sex"]),
        date_of_birth=row["date_of_birth"],
        age_when_missing=row["age_when_missing"],
        missing_since=row["missing_since"],
        last_seen_place=row["last_seen_place"],
        description=row["description"],
        dialect=row["dialect"],
        relation=row["relation"],
        reporter_name=row["reporter_name"],
        reporter_contact=row["reporter_contact"],
        consent_face=row["consent_face"],
        consented_at=row["consented_at"],
        duplicate_of=row["duplicate_of"],
        notice_id=row["notice"],
        staff_message=row["staff_message"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        photos=photos,
        duplicates=duplicates,
        purged_at=row.get("purged_at"),
    )


def _visible(stations: list[str] | None) -> Any:
    """Requests of the caller's stations plus the shared queue (no station)."""
    if stations is None:
        return None
    return SearchRequest.station.is_in([*stations, ""])


async def list_queue(
    *, stations: list[str] | None, status: RequestStatus | None, limit: int, offset: int
) -> Page[SearchRequestSummary]:
    """Requests waiting for staff (not registered or closed; or of ``status``),
    oldest first; linked duplicates are listed under their original, not as items.
    Only what picking one needs: no description, no contact (read on the
    request itself, where the read is audited)."""
    where: Any = SearchRequest.duplicate_of.is_null()
    if status is not None:
        where &= SearchRequest.status == status.value
    else:
        where &= SearchRequest.status.is_in(
            [
                RequestStatus.received.value,
                RequestStatus.under_review.value,
                RequestStatus.more_info.value,
            ]
        )
    scope = _visible(stations)
    if scope is not None:
        where &= scope
    rows = (
        await SearchRequest.select(
            SearchRequest.id,
            SearchRequest.status,
            SearchRequest.station,
            SearchRequest.region,
            SearchRequest.missing_name,
            SearchRequest.sex,
            SearchRequest.missing_since,
            SearchRequest.last_seen_place,
            SearchRequest.created_at,
            SearchRequest.updated_at,
        )
        .where(where)
        .order_by(SearchRequest.id)
        .limit(limit)
        .offset(offset)
    )
    items = []
    for r in rows:
        duplicates = await _duplicates(r["id"])
        group = [r["id"], *duplicates]
        last = (
            await SearchRequestMessage.select(SearchRequestMessage.author)
            .where(SearchRequestMessage.request.is_in(group))
            .order_by(SearchRequestMessage.id, ascending=False)
            .first()
        )
        items.append(
            SearchRequestSummary(
                id=r["id"],
                status=RequestStatus(r["status"]),
                station=r["station"],
                region=r["region"],
                missing_name=r["missing_name"],
                sex=Sex(r["sex"]),
                missing_since=r["missing_since"],
                last_seen_place=r["last_seen_place"],
                photo_count=await SearchRequestPhoto.count().where(
                    SearchRequestPhoto.request == r["id"]
                ),
                answered=(
                    r["status"] == RequestStatus.under_review.value
                    and last is not None
                    and last["author"] == MessageAuthor.family.value
                ),
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                duplicates=duplicates,
            )
        )
    return Page(
        items=items, total=await SearchRequest.count().where(where), limit=limit, offset=offset
    )


async def _duplicates(request_id: int) -> list[int]:
    rows = (
        await SearchRequest.select(SearchRequest.id)
        .where(SearchRequest.duplicate_of == request_id)
        .order_by(SearchRequest.id)
    )
    return [int(r["id"]) for r in rows]


async def get_for_staff(*, request_id: int) -> SearchRequestOut:
    """One request with its photos and linked duplicates. Raises NotFound."""
    row = await SearchRequest.select().where(SearchRequest.id == request_id).first()
    if row is None:
        raise NotFound(_("Search request {id} does not exist.", id=request_id))
    photos = (
        await SearchRequestPhoto.select()
        .where(SearchRequestPhoto.request == request_id)
        .order_by(SearchRequestPhoto.id)
    )
    duplicates = await _duplicates(request_id)
    out = _out(row, [_photo_out(p) for p in photos], duplicates)
    # The whole group's exchange: staff write on the original, and each linked
    # family answers on its own request.
    original = int(row["duplicate_of"] or request_id)
    group = [request_id, *duplicates] if original == request_id else [original, request_id]
    out.thread = await _thread(group)
    return out


async def _thread(request_ids: list[int]) -> list[MessageOut]:
    """The exchange about these requests (one and its linked duplicates), oldest first."""
    rows = (
        await SearchRequestMessage.select()
        .where(SearchRequestMessage.request.is_in(request_ids))
        .order_by(SearchRequestMessage.id)
    )
    if not rows:
        return []
    photos = (
        await SearchRequestPhoto.select(SearchRequestPhoto.id, SearchRequestPhoto.message)
        .where(SearchRequestPhoto.message.is_in([r["id"] for r in rows]))
        .order_by(SearchRequestPhoto.id)
    )
    return [
        MessageOut(
            id=r["id"],
            request_id=r["request"],
            author=MessageAuthor(r["author"]),
            body=r["body"],
            created_at=r["created_at"],
            consent_face=r["consent_face"],
            photos=[p["id"] for p in photos if p["message"] == r["id"]],
        )
        for r in rows
    ]


async def photo_bytes(*, request_id: int, photo_id: int, store: ObjectStore) -> tuple[bytes, str]:
    """(bytes, media type) of a request's photo for moderating staff.

    Raises:
        NotFound: no such photo of this request, or it became a notice photo.
    """
    row = (
        await SearchRequestPhoto.select(
            SearchRequestPhoto.object_key,
            SearchRequestPhoto.media_type,
            SearchRequestPhoto.photo_id,
        )
        .where((SearchRequestPhoto.id == photo_id) & (SearchRequestPhoto.request == request_id))
        .first()
    )
    if row is None:
        raise NotFound(_("This request has no such photo."))
    if row["photo_id"] is not None:
        from rescue.photos.thumbnails import photo_bytes as notice_photo

        return await notice_photo(photo_id=row["photo_id"], size="thumb", store=store)
    return await store.aget(row["object_key"]), row["media_type"]


def _notice_data(row: dict[str, Any]) -> NoticeCreate:
    extra = [
        line
        for line in (
            _("Relation of the person asking: {relation}", relation=row["relation"])
            if row["relation"]
            else "",
            _("Dialect: {dialect}", dialect=row["dialect"]) if row["dialect"] else "",
            _("Online search request {id}", id=row["id"]),
        )
        if line
    ]
    return NoticeCreate(
        name=row["missing_name"],
        source=NoticeSource.family,
        sex=Sex(row["sex"]),
        date_of_birth=row["date_of_birth"],
        age_when_missing=row["age_when_missing"],
        missing_since=row["missing_since"],
        last_seen_place=" ".join(p for p in (row["region"], row["last_seen_place"]) if p)[:300],
        reporter_name=row["reporter_name"],
        reporter_contact=row["reporter_contact"],
        description="\n".join([row["description"], *extra]).strip()[:10_000],
    )


async def _accept(
    row: dict[str, Any],
    *,
    by: Principal,
    store: ObjectStore,
    upload: UploadSettings,
    enqueue: Callable[[int], Awaitable[None]],
) -> int:
    """Create the notice (once: a retry after a failure resumes) and move each
    photo to it through the photo service, which queues matching."""
    from rescue.notices.services import create_notice
    from rescue.photos.services import upload_photo

    notice_id = row["notice"]
    if notice_id is None:
        notice = await create_notice(data=_notice_data(row), by=by)
        notice_id = notice.id
        await SearchRequest.update({SearchRequest.notice: notice_id}).where(
            SearchRequest.id == row["id"]
        )
    photos = (
        await SearchRequestPhoto.select()
        .where((SearchRequestPhoto.request == row["id"]) & SearchRequestPhoto.photo_id.is_null())
        .order_by(SearchRequestPhoto.id)
    )
    for item in photos:
        data = await store.aget(item["object_key"])
        try:
            photo = await upload_photo(
                owner="notice",
                owner_id=notice_id,
                data=data,
                taken_on=item["taken_on"],
                by=by,
                store=store,
                limits=upload,
                enqueue=enqueue,
            )
            photo_id = photo.id
        except Conflict as exc:  # the same bytes twice in one request
            photo_id = int(exc.extra["photo_id"])
        await SearchRequestPhoto.update(
            {SearchRequestPhoto.photo_id: photo_id, SearchRequestPhoto.object_key: ""}
        ).where(SearchRequestPhoto.id == item["id"])
        try:
            await store.aremove(item["object_key"])
        except Exception:  # noqa: BLE001 - kept copy; retention of requests removes it
            log.warning("could not remove request photo object %s", item["id"])
    return int(notice_id)


async def decide(
    *,
    request_id: int,
    data: DecisionIn,
    by: Principal,
    store: ObjectStore,
    upload: UploadSettings,
    enqueue: Callable[[int], Awaitable[None]],
) -> SearchRequestOut:
    """Moderate a request (table :data:`MOVES`).

    ``accept`` creates the notice with the request's photos (matching starts at
    once); linked duplicates follow their original's status and notice.

    Raises:
        NotFound: no such request.
        Conflict: the move is not allowed from the current status (``current``,
            ``allowed``), or the request is a linked duplicate (decide its original).
        InvalidInput: ``more_info``/``reject`` without a message to the family.
    """
    row = await SearchRequest.select().where(SearchRequest.id == request_id).first()
    if row is None:
        raise NotFound(_("Search request {id} does not exist.", id=request_id))
    if row["duplicate_of"] is not None:
        raise Conflict(
            _("This request is linked to request {id}; decide that one.", id=row["duplicate_of"]),
            original=row["duplicate_of"],
        )
    current = RequestStatus(row["status"])
    allowed = MOVES[current]
    if data.decision not in allowed:
        raise Conflict(
            _("This step is not possible now."),
            current=current.value,
            allowed=sorted(d.value for d in allowed),
        )
    message = data.message.strip()
    if data.decision in (Decision.more_info, Decision.reject) and not message:
        raise InvalidInput(
            _("Write to the family what is needed, or why the request is not registered."),
            accepted="a non-empty message",
            field="message",
        )
    notice_id = row["notice"]
    if data.decision == Decision.accept:
        notice_id = await _accept(row, by=by, store=store, upload=upload, enqueue=enqueue)
    new_status = allowed[data.decision]
    values: dict[Any, Any] = {
        SearchRequest.status: new_status.value,
        SearchRequest.decided_by: by.user_id,
        SearchRequest.decided_at: clock.now(),
        SearchRequest.updated_at: clock.now(),
        SearchRequest.notice: notice_id,
    }
    if data.decision != Decision.review:
        values[SearchRequest.staff_message] = message
    async with SearchRequest._meta.db.transaction():
        await SearchRequest.update(values).where(
            (SearchRequest.id == request_id) | (SearchRequest.duplicate_of == request_id)
        )
        if message and data.decision in (Decision.more_info, Decision.reject):
            await SearchRequestMessage.insert(
                SearchRequestMessage(
                    request=request_id,
                    author=MessageAuthor.staff.value,
                    body=message,
                    user_id=by.user_id,
                    created_at=clock.now(),
                )
            )
    return await get_for_staff(request_id=request_id)
