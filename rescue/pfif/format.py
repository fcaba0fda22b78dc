"""PFIF (People Finder Interchange Format) 1.1–1.4: parse, validate and write.

Pure functions on bytes; no database. Source: the PFIF specifications
(zesty.ca/pfif/1.1 … /1.4). Every record is held under its PFIF 1.4 field
names (:data:`PERSON_FIELDS`, :data:`NOTE_FIELDS`); older names are mapped on
reading: ``first_name``→``given_name``, ``last_name``→``family_name``,
``home_zip``→``home_postal_code``, ``other``→``description``,
``found``→``author_made_contact``.

Parsing uses the standard library's ElementTree through ``defusedxml``, which
refuses DTDs, entity declarations and external references (billion-laughs and
XXE attacks): a file an unknown party sends us is untrusted input.

A file that is not PFIF at all is refused as a whole (:class:`PfifFileError`);
a malformed record is refused alone with its reason (:class:`RecordError`) and
the valid records are kept.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # writing only; parsing is defusedxml's
from dataclasses import dataclass, field
from datetime import UTC, datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from rescue.i18n import _

__all__ = [
    "NOTE_FIELDS",
    "NOTE_STATUSES",
    "PERSON_FIELDS",
    "VERSIONS",
    "ParsedFile",
    "PfifFileError",
    "PfifNote",
    "PfifPerson",
    "RecordError",
    "format_date",
    "parse",
    "write",
]

NS = "http://zesty.ca/pfif/{}"
VERSIONS = ("1.1", "1.2", "1.3", "1.4")

#: PFIF 1.4 person fields, in the specification's order (the order we write).
PERSON_FIELDS = (
    "person_record_id",
    "entry_date",
    "expiry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_name",
    "source_date",
    "source_url",
    "full_name",
    "given_name",
    "family_name",
    "alternate_names",
    "description",
    "sex",
    "date_of_birth",
    "age",
    "home_street",
    "home_neighborhood",
    "home_city",
    "home_state",
    "home_postal_code",
    "home_country",
    "photo_url",
    "profile_urls",
)
#: PFIF 1.4 note fields, in the specification's order.
NOTE_FIELDS = (
    "note_record_id",
    "person_record_id",
    "linked_person_record_id",
    "entry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_date",
    "author_made_contact",
    "status",
    "email_of_found_person",
    "phone_of_found_person",
    "last_known_location",
    "text",
    "photo_url",
)
#: Note ``status`` values (PFIF 1.2–1.4).
NOTE_STATUSES = (
    "information_sought",
    "is_note_author",
    "believed_alive",
    "believed_missing",
    "believed_dead",
)
SEXES = ("female", "male", "other")

_P11 = [
    "person_record_id",
    "entry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_name",
    "source_date",
    "source_url",
    "first_name",
    "last_name",
    "home_city",
    "home_state",
    "home_neighborhood",
    "home_street",
    "home_zip",
    "photo_url",
    "other",
]
_N11 = [
    "note_record_id",
    "entry_date",
    "author_name",
    "author_email",
    "author_phone",
    "source_date",
    "found",
    "email_of_found_person",
    "phone_of_found_person",
    "last_known_location",
    "text",
]
_P12 = [f for f in _P11 if f != "home_zip"] + [
    "home_postal_code",
    "home_country",
    "sex",
    "date_of_birth",
    "age",
]
_N12 = [*_N11, "person_record_id", "linked_person_record_id", "status"]
#: Element names each version accepts (its own names, before mapping to 1.4).
_ACCEPTED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "1.1": (frozenset(_P11), frozenset(_N11)),
    "1.2": (frozenset(_P12), frozenset(_N12)),
    "1.3": (frozenset([*_P12, "full_name", "expiry_date"]), frozenset(_N12)),
    "1.4": (frozenset(PERSON_FIELDS), frozenset(NOTE_FIELDS)),
}
_RENAMED = {
    "first_name": "given_name",
    "last_name": "family_name",
    "home_zip": "home_postal_code",
    "other": "description",
    "found": "author_made_contact",
}
_DATE_FIELDS = ("entry_date", "source_date", "expiry_date")
_UTC_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_DOB = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_AGE = re.compile(r"^(\d{1,3})(-(\d{1,3}))?$")
_RECORD_ID = re.compile(r"^[^/\s]+/\S+$")


class PfifFileError(ValueError):
    """The file as a whole is not PFIF (not XML, unsafe XML, unknown namespace)."""


@dataclass
class PfifNote:
    """One note under PFIF 1.4 names; values are non-empty strings."""

    fields: dict[str, str]


@dataclass
class PfifPerson:
    """One person record under PFIF 1.4 names, with its notes."""

    fields: dict[str, str]
    notes: list[PfifNote] = field(default_factory=list)


@dataclass(frozen=True)
class RecordError:
    """A refused record: ``kind`` person|note, its id when it has one, 1-based
    position among records of its kind in the file, and why."""

    kind: str
    record_id: str
    position: int
    reason: str


@dataclass
class ParsedFile:
    version: str
    persons: list[PfifPerson]
    #: Top-level notes (PFIF 1.2+) whose person is not in this file.
    orphan_notes: list[PfifNote]
    errors: list[RecordError]


def format_date(value: datetime) -> str:
    """A PFIF date: UTC, ``YYYY-MM-DDThh:mm:ssZ``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date(value: str) -> datetime:
    """A PFIF UTC date as an aware datetime. Raises ValueError."""
    if not _UTC_DATE.match(value):
        raise ValueError(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _version_of(tag: str) -> str:
    for version in VERSIONS:
        if tag.startswith("{" + NS.format(version) + "}"):
            return version
    raise PfifFileError(
        _(
            "root element {tag!r} is not in a PFIF namespace; accepted: {namespaces}",
            tag=tag,
            namespaces=", ".join(NS.format(v) for v in VERSIONS),
        )
    )


def _fields(element: ET.Element, ns: str, accepted: frozenset[str], what: str) -> dict[str, str]:
    """Child fields of a record, renamed to 1.4. Raises ValueError with the reason."""
    out: dict[str, str] = {}
    for child in element:
        if not isinstance(child.tag, str) or not child.tag.startswith("{" + ns + "}"):
            continue  # extension elements in other namespaces are allowed and ignored
        name = child.tag[len(ns) + 2 :]
        if name == "note" and what == "person":
            continue
        if name not in accepted:
            raise ValueError(
                _("unknown {what} field {name!r} for this PFIF version", what=what, name=name)
            )
        canonical = _RENAMED.get(name, name)
        if canonical in out:
            raise ValueError(_("field {name!r} appears twice", name=name))
        if len(child):
            raise ValueError(_("field {name!r} must hold text, not elements", name=name))
        value = (child.text or "").strip()
        if value:
            out[canonical] = value
    return out


def _check_common(fields: dict[str, str], id_field: str, now: datetime) -> None:
    record_id = fields.get(id_field)
    if not record_id:
        raise ValueError(_("{id_field} is missing", id_field=id_field))
    if not _RECORD_ID.match(record_id):
        raise ValueError(
            _(
                "{id_field} {record_id!r} is not 'domain/unique-id'",
                id_field=id_field,
                record_id=record_id,
            )
        )
    for name in _DATE_FIELDS:
        if name in fields:
            try:
                parse_date(fields[name])
            except ValueError:
                raise ValueError(
                    _(
                        "{name} {value!r} is not a UTC date like 2026-01-31T08:00:00Z",
                        name=name,
                        value=fields[name],
                    )
                ) from None


def _check_person(fields: dict[str, str], now: datetime) -> None:
    _check_common(fields, "person_record_id", now)
    if not fields.keys() & {"full_name", "given_name", "family_name"}:
        raise ValueError(_("the person has no name (full_name, given_name or family_name)"))
    if "sex" in fields and fields["sex"] not in SEXES:
        raise ValueError(
            _("sex {sex!r} is not one of {accepted}", sex=fields["sex"], accepted=", ".join(SEXES))
        )
    dob = fields.get("date_of_birth")
    if dob is not None:
        if not _DOB.match(dob):
            raise ValueError(_("date_of_birth {dob!r} is not YYYY, YYYY-MM or YYYY-MM-DD", dob=dob))
        parts = [int(p) for p in dob.split("-")]
        try:
            datetime(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
        except ValueError:
            raise ValueError(_("date_of_birth {dob!r} is not a real date", dob=dob)) from None
    age = fields.get("age")
    if age is not None:
        m = _AGE.match(age)
        if not m or (m.group(3) is not None and int(m.group(3)) < int(m.group(1))):
            raise ValueError(
                _("age {age!r} is not a number of years or a range like 30-40", age=age)
            )
    if "expiry_date" in fields and parse_date(fields["expiry_date"]) <= now:
        raise ValueError(
            _("the record expired on {expiry_date}", expiry_date=fields["expiry_date"])
        )


def _check_note(fields: dict[str, str], person_id: str | None, now: datetime) -> None:
    _check_common(fields, "note_record_id", now)
    if person_id is not None:
        given = fields.setdefault("person_record_id", person_id)
        if given != person_id:
            raise ValueError(
                _(
                    "person_record_id {given!r} differs from the enclosing person {person_id!r}",
                    given=given,
                    person_id=person_id,
                )
            )
    elif "person_record_id" not in fields:
        raise ValueError(_("a top-level note needs person_record_id"))
    linked = fields.get("linked_person_record_id")
    if linked is not None and not _RECORD_ID.match(linked):
        raise ValueError(
            _("linked_person_record_id {linked!r} is not 'domain/unique-id'", linked=linked)
        )
    if "status" in fields and fields["status"] not in NOTE_STATUSES:
        raise ValueError(
            _(
                "status {status!r} is not one of {accepted}",
                status=fields["status"],
                accepted=", ".join(NOTE_STATUSES),
            )
        )
    contact = fields.get("author_made_contact")
    if contact is not None and contact not in {"true", "false"}:
        raise ValueError(
            _("author_made_contact (found) {contact!r} is not true or false", contact=contact)
        )


def parse(data: bytes, *, now: datetime) -> ParsedFile:
    """Parse a PFIF 1.1–1.4 document.

    Args:
        data: the XML bytes (any XML encoding declaration).
        now: the moment against which ``expiry_date`` is checked (aware UTC).

    Returns:
        The valid persons (with nested and top-level notes attached), top-level
        notes whose person is elsewhere, and one :class:`RecordError` per refused
        record (a refused person takes its nested notes with it).

    Raises:
        PfifFileError: not XML, unsafe XML (DTD, entities), or not a PFIF root.
    """
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise PfifFileError(_("unsafe XML refused ({error})", error=type(exc).__name__)) from exc
    except ET.ParseError as exc:
        raise PfifFileError(_("not well-formed XML: {error}", error=exc)) from exc
    version = _version_of(root.tag)
    ns = NS.format(version)
    if root.tag != f"{{{ns}}}pfif":
        raise PfifFileError(_("root element must be pfif:pfif, got {tag!r}", tag=root.tag))
    person_ok, note_ok = _ACCEPTED[version]
    persons: list[PfifPerson] = []
    by_id: dict[str, PfifPerson] = {}
    loose: list[PfifNote] = []
    errors: list[RecordError] = []
    n_person = n_note = 0
    for element in root:
        if element.tag == f"{{{ns}}}person":
            n_person += 1
            record_id = (element.findtext(f"{{{ns}}}person_record_id") or "").strip()
            try:
                fields = _fields(element, ns, person_ok, "person")
                _check_person(fields, now)
                if record_id in by_id:
                    raise ValueError(
                        _(
                            "person_record_id {record_id!r} appears twice in the file",
                            record_id=record_id,
                        )
                    )
            except ValueError as exc:
                errors.append(RecordError("person", record_id, n_person, str(exc)))
                continue
            person = PfifPerson(fields=fields)
            for note_el in element.findall(f"{{{ns}}}note"):
                n_note += 1
                note_id = (note_el.findtext(f"{{{ns}}}note_record_id") or "").strip()
                try:
                    note = _fields(note_el, ns, note_ok, "note")
                    _check_note(note, record_id, now)
                except ValueError as exc:
                    errors.append(RecordError("note", note_id, n_note, str(exc)))
                    continue
                person.notes.append(PfifNote(fields=note))
            persons.append(person)
            by_id[record_id] = person
        elif element.tag == f"{{{ns}}}note":
            n_note += 1
            note_id = (element.findtext(f"{{{ns}}}note_record_id") or "").strip()
            try:
                note = _fields(element, ns, note_ok, "note")
                _check_note(note, None, now)
            except ValueError as exc:
                errors.append(RecordError("note", note_id, n_note, str(exc)))
                continue
            loose.append(PfifNote(fields=note))
        elif isinstance(element.tag, str) and element.tag.startswith(f"{{{ns}}}"):
            errors.append(
                RecordError(
                    "element", "", 0, _("unknown top-level element {tag!r}", tag=element.tag)
                )
            )
    orphans: list[PfifNote] = []
    for loose_note in loose:
        owner = by_id.get(loose_note.fields["person_record_id"])
        if owner is not None:
            owner.notes.append(loose_note)
        else:
            orphans.append(loose_note)
    return ParsedFile(version=version, persons=persons, orphan_notes=orphans, errors=errors)


def write(persons: list[PfifPerson]) -> bytes:
    """A PFIF 1.4 document (UTF-8) with each person's notes nested in it.

    Fields are written in the specification's order; empty values are left out.
    """
    ns = NS.format("1.4")
    ET.register_namespace("pfif", ns)
    root = ET.Element(f"{{{ns}}}pfif")
    for person in persons:
        el = ET.SubElement(root, f"{{{ns}}}person")
        for name in PERSON_FIELDS:
            if person.fields.get(name):
                ET.SubElement(el, f"{{{ns}}}{name}").text = person.fields[name]
        for note in person.notes:
            note_el = ET.SubElement(el, f"{{{ns}}}note")
            for name in NOTE_FIELDS:
                if note.fields.get(name):
                    ET.SubElement(note_el, f"{{{ns}}}{name}").text = note.fields[name]
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
