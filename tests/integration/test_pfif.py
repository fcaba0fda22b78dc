"""PFIF through the API: import 1.1/1.2/1.4 files, export, round trip, announcements."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rescue.pfif.format import parse
from tests.integration.helpers import new_case, new_notice

DATA = Path(__file__).resolve().parents[1] / "data" / "pfif"
XML = {"Content-Type": "application/xml"}


async def import_file(client: Any, headers: dict[str, str], data: bytes) -> dict[str, Any]:
    response = await client.post("/api/pfif/import", content=data, headers={**headers, **XML})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def export(client: Any, headers: dict[str, str], **params: str) -> bytes:
    response = await client.get("/api/pfif/export", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return bytes(response.content)


def persons_by_id(data: bytes) -> dict[str, Any]:
    parsed = parse(data, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert parsed.errors == []
    return {p.fields["person_record_id"]: p for p in parsed.persons}


async def test_import_1_4_then_export_and_reimport_keeps_every_field(client, police):
    report = await import_file(client, police, (DATA / "v1_4.xml").read_bytes())
    assert report["version"] == "1.4"
    (notice_id,) = report["created_notice_ids"]
    assert report["notes_added"] == 1
    assert [r["position"] for r in report["refused"]] == [2, 3, 4]
    assert "expired" in report["refused"][0]["reason"]

    notice = (await client.get(f"/api/notices/{notice_id}", headers=police)).json()
    assert notice["name"] == "张建国"
    assert notice["sex"] == "male"
    assert notice["date_of_birth"] == "1958-06-01"
    assert notice["age_when_missing"] == 68
    assert notice["last_seen_place"] == "成都东站"
    assert notice["source"] == "external"
    assert notice["reporter_contact"] == "13800000000"

    record = (await client.get(f"/api/notices/{notice_id}/pfif", headers=police)).json()
    original = persons_by_id_of_file("v1_4.xml")["zhaoren.example.cn/person.2026-0042"]
    assert record["fields"] == original.fields
    assert record["notes"] == [n.fields for n in original.notes]

    exported = persons_by_id(await export(client, police, announcements="false"))
    again = exported["zhaoren.example.cn/person.2026-0042"]
    assert again.fields == original.fields
    assert [n.fields for n in again.notes] == [n.fields for n in original.notes]

    # Importing our own export again updates; nothing is duplicated.
    second = await import_file(client, police, await export(client, police))
    assert second["created_notice_ids"] == []
    assert second["updated_notice_ids"] == [notice_id]
    assert second["notes_added"] == 0
    assert second["notes_already_known"] == 1


def persons_by_id_of_file(name: str) -> dict[str, Any]:
    parsed = parse((DATA / name).read_bytes(), now=datetime(2026, 12, 1, tzinfo=UTC))
    return {p.fields["person_record_id"]: p for p in parsed.persons}


async def test_import_1_2_keeps_valid_records_and_says_why_others_were_refused(client, staff):
    report = await import_file(client, staff, (DATA / "v1_2.xml").read_bytes())
    assert len(report["created_notice_ids"]) == 2
    refused = {(r["kind"], r["position"]): r for r in report["refused"]}
    assert refused[("person", 3)]["record_id"] == "chile.example.cl/p.79"
    assert "sex 'unknown'" in refused[("person", 3)]["reason"]
    assert "person_record_id is missing" in refused[("person", 4)]["reason"]
    assert "probably_fine" in refused[("note", 3)]["reason"]
    luis_id = report["created_notice_ids"][0]
    luis = (await client.get(f"/api/notices/{luis_id}/pfif", headers=staff)).json()
    assert luis["source_version"] == "1.2"
    (note,) = luis["notes"]
    assert note["status"] == "believed_alive"
    assert note["linked_person_record_id"] == "chile.example.cl/p.78"
    notice = (await client.get(f"/api/notices/{luis_id}", headers=staff)).json()
    assert notice["name"] == "Luis Soto"
    assert notice["age_when_missing"] == 60  # 58-62
    assert notice["date_of_birth"] is None  # 1950-04 stays in the PFIF record


async def test_import_1_1_and_a_later_top_level_note(client, staff):
    report = await import_file(client, staff, (DATA / "v1_1.xml").read_bytes())
    (notice_id,) = report["created_notice_ids"]
    later = b"""<?xml version="1.0"?>
<pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.3">
  <pfif:note>
    <pfif:note_record_id>haiti.example.org/note.5002</pfif:note_record_id>
    <pfif:person_record_id>haiti.example.org/person.1001</pfif:person_record_id>
    <pfif:author_name>Paul Joseph</pfif:author_name>
    <pfif:status>believed_alive</pfif:status>
    <pfif:text>He called us.</pfif:text>
  </pfif:note>
  <pfif:note>
    <pfif:note_record_id>haiti.example.org/note.5003</pfif:note_record_id>
    <pfif:person_record_id>haiti.example.org/person.9999</pfif:person_record_id>
    <pfif:text>Unknown person.</pfif:text>
  </pfif:note>
</pfif:pfif>"""
    second = await import_file(client, staff, later)
    assert second["notes_added"] == 1
    assert "neither in this file nor imported before" in second["refused"][0]["reason"]
    record = (await client.get(f"/api/notices/{notice_id}/pfif", headers=staff)).json()
    assert [n["status"] for n in record["notes"] if "status" in n] == ["believed_alive"]
    assert record["notes"][0]["author_made_contact"] == "false"


async def test_export_of_native_notices_and_announcements_publishes_only_what_may_go(client, staff):
    notice = await new_notice(
        client,
        staff,
        name="刘七",
        reporter_name="刘家人",
        reporter_contact="13700000000",
        last_seen_place="城北汽车站",
        missing_since="2026-10-01",
        age_when_missing=70,
    )
    case = await new_case(client, staff, reported_name="陈八", description="内部记录")
    published = await client.post(
        f"/api/cases/{case['id']}/announcement",
        json={
            "found_place": "城西",
            "clothing": "蓝色外套",
            "mental_state": "迷糊",
            "internal": ["mental_state"],
        },
        headers=staff,
    )
    assert published.status_code == 201, published.text
    data = await export(client, staff)
    assert b"13700000000" not in data
    assert "刘家人".encode() not in data
    assert "内部记录".encode() not in data
    assert "迷糊".encode() not in data
    persons = persons_by_id(data)
    mine = persons[f"rescue.invalid/notice.{notice['id']}"]
    assert mine.fields["full_name"] == "刘七"
    assert mine.fields["age"] == "70"
    assert mine.fields["expiry_date"] > mine.fields["entry_date"]
    assert mine.fields["source_name"]
    assert mine.notes[0].fields["last_known_location"] == "城北汽车站"
    assert mine.notes[0].fields["status"] == "information_sought"
    announced = persons[f"rescue.invalid/announcement.{published.json()['id']}"]
    assert announced.fields["description"] == "蓝色外套"
    assert announced.notes[0].fields["status"] == "believed_alive"
    assert announced.notes[0].fields["last_known_location"] == "城西"
    # Our own records are not imported back as new notices.
    report = await import_file(client, staff, data)
    assert report["created_notice_ids"] == []
    assert all("originates here" in r["reason"] for r in report["refused"])


async def test_bad_files_are_refused_clearly(client, staff):
    for data, status in [
        (b"", 400),
        (b"<html><body>hello</body></html>", 400),
        (b'<!DOCTYPE x [<!ENTITY a "a">]><pfif:pfif xmlns:pfif="http://zesty.ca/pfif/1.4"/>', 400),
    ]:
        response = await client.post("/api/pfif/import", content=data, headers={**staff, **XML})
        assert response.status_code == status, response.text
        assert response.json()["detail"]
    missing = await client.get("/api/notices/987654/pfif", headers=staff)
    assert missing.status_code == 404
