"""Import runs of external lists, their records, and the warnings they raise (比对预警)."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSON,
    BigInt,
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
    #: When the retention run deleted the run's list file, photos ZIP, kept row
    #: photos and rows (rescue.retention.retire_imports); the counts, dates and
    #: who stay. Rows of warnings still open are kept until verified. A purged
    #: run cannot be started or resumed.
    purged_at = Timestamptz(null=True, default=None)


class ChunkStatus(StrEnum):
    pending = "pending"  # queued (or to be queued): not started, or handed back
    running = "running"
    done = "done"
    failed = "failed"


class ImportChunk(Table, tablename="import_chunks"):
    """A stretch of a run's rows (``first_row`` to ``last_row``, row numbers as in
    the dry run) done by one worker job, with its own committed progress, so that
    several worker processes share one list. A job works on a chunk only under
    its ``claim`` (rescue.imports.services: one job at a time per chunk).
    ``chunk_key`` "run:chunk_no" is unique. ``byte_offset``: where the chunk's
    first row starts in a CSV file (a worker seeks there instead of reading the
    rows before it; None: an Excel file, read from the start), checked against
    ``first_id`` (the row's 外部编号)."""

    id: Serial
    run = ForeignKey(references=ImportRun, index=True)
    chunk_no = Integer()
    chunk_key = Varchar(length=40, unique=True)
    first_row = Integer()
    #: Last row number of the chunk (None: to the end of the file).
    last_row = Integer(null=True, default=None)
    byte_offset = BigInt(null=True, default=None)
    first_id = Varchar(length=100, default="")
    status = Varchar(length=16, choices=ChunkStatus, default=ChunkStatus.pending)
    #: Last row number whose work is committed (resume after it); first_row - 1: none.
    row_done = Integer(default=0)
    #: Rows of the chunk done (its share of the run's ``rows_done``).
    rows_done = Integer(default=0)
    warnings_raised = Integer(default=0)
    #: The worker process that last worked on the chunk ("host:pid").
    worked_by = Varchar(length=100, default="")
    #: The claim of the job working on the chunk (a random token, "" when none):
    #: every commit of its progress is made only while the claim is still its own.
    claim = Varchar(length=40, default="")
    #: Until when the claim holds (``IMPORT_LEASE_SECONDS`` after the job's last
    #: commit); a ``running`` chunk past it is taken to be abandoned (a worker
    #: killed) and is queued again by the next start/resume.
    lease_until = Timestamptz(null=True, default=None)
    failure_reason = Text(default="")
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
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
