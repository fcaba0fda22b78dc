"""The audit trail table. Append-only: the service has no path that updates or
deletes a record, and the migration adds a trigger rejecting UPDATE and DELETE
(PostgreSQL and SQLite)."""

from __future__ import annotations

from piccolo.columns import Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AuditRecord(Table, tablename="audit_records"):
    """One audited request.

    ``route`` is the path template (e.g. ``/api/photos/{photo_id}``) and
    ``resource_type``/``resource_id`` the object its last path parameter names
    (``photo``/``17``); ``created_id`` is the ``id`` a write answered with (a new
    case, photo, notice, token…). ``case_id`` is the case concerned, when there is
    one (directly, or through a photo or candidate), for the per-case trail.
    """

    id: Serial
    at = Timestamptz(default=TimestamptzNow())
    user_id = Integer(null=True, default=None)  # users.id; None: not signed in (login)
    username = Varchar(length=100, default="")
    role = Varchar(length=32, default="")
    kind = Varchar(length=8)  # write | read
    method = Varchar(length=8)
    route = Varchar(length=300)
    path = Varchar(length=500)
    resource_type = Varchar(length=40, default="")
    resource_id = Varchar(length=40, null=True, default=None)
    created_id = Varchar(length=40, null=True, default=None)
    case_id = Integer(null=True, default=None)
    client = Varchar(length=100, default="")
    status_code = Integer()
