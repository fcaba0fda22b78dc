"""Match candidates: one per (case, notice) pair."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import DoublePrecision, ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case
from rescue.notices.tables import Notice
from rescue.photos.tables import Photo


class CandidateStatus(StrEnum):
    proposed = "proposed"
    under_review = "under_review"
    confirmed = "confirmed"
    rejected = "rejected"
    superseded = "superseded"


class Candidate(Table, tablename="candidates"):
    """A possible identity: this person in care may be the person in this notice.

    ``pair_key`` (``"{case_id}:{notice_id}"``) is unique, so concurrent workers
    can never create two candidates for one pair.
    """

    id: Serial
    case = ForeignKey(references=Case, index=True)
    notice = ForeignKey(references=Notice, index=True)
    pair_key = Varchar(length=40, unique=True)
    best_distance = DoublePrecision(null=True, default=None)
    case_photo = ForeignKey(references=Photo, null=True, default=None)
    notice_photo = ForeignKey(references=Photo, null=True, default=None)
    status = Varchar(length=16, choices=CandidateStatus, default=CandidateStatus.proposed)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
