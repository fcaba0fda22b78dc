"""PFIF 1.4 export of notices and announced cases; import of PFIF 1.1–1.4 files.

Export (:func:`export_pfif`):
- open notices. A notice imported from PFIF is written back with every field
  and note it came with (its original ``person_record_id``), so export → import
  keeps everything PFIF carries. A notice registered here becomes
  ``<PFIF_DOMAIN>/notice.<id>`` with its name, sex, date of birth, age and
  description, and a note for the last-seen place; the reporter's name and
  contact are *not* exported (PIPL art. 23: sharing personal information with
  another party needs the person's separate consent).
- published announcements: only the fields the public announcement shows
  (:func:`rescue.announcements.services.public_view`), as
  ``<PFIF_DOMAIN>/announcement.<id>`` with a ``believed_alive`` note saying the
  person is in a station's care and where they were found.
Every exported record carries ``expiry_date`` (PFIF_EXPIRY_DAYS after export)
and ``source_name``/``source_date``.

Import (:func:`import_pfif`): each valid person becomes a notice (source
``external``) or updates the notice it made before (same ``person_record_id``);
each note is stored once (same ``note_record_id`` again is skipped). Malformed
records are refused one by one with the reason; the valid ones are kept.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from rescue import clock
from rescue.announcements.services import public_view
from rescue.announcements.tables import Announcement
from rescue.errors import InvalidInput, NotFound, PayloadTooLarge
from rescue.i18n import _
from rescue.notices.tables import Notice, NoticeSource, NoticeStatus
from rescue.pfif.format import (
    PfifFileError,
    PfifNote,
    PfifPerson,
    format_date,
    parse,
    write,
)
from rescue.pfif.schemas import PfifImportReport, PfifRecordOut, RefusedRecord
from rescue.pfif.tables import PfifNoteRecord, PfifPersonRecord
from rescue.settings import PfifSettings
from rescue.users.services import Principal

__all__ = ["export_pfif", "import_pfif", "pfif_record"]

#: Largest PFIF file accepted in one request (bytes): ~20,000 person records.
MAX_IMPORT_BYTES = 50 * 1024 * 1024


def _loads(value: Any) -> dict[str, str]:
    return dict(json.loads(value) if isinstance(value, str) else value or {})


def _name(fields: dict[str, str]) -> str:
    if fields.get("full_name"):
        return fields["full_name"]
    return " ".join(p for p in (fields.get("given_name"), fields.get("family_name")) if p)


def _notice_values(person: PfifPerson) -> dict[Any, Any]:
    """Notice columns from a PFIF person (the rest stays in its record)."""
    f = person.fields
    dob = f.get("date_of_birth")
    age = f.get("age")
    age_years = None
    if age:
        low, _sep, high = age.partition("-")
        age_years = (int(low) + int(high or low)) // 2
    places = [
        n.fields["last_known_location"] for n in person.notes if n.fields.get("last_known_location")
    ]
    return {
        Notice.name: _name(f)[:100],
        Notice.sex: f["sex"] if f.get("sex") in {"male", "female"} else "unknown",
        Notice.date_of_birth: date.fromisoformat(dob) if dob and len(dob) == 10 else None,
        Notice.age_when_missing: age_years if age_years is not None and age_years <= 120 else None,
        Notice.last_seen_place: (places[-1] if places else "")[:300],
        Notice.reporter_name: f.get("author_name", "")[:100],
        Notice.reporter_contact: (f.get("author_phone") or f.get("author_email") or "")[:200],
        Notice.description: f.get("description", "")[:10_000],
    }


async def _store_notes(notice_id: int, notes: list[PfifNote]) -> tuple[int, int]:
    added = known = 0
    for note in notes:
        rows = (
            await PfifNoteRecord.insert(
                PfifNoteRecord(
                    notice=notice_id,
                    note_record_id=note.fields["note_record_id"],
                    fields=note.fields,
                )
            )
            .on_conflict(target=PfifNoteRecord.note_record_id, action="DO NOTHING")
            .returning(PfifNoteRecord.id)
        )
        if rows:
            added += 1
        else:
            known += 1
    return added, known


async def import_pfif(*, data: bytes, by: Principal, settings: PfifSettings) -> PfifImportReport:
    """Import a PFIF 1.1–1.4 document.

    Args:
        data: the XML file's bytes (at most :data:`MAX_IMPORT_BYTES`).

    Returns:
        Notices created and updated, notes added and already known, and the
        refused records with their reasons.

    Raises:
        InvalidInput: empty, not well-formed or unsafe XML, or not PFIF (400).
        PayloadTooLarge: over :data:`MAX_IMPORT_BYTES` (413).
    """
    if not data.strip():
        raise InvalidInput(_("the PFIF file is empty"))
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(
            _(
                "the PFIF file is {size} bytes; the limit is {limit}",
                size=len(data),
                limit=MAX_IMPORT_BYTES,
            )
        )
    try:
        parsed = parse(data, now=clock.now())
    except PfifFileError as exc:
        raise InvalidInput(
            _("this is not a PFIF file: {reason}", reason=str(exc)),
            accepted={
                "versions": ["1.1", "1.2", "1.3", "1.4"],
                "namespace": "http://zesty.ca/pfif/1.N",
            },
        ) from exc
    refused = [RefusedRecord(e.kind, e.record_id, e.position, e.reason) for e in parsed.errors]
    own = re.compile(rf"^{re.escape(settings.domain)}/")
    created: list[int] = []
    updated: list[int] = []
    notes_added = notes_known = 0
    for position, person in enumerate(parsed.persons, start=1):
        record_id = person.fields["person_record_id"]
        if own.match(record_id):
            refused.append(
                RefusedRecord(
                    "person", record_id, position, f"the record originates here ({settings.domain})"
                )
            )
            continue
        async with Notice._meta.db.transaction():
            existing = (
                await PfifPersonRecord.select(PfifPersonRecord.id, PfifPersonRecord.notice)
                .where(PfifPersonRecord.person_record_id == record_id)
                .first()
            )
            now = clock.now()
            values = _notice_values(person)
            if existing is None:
                rows = await Notice.insert(
                    Notice(
                        **{col._meta.name: v for col, v in values.items()},
                        source=NoticeSource.external.value,
                        status=NoticeStatus.open.value,
                        created_by=by.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                ).returning(Notice.id)
                notice_id = int(rows[0]["id"])
                await PfifPersonRecord.insert(
                    PfifPersonRecord(
                        notice=notice_id,
                        person_record_id=record_id,
                        source_version=parsed.version,
                        fields=person.fields,
                        imported_at=now,
                        updated_at=now,
                    )
                )
                created.append(notice_id)
            else:
                notice_id = int(existing["notice"])
                await Notice.update({**values, Notice.updated_at: now}).where(
                    Notice.id == notice_id
                )
                await PfifPersonRecord.update(
                    {
                        PfifPersonRecord.fields: person.fields,
                        PfifPersonRecord.source_version: parsed.version,
                        PfifPersonRecord.updated_at: now,
                    }
                ).where(PfifPersonRecord.id == existing["id"])
                updated.append(notice_id)
            added, known = await _store_notes(notice_id, person.notes)
            notes_added += added
            notes_known += known
    for position, note in enumerate(parsed.orphan_notes, start=1):
        owner = (
            await PfifPersonRecord.select(PfifPersonRecord.notice)
            .where(PfifPersonRecord.person_record_id == note.fields["person_record_id"])
            .first()
        )
        if owner is None:
            refused.append(
                RefusedRecord(
                    "note",
                    note.fields["note_record_id"],
                    position,
                    f"person {note.fields['person_record_id']!r} is neither in this file "
                    "nor imported before",
                )
            )
            continue
        added, known = await _store_notes(int(owner["notice"]), [note])
        notes_added += added
        notes_known += known
    return PfifImportReport(
        version=parsed.version,
        created_notice_ids=created,
        updated_notice_ids=updated,
        notes_added=notes_added,
        notes_already_known=notes_known,
        refused=refused,
    )


def _native_notice(row: dict[str, Any], settings: PfifSettings, now: datetime) -> PfifPerson:
    fields = {
        "person_record_id": f"{settings.domain}/notice.{row['id']}",
        "entry_date": format_date(now),
        "expiry_date": format_date(now + timedelta(days=settings.expiry_days)),
        "author_name": settings.source_name,
        "source_name": settings.source_name,
        "source_date": format_date(row["created_at"]),
        "full_name": row["name"],
        "description": row["description"],
    }
    if row["sex"] in {"male", "female"}:
        fields["sex"] = row["sex"]
    if row["date_of_birth"] is not None:
        fields["date_of_birth"] = row["date_of_birth"].isoformat()
    if row["age_when_missing"] is not None:
        fields["age"] = str(row["age_when_missing"])
    person = PfifPerson(fields={k: v for k, v in fields.items() if v})
    if row["last_seen_place"] or row["missing_since"]:
        since = row["missing_since"].isoformat() if row["missing_since"] else ""
        person.notes.append(
            PfifNote(
                fields={
                    k: v
                    for k, v in {
                        "note_record_id": f"{settings.domain}/notice-note.{row['id']}",
                        "person_record_id": fields["person_record_id"],
                        "entry_date": fields["entry_date"],
                        "author_name": settings.source_name,
                        "source_date": fields["source_date"],
                        "status": "information_sought",
                        "last_known_location": row["last_seen_place"],
                        "text": _("Missing since {since}", since=since) if since else _("Missing"),
                    }.items()
                    if v
                }
            )
        )
    return person


def _announced(row: dict[str, Any], settings: PfifSettings, now: datetime) -> PfifPerson:
    """Only the public view's fields (what the announcement publishes)."""
    view = public_view(row)
    record_id = f"{settings.domain}/announcement.{row['id']}"
    described = [
        str(view[k]) for k in ("physical_features", "clothing", "mental_state") if view.get(k)
    ]
    if view.get("height_cm"):
        described.append(_("height {cm} cm", cm=view["height_cm"]))
    fields = {
        "person_record_id": record_id,
        "entry_date": format_date(now),
        "expiry_date": format_date(now + timedelta(days=settings.expiry_days)),
        "author_name": settings.source_name,
        "source_name": settings.source_name,
        "source_date": format_date(row["published_at"] or now),
        "full_name": str(view.get("name", "")),
        "sex": str(view.get("sex", "")) if view.get("sex") in {"male", "female"} else "",
        "age": str(view["estimated_age"]) if view.get("estimated_age") is not None else "",
        "description": "; ".join(described),
    }
    person = PfifPerson(fields={k: v for k, v in fields.items() if v})
    text = _("In the care of a rescue station.")
    if view.get("station_contact"):
        text += " " + _("Contact: {contact}", contact=view["station_contact"])
    if view.get("found_date"):
        text += " " + _("Found on {date}.", date=view["found_date"])
    note = {
        "note_record_id": f"{settings.domain}/announcement-note.{row['id']}",
        "person_record_id": record_id,
        "entry_date": fields["entry_date"],
        "author_name": settings.source_name,
        "source_date": fields["source_date"],
        "author_made_contact": "true",
        "status": "believed_alive",
        "last_known_location": str(view.get("found_place", "")),
        "text": text,
    }
    person.notes.append(PfifNote(fields={k: v for k, v in note.items() if v}))
    return person


async def export_pfif(
    *, settings: PfifSettings, notices: bool = True, announcements: bool = True
) -> bytes:
    """A PFIF 1.4 document of the open notices and the published announcements."""
    now = clock.now()
    persons: list[PfifPerson] = []
    if notices:
        rows = (
            await Notice.select()
            .where(Notice.status == NoticeStatus.open.value)
            .order_by(Notice.id)
        )
        records = {
            int(r["notice"]): r
            for r in await PfifPersonRecord.select().where(
                PfifPersonRecord.notice.is_in([int(n["id"]) for n in rows] or [0])
            )
        }
        notes: dict[int, list[PfifNote]] = {}
        for n in (
            await PfifNoteRecord.select()
            .where(PfifNoteRecord.notice.is_in(list(records) or [0]))
            .order_by(PfifNoteRecord.id)
        ):
            notes.setdefault(int(n["notice"]), []).append(PfifNote(fields=_loads(n["fields"])))
        for row in rows:
            record = records.get(int(row["id"]))
            if record is None:
                persons.append(_native_notice(row, settings, now))
            else:
                persons.append(
                    PfifPerson(fields=_loads(record["fields"]), notes=notes.get(int(row["id"]), []))
                )
    if announcements:
        for row in (
            await Announcement.select()
            .where(
                Announcement.published == True  # noqa: E712
            )
            .order_by(Announcement.id)
        ):
            persons.append(_announced(row, settings, now))
    return write(persons)


async def pfif_record(*, notice_id: int) -> PfifRecordOut:
    """The PFIF person a notice was imported from, with its notes (oldest first).

    Raises:
        NotFound: no such notice, or it was not imported from PFIF.
    """
    record = await PfifPersonRecord.select().where(PfifPersonRecord.notice == notice_id).first()
    if record is None:
        raise NotFound(_("notice {notice_id} was not imported from PFIF", notice_id=notice_id))
    notes = (
        await PfifNoteRecord.select(PfifNoteRecord.fields)
        .where(PfifNoteRecord.notice == notice_id)
        .order_by(PfifNoteRecord.id)
    )
    return PfifRecordOut(
        notice_id=notice_id,
        person_record_id=record["person_record_id"],
        source_version=record["source_version"],
        fields=_loads(record["fields"]),
        notes=[_loads(n["fields"]) for n in notes],
    )
