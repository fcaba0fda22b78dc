"""Request and response bodies of import runs and warnings (比对预警)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from rescue.imports.tables import RunStatus, WarningOutcome
from rescue.imports.templates import ListKind


class RowError(msgspec.Struct):
    """A row left out: its number (1 = first data row), the column and why."""

    row: int
    column: str
    reason: str


class RunOut(msgspec.Struct):
    """An import run: the dry run's findings, then the run's progress.

    ``rate_rows_per_s`` and ``seconds_left`` are measured from ``started_at``
    while the run is ``running`` (None before and after)."""

    id: int
    list_kind: ListKind
    list_name: str
    station: str
    filename: str
    file_format: str
    encoding: str
    status: RunStatus
    total_rows: int
    valid_rows: int
    error_rows: int
    errors: list[RowError]
    #: What the run would create: ``{"records": n}`` (rows to store and compare).
    would_create: dict[str, int]
    rows_done: int
    warnings_raised: int
    rate_rows_per_s: float | None
    seconds_left: float | None
    started_at: datetime | None
    finished_at: datetime | None
    failure_reason: str
    created_at: datetime
    #: When the retention run deleted the list file, photos and rows
    #: (``IMPORT_RETENTION_DAYS`` without activity; docs/privacy.md "Retention"):
    #: the counts and dates stay, ``errors`` is empty, and the run can no longer
    #: be started or resumed. None while they are kept.
    purged_at: datetime | None = None


class WarningTarget(msgspec.Struct):
    kind: str  # case | notice
    id: int
    link: str


class WarningOut(msgspec.Struct):
    """A warning to verify: the external record, whom it hit, and why.

    ``record`` is the list's row (its fields); it is empty once the warning is
    verified and the retention run purged the list (docs/privacy.md
    "Retention"): the outcome, note and verifier stay. Open warnings keep it."""

    id: int
    run_id: int
    list_kind: str
    list_name: str
    external_id: str
    record: dict[str, Any]
    target: WarningTarget
    station: str
    evidence: list[str]
    explanation: str
    score: float
    outcome: WarningOutcome | None
    note: str
    raised_at: datetime
    verified_at: datetime | None
    #: Days since raised (station calendar).
    age_days: int
    candidate_id: int | None


class VerifyIn(msgspec.Struct, forbid_unknown_fields=True):
    """核实: the outcome, with a note (required for every outcome but no_action)."""

    outcome: WarningOutcome
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class WarningSummaryRow(msgspec.Struct):
    """Counts of one (list, station): raised → verified → helped …"""

    list_name: str
    station: str
    raised: int
    open: int
    verified: int
    helped: int
    already_known: int
    not_same: int
    no_action: int
