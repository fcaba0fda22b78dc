"""Tables of the workbench: page sessions and once-only form submissions."""

from __future__ import annotations

from piccolo.columns import Bytea, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class WebSession(Table, tablename="web_sessions"):
    """A server-side page session (Litestar's session store, rescue.web.sessions).

    Kept in the database so every API process of a station sees the same
    sessions (SQLite embedded and PostgreSQL alike). ``data`` holds the user id
    and the login time, never a password or personal data of cases.
    """

    id: Serial
    key = Varchar(length=128, unique=True)
    data = Bytea()
    expires_at = Timestamptz(null=True, default=None, index=True)


class FormSubmission(Table, tablename="form_submissions"):
    """One submitted form, by its form key (a hidden field rendered once per form).

    A second submission of the same key (double click, browser resubmit) does
    not run the action again: it is sent to ``result_url`` of the first.
    """

    id: Serial
    key = Varchar(length=64, unique=True)
    user_id = Integer()
    result_url = Varchar(length=500, default="")
    created_at = Timestamptz(default=TimestamptzNow())
