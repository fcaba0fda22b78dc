"""PFIF records imported from other repositories, kept whole beside their notices."""

from __future__ import annotations

from piccolo.columns import JSON, ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.notices.tables import Notice


class PfifPersonRecord(Table, tablename="pfif_person_records"):
    """An imported PFIF person: every field it carried (PFIF 1.4 names), so an
    export gives it back unchanged; ``notice`` is the notice made from it."""

    id: Serial
    notice = ForeignKey(references=Notice, unique=True)
    person_record_id = Varchar(length=500, unique=True)
    source_version = Varchar(length=4)
    fields = JSON(default="{}")
    imported_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class PfifNoteRecord(Table, tablename="pfif_note_records"):
    """An imported PFIF note (status, contact made, last known location, linked
    person record), every field under PFIF 1.4 names. Notes are never edited."""

    id: Serial
    notice = ForeignKey(references=Notice, index=True)
    note_record_id = Varchar(length=500, unique=True)
    fields = JSON(default="{}")
    imported_at = Timestamptz(default=TimestamptzNow())
