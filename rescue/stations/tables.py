"""转送: a person in care moved from one station to another."""

from __future__ import annotations

from piccolo.columns import Date, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case


class CaseTransfer(Table, tablename="case_transfers"):
    """One 转送 of a case: from which station to which, when, why, by whom.

    Never updated: the case's ``station`` changes and this row (with the
    ``transferred`` timeline event) keeps where it was before."""

    id: Serial
    case = ForeignKey(references=Case)
    from_station = Varchar(length=100)
    to_station = Varchar(length=100)
    reason = Text()
    transferred_on = Date()
    recorded_by = Integer(null=True, default=None)  # users.id
    created_at = Timestamptz(default=TimestamptzNow())
