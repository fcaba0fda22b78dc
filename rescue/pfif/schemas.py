"""Response bodies of PFIF import and of a notice's PFIF record."""

from __future__ import annotations

import msgspec


class RefusedRecord(msgspec.Struct):
    """A record left out of the import: ``kind`` person|note|element, its id when
    it had one, its 1-based position among records of its kind, and why."""

    kind: str
    record_id: str
    position: int
    reason: str


class PfifImportReport(msgspec.Struct):
    """What an import did. Valid records are kept even when others are refused."""

    version: str
    created_notice_ids: list[int]
    updated_notice_ids: list[int]
    notes_added: int
    notes_already_known: int
    refused: list[RefusedRecord]


class PfifRecordOut(msgspec.Struct):
    """The PFIF person a notice was imported from, and its notes (PFIF 1.4 names)."""

    notice_id: int
    person_record_id: str
    source_version: str
    fields: dict[str, str]
    notes: list[dict[str, str]]
