"""Import runs of external lists, their records, and the warnings they raise (比对预警)."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSON,
    Float,
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
from rescue.notices.tables import Notice


class RunStatus(StrEnum):
    checked = "checked"  # dry run done: per-row errors known, nothing created
    running = "running"
    done = "done"
    failed = "failed"


class WarningOutcome(StrEnum):
    """Outcome of verifying a warning (核实结果)."""

    helped = "helped"  # 核实有效：帮助查明/寻亲
    already_known = "already_known"  # 已掌握
    not_same = "not_same"  # 非同一人
    no_action = "no_action"  # 无需处理


class ImportRun(Table, tablename="import_runs"):
    """One upload of an external list: dry run, then the run with its progress."""

    id: Serial
    list_kind = Varchar(length=40)
    list_name = Varchar(length=200)
    station = Varchar(length=100, default="")
    filename = Varchar(length=300, default="")
    object_key = Varchar(length=200)
    file_sha256 = Varchar(length=64)
    file_format = Varchar(length=8)  # csv | xlsx
    encoding = Varchar(length=16, default="")
    status = Varchar(length=16, choices=RunStatus, default=RunStatus.checked)
    total_rows = Integer(default=0)
    valid_rows = Integer(default=0)
    error_rows = Integer(default=0)
    #: Per-row problems of the dry run: [{"row", "column", "reason"}] (first 1,000).
    errors = JSON(default="[]")
    rows_done = Integer(default=0)
    warnings_raised = Integer(default=0)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    failure_reason = Text(default="")
    #: Backlog runs (rescue.backlog): the ZIP of photos named in the rows, and
    #: what the run would create ({"cases": n, "placements": n, "photos": n}).
    archive_key = Varchar(length=200, null=True, default=None)
    plan = JSON(default="{}")
    created_by = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class ImportRecord(Table, tablename="import_records"):
    """One valid row of a run. ``row_key`` "run:row" is unique: a resumed run never
    stores a row twice."""

    id: Serial
    run = ForeignKey(references=ImportRun, index=True)
    row_number = Integer()
    row_key = Varchar(length=40, unique=True)
    external_id = Varchar(length=100)
    fields = JSON(default="{}")
    created_at = Timestamptz(default=TimestamptzNow())


class ImportWarning(Table, tablename="import_warnings"):
    """A hit of an external record on a person in care (``case``) or an open notice
    (``notice``), for the responsible ``station`` to verify. One row per (list
    kind, external id, target): ``pair_key`` is unique."""

    id: Serial
    run = ForeignKey(references=ImportRun, index=True)
    record = ForeignKey(references=ImportRecord)
    list_kind = Varchar(length=40)
    list_name = Varchar(length=200)
    external_id = Varchar(length=100)
    case = ForeignKey(references=Case, null=True, default=None, index=True)
    notice = ForeignKey(references=Notice, null=True, default=None, index=True)
    station = Varchar(length=100, default="", index=True)
    pair_key = Varchar(length=300, unique=True)
    evidence = JSON(default="[]")
    explanation = Text(default="")
    score = Float(default=0.0)
    outcome = Varchar(length=16, choices=WarningOutcome, null=True, default=None)
    note = Text(default="")
    verified_by = Integer(null=True, default=None)
    verified_at = Timestamptz(null=True, default=None)
    candidate_id = Integer(null=True, default=None)
    raised_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
