"""PFIF 1.1–1.4 parsing and writing on files written for these tests (tests/data/pfif)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rescue.pfif.format import NOTE_FIELDS, PERSON_FIELDS, PfifFileError, parse, write


@pytest.fixture(autouse=True)
def _english():
    """The reasons below are checked in English (the catalogue's msgids)."""
    from rescue.i18n import use_locale

    with use_locale("en"):
        yield


DATA = Path(__file__).resolve().parents[1] / "data" / "pfif"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_pfif_1_1_names_are_mapped_to_1_4():
    parsed = parse((DATA / "v1_1.xml").read_bytes(), now=NOW)
    assert parsed.version == "1.1"
    assert parsed.errors[0].record_id == "haiti.example.org/person.1002"
    assert "unknown person field 'sex'" in parsed.errors[0].reason  # sex came in 1.2
    (person,) = parsed.persons
    assert person.fields["given_name"] == "Jean"
    assert person.fields["family_name"] == "Baptiste"
    assert person.fields["home_postal_code"] == "HT6110"
    assert person.fields["description"] == "Tall, scar on left hand."
    (note,) = person.notes
    assert note.fields["author_made_contact"] == "false"
    assert note.fields["person_record_id"] == "haiti.example.org/person.1001"
    assert note.fields["last_known_location"] == "Rue Pavée"


def test_pfif_1_2_refuses_malformed_records_one_by_one():
    parsed = parse((DATA / "v1_2.xml").read_bytes(), now=NOW)
    assert [p.fields["person_record_id"] for p in parsed.persons] == [
        "chile.example.cl/p.77",
        "chile.example.cl/p.78",
    ]
    reasons = {(e.kind, e.position): e.reason for e in parsed.errors}
    assert "sex 'unknown' is not one of female, male, other" in reasons[("person", 3)]
    assert "person_record_id is missing" in reasons[("person", 4)]
    assert "status 'probably_fine'" in reasons[("note", 3)]
    luis, carmen = parsed.persons
    (linked,) = luis.notes
    assert linked.fields["linked_person_record_id"] == "chile.example.cl/p.78"
    assert linked.fields["status"] == "believed_alive"
    assert linked.fields["author_made_contact"] == "true"
    assert carmen.notes[0].fields["status"] == "information_sought"
    assert luis.fields["date_of_birth"] == "1950-04"
    assert luis.fields["age"] == "58-62"


def test_pfif_1_4_every_field_and_its_checks():
    parsed = parse((DATA / "v1_4.xml").read_bytes(), now=NOW)
    (person,) = parsed.persons
    assert set(person.fields) == set(PERSON_FIELDS)
    assert set(person.notes[0].fields) == set(NOTE_FIELDS)
    assert person.fields["alternate_names"] == "Zhang Jianguo\n老张"
    reasons = [e.reason for e in parsed.errors]
    assert reasons == [
        "the record expired on 2020-01-01T00:00:00Z",
        "unknown person field 'first_name' for this PFIF version",
        "entry_date '2026-11-20' is not a UTC date like 2026-01-31T08:00:00Z",
    ]


@pytest.mark.parametrize("name", ["v1_1.xml", "v1_2.xml", "v1_4.xml"])
def test_writing_then_reading_keeps_every_field(name):
    first = parse((DATA / name).read_bytes(), now=NOW)
    again = parse(write(first.persons), now=NOW)
    assert again.version == "1.4"
    assert again.errors == []
    assert [(p.fields, [n.fields for n in p.notes]) for p in again.persons] == [
        (p.fields, [n.fields for n in p.notes]) for p in first.persons
    ]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"not xml", "not well-formed XML"),
        (b'<pfif xmlns="http://example.org/other"/>', "not in a PFIF namespace"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b'<pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4">&b;</pfif:pfif>',
            "unsafe XML refused",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4">&e;</pfif:pfif>',
            "unsafe XML refused",
        ),
        (b'<pfif:person xmlns:pfif="http://zesty.ca/pfif/1.4"/>', "root element must be"),
    ],
)
def test_files_that_are_not_pfif_are_refused_whole(data, says):
    with pytest.raises(PfifFileError, match=says):
        parse(data, now=NOW)
