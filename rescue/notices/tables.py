"""Missing-person notices (寻人启事 / 走失人员信息) from families, police and stations."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import Date, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Sex


class NoticeSource(StrEnum):
    family = "family"
    police = "police"
    station = "station"
    #: Another organisation's repository or list (PFIF import, external lists).
    external = "external"


class NoticeStatus(StrEnum):
    open = "open"  # still searching
    found = "found"  # a reviewer confirmed a match
    withdrawn = "withdrawn"


class Notice(Table, tablename="notices"):
    id: Serial
    name = Varchar(length=100)
    sex = Varchar(length=10, choices=Sex, default=Sex.unknown)
    date_of_birth = Date(null=True, default=None)
    age_when_missing = Integer(null=True, default=None)
    missing_since = Date(null=True, default=None)
    last_seen_place = Varchar(length=300, default="")
    source = Varchar(length=16, choices=NoticeSource)
    reporter_name = Varchar(length=100, default="")
    reporter_contact = Varchar(length=200, default="")
    description = Text(default="")
    status = Varchar(length=16, choices=NoticeStatus, default=NoticeStatus.open)
    created_by = Integer(null=True, default=None)  # users.id
    #: The registering station (登记站): the station of the account that
    #: registered it; its staff take part in a candidate on another station's
    #: case (rescue.stations). Empty: registered by no station (admin, imports).
    station = Varchar(length=100, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
