"""Published family-search announcements (寻亲公告), one per case."""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from rescue.cases.tables import Case
from rescue.photos.tables import Photo


class Announcement(Table, tablename="announcements"):
    """The announcement of one case. ``fields`` holds what staff entered (a snapshot,
    not a view of the case file); ``internal`` names the fields kept off the public
    view. Only rows with ``published`` are ever served publicly."""

    id: Serial
    case = ForeignKey(references=Case, unique=True)
    photo = ForeignKey(references=Photo, null=True, default=None)
    fields = JSON(default="{}")
    internal = JSON(default="[]")
    published = Boolean(default=False)
    published_at = Timestamptz(null=True, default=None)
    published_by = Integer(null=True, default=None)  # users.id
    unpublished_at = Timestamptz(null=True, default=None)
    unpublish_reason = Text(default="")
    updated_at = Timestamptz(default=TimestamptzNow())
    #: Object keys of the clean public photo and its list thumbnail, made once
    #: at publish time; removed (and emptied) on unpublish.
    public_photo_key = Varchar(length=200, default="")
    public_thumb_key = Varchar(length=200, default="")
