"""Import runs of external lists and the warnings to verify (比对预警).

1. :func:`create_run` — the dry run: the file is read and every row checked;
   nothing is created but the run's record (per-row problems, rows to create).
   An unreadable file is refused whole (400) and no run is made.
   The dry run also cuts the rows into chunks of ``IMPORT_CHUNK_ROWS``
   (:class:`~rescue.imports.tables.ImportChunk`; for CSV with the byte offset
   of each chunk's first row).
2. :func:`start_run` — queues one :func:`execute_run` job per chunk no job is
   working on, so the worker processes share one list (``rescue import`` runs
   the chunks in order in the terminal with a progress bar). A backlog run
   (rescue.backlog) is one chunk under the same rules, loaded whole by one job.
3. :func:`execute_run` — stores each valid row of a chunk and compares it with
   the people in care and the open notices (:mod:`rescue.imports.compare`);
   each hit is a warning for the responsible station. A chunk's progress is
   saved every :data:`PROGRESS_EVERY` rows; the run's ``rows_done`` is the sum
   over its chunks and it is done when every chunk is. A job works on a chunk
   only under its claim, whose lease each commit renews. After a crash a
   resumed run queues only the chunks no job works on (pending, failed, or
   running past their lease), each going on after its last saved row, and rows
   done again are not stored or warned twice (unique ``row_key`` and
   ``pair_key``).
4. :func:`verify` — staff record the outcome; ``helped`` puts the pair in the
   candidate review ledger (``rescue.matching.ledger.submit_candidate``).

A warning is not raised again for the same (list kind, external id, target)
unless a later import brings a kind of evidence it did not have; a warning
verified ``not_same`` or ``no_action`` then opens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import time
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import anyio.to_thread
from piccolo.engine.postgres import PostgresEngine

from media.storage import ObjectMissing, ObjectStore, new_object_key
from rescue import clock
from rescue.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, PermissionDenied
from rescue.i18n import _
from rescue.imports.compare import Hit, TargetIndex, explain
from rescue.imports.photos import PhotoProblem, PhotoSource, encode_faces, photos_key
from rescue.imports.reader import (
    FileRefused,
    RowCheck,
    check_rows,
    csv_offsets,
    open_at,
    open_stream,
    sniff_encoding,
)
from rescue.imports.schemas import (
    RowError,
    RunOut,
    WarningOut,
    WarningSummaryRow,
    WarningTarget,
)
from rescue.imports.tables import (
    ChunkStatus,
    ImportChunk,
    ImportRecord,
    ImportRun,
    ImportWarning,
    RunStatus,
    WarningOutcome,
)
from rescue.imports.templates import ListKind
from rescue.schemas import Page
from rescue.settings import Settings, get_settings
from rescue.users.services import Principal

__all__ = [
    "create_run",
    "execute_run",
    "fail_claimed_chunk",
    "finish_claimed_chunk",
    "get_run",
    "list_warnings",
    "remove_orphan_folders",
    "start_run",
    "sweep_temp_copies",
    "verify",
    "warning_summary",
    "warnings_csv",
]

log = logging.getLogger(__name__)

#: Rows stored, compared and saved as progress in one transaction (a crash loses
#: at most this many rows' work, which the resumed run redoes).
PROGRESS_EVERY = 100
#: Most chunks of an Excel list. A chunk of an Excel file reads past the rows
#: before it (openpyxl cannot seek: 7,300 rows/s on the benchmark machine, so
#: 100 chunks of a 100,000-row list would read 5 million rows, ~11 min of CPU);
#: 10 chunks read 450,000 (~1 min, ~2 % of the list's time with photos). A CSV
#: chunk seeks to its byte offset instead (reading past 100,000 CSV rows takes
#: 0.1 s). Measured with the reader on 100,000 rows (docs/performance.md).
XLSX_MAX_CHUNKS = 10
#: Per-row problems kept on the run (the counts are always complete).
MAX_ERRORS_KEPT = 1000
MEDIA_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _run_out(row: dict[str, Any]) -> RunOut:
    rate = left = None
    if row["status"] == RunStatus.running.value and row["started_at"] is not None:
        elapsed = (clock.now() - row["started_at"]).total_seconds()
        if elapsed > 0 and row["rows_done"]:
            rate = row["rows_done"] / elapsed
            left = max(0, row["total_rows"] - row["rows_done"]) / rate
    return RunOut(
        id=row["id"],
        list_kind=ListKind(row["list_kind"]),
        list_name=row["list_name"],
        station=row["station"],
        filename=row["filename"],
        file_format=row["file_format"],
        encoding=row["encoding"],
        status=RunStatus(row["status"]),
        total_rows=row["total_rows"],
        valid_rows=row["valid_rows"],
        error_rows=row["error_rows"],
        errors=[RowError(**e) for e in _loads(row["errors"])],
        would_create=_loads(row["plan"]) or {"records": row["valid_rows"]},
        rows_done=row["rows_done"],
        warnings_raised=row["warnings_raised"],
        rate_rows_per_s=None if rate is None else round(rate, 2),
        seconds_left=None if left is None else round(left, 1),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        failure_reason=row["failure_reason"],
        created_at=row["created_at"],
        purged_at=row.get("purged_at"),
    )


async def get_run(*, run_id: int, by: Principal | None = None) -> RunOut:
    """A run with its progress: ``rows_done`` and ``warnings_raised`` are summed
    over the run's chunks (each worker job commits its own); rate and time left
    from them and the run's start.

    Raises:
        NotFound: no such run.
        PermissionDenied: ``by`` does not see the run's station (its rows name
            people: the same scoping as cases).
    """
    row = await ImportRun.select().where(ImportRun.id == run_id).first()
    if row is None:
        raise NotFound(_("import run {run_id} does not exist", run_id=run_id))
    if by is not None and not by.sees_station(row["station"]):
        raise PermissionDenied(_("the run belongs to another station"))
    return _run_out((await with_chunk_progress([row]))[0])


def _refuse(exc: FileRefused) -> InvalidInput:
    return InvalidInput(
        _("the file cannot be imported: {reason}", reason=exc.reason),
        accepted=exc.detail.get("accepted")
        or {"formats": ["CSV (UTF-8, UTF-8 with BOM, GBK)", "Excel .xlsx"]},
    )


def _as_file(data: bytes | IO[bytes]) -> IO[bytes]:
    return io.BytesIO(data) if isinstance(data, bytes | bytearray) else data


def _file_size(fh: IO[bytes]) -> int:
    size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    return size


async def create_run(
    *,
    kind: ListKind,
    list_name: str,
    filename: str,
    data: bytes | IO[bytes],
    station: str,
    by: Principal | None,
    store: ObjectStore,
    max_bytes: int,
    photos: bytes | IO[bytes] | None = None,
    chunk_rows: int | None = None,
) -> RunOut:
    """Dry run: read and check every row; store the file and the run's findings.

    The rows are cut into chunks of ``chunk_rows`` rows (default
    ``IMPORT_CHUNK_ROWS``; an Excel file into at most :data:`XLSX_MAX_CHUNKS`),
    one worker job each (:class:`ImportChunk`); for a CSV
    file the byte offset of each chunk's first row is kept, so that a worker
    seeks to it instead of reading the rows before it (one more pass over the
    file at the C CSV parser's speed, :func:`rescue.imports.reader.csv_offsets`).

    ``data`` and ``photos`` are open, seekable binary files (an upload's spooled
    temporary file, a file on disk) or bytes. The file is streamed, as the run
    reads it: its encoding is told by decoding it chunk by chunk
    (:func:`rescue.imports.reader.sniff_encoding`), rows are read one at a time,
    the keys seen so far (duplicates within the file) are kept on disk, the
    per-row problems kept are the first :data:`MAX_ERRORS_KEPT` (counts are
    complete), and the file and the ZIP are copied to the object store part by
    part; memory does not grow with the file (bench/imports.py measures it).

    ``by`` is None for the command line (``rescue import``). ``photos``: a ZIP of
    the photos the 照片 column names (rescue.imports.photos); every row's photo
    (in the ZIP or a URL into this service's object store) is checked like an
    upload, and a row whose photo fails is a problem of that row (left out).

    Raises:
        InvalidInput: empty, undecodable (neither UTF-8 nor GBK), broken Excel,
            or a header with unknown or missing columns (400; no run is made).
        PayloadTooLarge: over ``max_bytes``.
    """
    if kind == ListKind.backlog:
        raise InvalidInput(
            _("a backlog of the station's own residents is loaded with POST /api/backlog-runs"),
            accepted=[k.value for k in ListKind if k != ListKind.backlog],
        )
    fh = _as_file(data)
    zipped = None if photos is None else _as_file(photos)
    for part in (fh, zipped):
        size = 0 if part is None else _file_size(part)
        if size > max_bytes:
            raise PayloadTooLarge(
                _("the file is {size} bytes; the limit is {limit}", size=size, limit=max_bytes)
            )
    if zipped is not None and not _file_size(zipped):
        zipped = None  # an empty photos field: no ZIP
    settings = get_settings()
    try:
        source = PhotoSource(zipped, store=store, storage=settings.storage, limits=settings.upload)
    except PhotoProblem as exc:
        raise InvalidInput(exc.reason, accepted={"photos": "a ZIP of JPEG/PNG photos"}) from exc
    total = valid = error_rows = 0
    errors: list[dict[str, Any]] = []  # the first MAX_ERRORS_KEPT
    bad = array("l")  # every problem row's number, for the run to skip
    chunk_rows = chunk_rows or settings.upload.import_chunk_rows
    starts: dict[int, str] = {}  # each chunk's first row → its 外部编号
    opened = None
    try:
        opened = open_stream(fh, encoding=sniff_encoding(fh))
        for check in check_rows(kind, opened):
            if total % chunk_rows == 0:
                starts[check.row] = check.fields.get("external_id", "")
            total += 1
            if not check.errors and check.fields.get("photo"):
                try:
                    await source.read(check.fields["photo"])
                except PhotoProblem as exc:
                    check.errors.append(("photo", exc.reason))
            if check.errors:
                error_rows += 1
                bad.append(check.row)
                errors.extend(
                    {"row": check.row, "column": col, "reason": why}
                    for col, why in check.errors[: max(0, MAX_ERRORS_KEPT - len(errors))]
                )
            else:
                valid += 1
    except FileRefused as exc:
        raise _refuse(exc) from exc
    except UnicodeDecodeError as exc:  # a bad byte after the part used for detection
        raise _refuse(
            FileRefused(_("undecodable bytes at position {position}", position=exc.start))
        ) from exc
    except Exception as exc:  # a CSV/Excel structure the readers reject (e.g. NUL bytes)
        raise _refuse(
            FileRefused(
                _("unreadable file ({error}: {detail})", error=type(exc).__name__, detail=exc)
            )
        ) from exc
    finally:
        source.close()
        if opened is not None:
            opened.release()  # the caller's file stays open
    assert opened is not None  # set, or the try raised
    if opened.file_format == "xlsx" and len(starts) > XLSX_MAX_CHUNKS:
        every = -(-len(starts) // XLSX_MAX_CHUNKS)  # fewer, larger chunks
        starts = {row: starts[row] for row in sorted(starts)[::every]}
    offsets: dict[int, int] | None = None
    if opened.file_format == "csv":
        offsets = await anyio.to_thread.run_sync(
            lambda: csv_offsets(fh, encoding=opened.encoding, fields=opened.fields, starts=starts)
        )
    key = new_object_key("imports", opened.file_format)
    fh.seek(0)
    digest = hashlib.sha256()
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
    sha256 = digest.hexdigest()
    await store.aput_file(key, fh, MEDIA_TYPES[opened.file_format])
    if zipped is not None:
        await store.aput_file(photos_key(key), zipped, "application/zip")
    # Rows are numbered in order, so ``bad`` is sorted (no set needed).
    await store.aput(skip_key(key), json.dumps(bad.tolist()).encode(), "application/json")
    rows = await ImportRun.insert(
        ImportRun(
            list_kind=kind.value,
            list_name=list_name,
            station=station,
            filename=filename[:300],
            object_key=key,
            file_sha256=sha256,
            file_format=opened.file_format,
            encoding=opened.encoding,
            status=RunStatus.checked.value,
            total_rows=total,
            valid_rows=valid,
            error_rows=error_rows,
            errors=errors,
            created_by=by.user_id if by is not None else None,
        )
    ).returning(ImportRun.id)
    run_id = int(rows[0]["id"])
    firsts = sorted(starts)
    if firsts:
        await ImportChunk.insert(
            *[
                ImportChunk(
                    run=run_id,
                    chunk_no=no,
                    chunk_key=f"{run_id}:{no}",
                    first_row=first,
                    last_row=firsts[no + 1] - 1 if no + 1 < len(firsts) else None,
                    byte_offset=None if offsets is None else offsets.get(first),
                    first_id=starts[first][:100],
                    row_done=first - 1,
                )
                for no, first in enumerate(firsts)
            ]
        )
    return await get_run(run_id=run_id)


async def start_run(
    *,
    run_id: int,
    enqueue: Callable[[int, int | None], Awaitable[None]],
    by: Principal | None = None,
) -> RunOut:
    """Start a dry-run-checked run, or resume one that stopped (running or failed).

    ``enqueue(run_id, chunk_no)`` queues one worker job per chunk that no job is
    working on, so that the worker processes share the list; each goes on after
    its last committed row. Queued: the ``pending`` chunks (not started, or
    queued earlier and not yet taken), the ``failed`` ones, and the ``running``
    ones whose claim's lease (``IMPORT_LEASE_SECONDS`` after its job's last
    commit, read on :func:`rescue.clock.now`) has run out: their job stopped (a
    worker killed), and their claim is dropped so that a new job can take them
    (:func:`_hand_back`). A chunk running under a live lease is left to its
    job: starting a run that is still running queues only what nobody works
    on, so no chunk is worked on twice at once; the answer is the run as it
    is, still ``running``.

    A backlog run (``ListKind.backlog``, rescue.backlog.services.execute_run) is
    one chunk (chunk 0, all its rows) done whole by one job under the same
    claim and lease, which every loaded row renews: it is queued as
    ``enqueue(run_id, None)`` under the same rules (checked, failed, or its job
    silent for longer than the lease), and not while its job is loading.

    Raises:
        NotFound: no such run.
        PermissionDenied: ``by`` does not see the run's station.
        Conflict: the run is already done, or its list was deleted under the
            retention rules (``purged_at``; rescue.retention).
    """
    run = await get_run(run_id=run_id, by=by)
    if run.purged_at is not None:
        raise Conflict(
            _(
                "the list of import run {run_id} was deleted under the retention rules; "
                "upload it again to run it",
                run_id=run_id,
            ),
            accepted={"purged_at": [None]},
        )
    if run.status == RunStatus.done:
        raise Conflict(
            _("import run {run_id} is already done", run_id=run_id),
            accepted={"status": ["checked", "running", "failed"]},
        )
    now = clock.now()
    await ImportRun.update(
        {
            ImportRun.status: RunStatus.running.value,
            ImportRun.started_at: run.started_at or now,
            ImportRun.failure_reason: "",
            ImportRun.updated_at: now,
        }
    ).where(ImportRun.id == run_id)
    await _ensure_chunks(run_id)
    await _hand_back(run_id, now)
    free = (
        await ImportChunk.select(ImportChunk.chunk_no)
        .where((ImportChunk.run == run_id) & (ImportChunk.status == ChunkStatus.pending.value))
        .order_by(ImportChunk.chunk_no)
    )
    whole = run.list_kind == ListKind.backlog  # its one chunk: the whole run
    for row in free:
        await enqueue(run_id, None if whole else int(row["chunk_no"]))
    if not await ImportChunk.exists().where(
        (ImportChunk.run == run_id) & (ImportChunk.status != ChunkStatus.done.value)
    ):  # every chunk done but the run not marked (a crash between)
        await _finish_run(run_id)
    return await get_run(run_id=run_id)


async def _hand_back(run_id: int, now: datetime) -> None:
    """Make ``pending`` again (claim dropped) the run's chunks no live job works
    on: ``failed``, or ``running`` with the lease run out before ``now``.

    A chunk whose row a job holds locked in an open transaction (a backlog row
    being loaded, rescue.backlog.services) is skipped (``SKIP LOCKED``): its job
    is alive, and waiting for it would hold the request for the row's time, or
    deadlock with it (the job locks the chunk, then the run; a request here
    has updated the run already). On SQLite a write holds the whole database:
    nothing to skip."""
    stale = (ImportChunk.run == run_id) & (
        (ImportChunk.status == ChunkStatus.failed.value)
        | (
            (ImportChunk.status == ChunkStatus.running.value)
            & (ImportChunk.lease_until.is_null() | (ImportChunk.lease_until < now))
        )
    )
    async with ImportChunk._meta.db.transaction():
        query = ImportChunk.select(ImportChunk.id).where(stale)
        if isinstance(ImportChunk._meta.db, PostgresEngine):
            query = query.lock_rows("UPDATE", skip_locked=True)
        ids = [int(r["id"]) for r in await query]
        if not ids:
            return
        await ImportChunk.update(
            {
                ImportChunk.status: ChunkStatus.pending.value,
                ImportChunk.claim: "",
                ImportChunk.lease_until: None,
                ImportChunk.failure_reason: "",
                ImportChunk.updated_at: now,
            }
        ).where(ImportChunk.id.is_in(ids) & stale)


async def _ensure_chunks(run_id: int) -> None:
    """A run checked before runs had chunks, or a backlog run (rescue.backlog:
    the dry run makes none), gets one chunk (0) for all its rows, going on
    after the run's saved row."""
    if await ImportChunk.exists().where(ImportChunk.run == run_id):
        return
    run = await ImportRun.select(ImportRun.rows_done).where(ImportRun.id == run_id).first()
    assert run is not None
    await ImportChunk.insert(
        ImportChunk(
            run=run_id,
            chunk_no=0,
            chunk_key=f"{run_id}:0",
            first_row=1,
            last_row=None,
            row_done=int(run["rows_done"]),
            rows_done=int(run["rows_done"]),
        )
    ).on_conflict(target=ImportChunk.chunk_key, action="DO NOTHING")


async def _chunk_sums(run_ids: list[int]) -> dict[int, tuple[int, int]]:
    """run → (rows done, warnings raised), summed over its chunks."""
    if not run_ids:
        return {}
    rows = await ImportChunk.select(
        ImportChunk.run, ImportChunk.rows_done, ImportChunk.warnings_raised
    ).where(ImportChunk.run.is_in(run_ids))
    sums: dict[int, tuple[int, int]] = {}
    for r in rows:
        done, raised = sums.get(int(r["run"]), (0, 0))
        sums[int(r["run"])] = (done + int(r["rows_done"]), raised + int(r["warnings_raised"]))
    return sums


async def with_chunk_progress(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs (rows of ``import_runs``) with ``rows_done`` and ``warnings_raised``
    summed over their chunks (a run without chunks, a backlog run: its own)."""
    sums = await _chunk_sums([int(r["id"]) for r in rows])
    out = []
    for r in rows:
        if int(r["id"]) in sums:
            done, raised = sums[int(r["id"])]
            r = {**r, "rows_done": done, "warnings_raised": raised}
        out.append(r)
    return out


def pair_key(run: dict[str, Any], fields: dict[str, str], hit: Hit) -> str:
    """The warning's unique key: (list kind, external id, target)."""
    target = hit.target
    return f"{run['list_kind']}:{fields['external_id']}|{target.kind}:{target.id}"[:300]


async def _raise_warning(
    run: dict[str, Any], record_id: int, fields: dict[str, str], hit: Hit
) -> bool:
    """Create the pair's warning or add new evidence to it. True if (re)raised."""
    target = hit.target
    key = pair_key(run, fields, hit)
    now = clock.now()
    created = (
        await ImportWarning.insert(
            ImportWarning(
                run=run["id"],
                record=record_id,
                list_kind=run["list_kind"],
                list_name=run["list_name"],
                external_id=fields["external_id"],
                case=target.id if target.kind == "case" else None,
                notice=target.id if target.kind == "notice" else None,
                station=target.station or run["station"],
                pair_key=key,
                evidence=hit.evidence,
                explanation=hit.explanation,
                score=hit.score,
                raised_at=now,
                updated_at=now,
            )
        )
        .on_conflict(target=ImportWarning.pair_key, action="DO NOTHING")
        .returning(ImportWarning.id)
    )
    if created:
        return True
    row = await ImportWarning.select().where(ImportWarning.pair_key == key).first()
    assert row is not None
    if row["run"] == run["id"] or set(hit.evidence) <= set(_loads(row["evidence"])):
        return False  # the same evidence (or this run's own resumed row): not raised again
    changes: dict[Any, Any] = {
        ImportWarning.evidence: sorted(set(_loads(row["evidence"])) | set(hit.evidence)),
        ImportWarning.explanation: hit.explanation,
        ImportWarning.score: max(row["score"], hit.score),
        ImportWarning.run: run["id"],
        ImportWarning.record: record_id,
        ImportWarning.updated_at: now,
    }
    if row["outcome"] in {WarningOutcome.not_same.value, WarningOutcome.no_action.value}:
        changes.update({ImportWarning.outcome: None, ImportWarning.raised_at: now})
    await ImportWarning.update(changes).where(ImportWarning.id == row["id"])
    return True


class InjectedFailure(RuntimeError):
    """Raised by :func:`execute_run` when asked to fail after some batches (tests)."""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


async def execute_run(
    *,
    run_id: int,
    store: ObjectStore,
    chunk_no: int | None = None,
    stop_after: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = PROGRESS_EVERY,
    fail_after_batches: int | None = None,
    after_batch: Callable[[], Awaitable[None]] | None = None,
) -> RunOut:
    """Store and compare the valid rows of one chunk of the run (``chunk_no``, a
    worker job), or of every unfinished chunk in order (``chunk_no`` None: the
    command line, or a job queued before runs had chunks).

    A job works on a chunk only under its claim: it claims the chunk if no job
    works on it (``pending``, or ``failed``: a retry), in one statement, so a
    chunk queued twice (start clicked twice, a message delivered again) is done
    by one job while the other ends at once. Every commit of the chunk's
    progress renews the claim's lease (``IMPORT_LEASE_SECONDS``) and is made
    only while the claim is still the job's: once a resumed run gave a chunk
    whose lease ran out to another job (:func:`start_run`), the first job's
    next commit is rolled back and it leaves the chunk (at most one batch's
    work done twice, and nothing stored twice).

    A chunk's rows are read from the list file (copied once per worker process
    from the object store to a temporary file, :class:`_RunFiles`) from the
    chunk's byte offset (CSV) or by reading past the rows before it (Excel):
    memory holds one batch of rows, not the file. Each batch of ``batch_size``
    rows is committed with the chunk's progress in one transaction. The run is
    done when its last chunk is.

    Args:
        stop_after: stop (as a crash would) after this many rows of this call;
            the chunk stays ``running`` under its claim until the lease runs
            out, then a resumed run queues it and it goes on where it stopped.
        on_progress: called with (rows_done, total_rows) at each save (CLI bar);
            rows_done is summed over the run's chunks.
        batch_size: rows per transaction (default :data:`PROGRESS_EVERY`).
        fail_after_batches: raise :class:`InjectedFailure` right after this many
            batches of this call were committed (a deterministic crash for tests);
            the chunk and the run are then ``failed`` and resume from the chunk's
            last committed row.
        after_batch: awaited after each committed batch of this call (tests:
            something happens while the job is in the middle of a chunk).

    Idempotent: rows up to a chunk's ``row_done`` are skipped; a row done twice
    (a crash between its work and the next save, or a job that lost its claim)
    stores nothing new (unique ``row_key`` and ``pair_key``). A run whose list
    was purged by the retention run (a job queued before) does nothing.
    """
    run = await ImportRun.select().where(ImportRun.id == run_id).first()
    if run is None:
        raise NotFound(_("import run {run_id} does not exist", run_id=run_id))
    if run["status"] == RunStatus.done.value or run["purged_at"] is not None:
        return await get_run(run_id=run_id)  # a job queued before the run was purged
    if run["list_kind"] == ListKind.backlog.value:  # the station's own residents
        from rescue.backlog.services import execute_run as execute_backlog

        return await execute_backlog(
            run_id=run_id, store=store, stop_after=stop_after, on_progress=on_progress
        )
    await _ensure_chunks(run_id)
    where = (ImportChunk.run == run_id) & (ImportChunk.status != ChunkStatus.done.value)
    if chunk_no is not None:
        where &= ImportChunk.chunk_no == chunk_no
    chunks = await ImportChunk.select().where(where).order_by(ImportChunk.chunk_no)
    budget = _Budget(stop_after, fail_after_batches, after_batch)
    progress = None
    if on_progress is not None:
        sums = await _chunk_sums([run_id])
        others = sums.get(run_id, (0, 0))[0] - sum(int(c["rows_done"]) for c in chunks)
        progress = _Progress(on_progress, int(run["total_rows"]), others)
    for chunk in chunks:
        finished = await _execute_chunk(
            run, int(chunk["chunk_no"]), store, budget, progress, batch_size
        )
        if not finished:
            return await get_run(run_id=run_id)
    await _finish_run(run_id)
    if on_progress is not None:
        out = await get_run(run_id=run_id)
        on_progress(out.rows_done, out.total_rows)
    return await get_run(run_id=run_id)


@dataclass
class _Budget:
    """How far one call may go (tests' crashes): rows and committed batches; what
    a test does after each committed batch."""

    stop_after: int | None
    fail_after_batches: int | None
    after_batch: Callable[[], Awaitable[None]] | None = None
    rows: int = 0
    batches: int = 0


@dataclass
class _Progress:
    """Reports the run's rows done (the other chunks' + this call's) to the CLI."""

    report: Callable[[int, int], None]
    total: int
    others: int
    mine: dict[int, int] = field(default_factory=dict)

    def __call__(self, chunk_no: int, rows_done: int) -> None:
        self.mine[chunk_no] = rows_done
        self.report(self.others + sum(self.mine.values()), self.total)


class ClaimLost(RuntimeError):
    """The chunk's claim is no longer this job's: its lease ran out and a resumed
    run gave the chunk to another job (:func:`start_run`). The batch being
    committed is rolled back and this job leaves the chunk to the other."""


def _lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=get_settings().upload.import_lease_seconds)


async def _claim(run_id: int, no: int) -> dict[str, Any] | None:
    """Claim chunk ``no`` of the run for this job if no job works on it (``pending``,
    or ``failed``: a retry); the chunk as claimed (its ``claim`` token), or None
    when another job has it or it is done. One statement: of two jobs given the
    same chunk at once, one claims it."""
    now = clock.now()
    claimed = (
        await ImportChunk.update(
            {
                ImportChunk.status: ChunkStatus.running.value,
                ImportChunk.claim: secrets.token_hex(16),
                ImportChunk.lease_until: _lease_until(now),
                ImportChunk.worked_by: _worker_name(),
                ImportChunk.failure_reason: "",
                ImportChunk.updated_at: now,
            }
        )
        .where(
            (ImportChunk.run == run_id)
            & (ImportChunk.chunk_no == no)
            & ImportChunk.status.is_in([ChunkStatus.pending.value, ChunkStatus.failed.value])
        )
        .returning(ImportChunk.id)
    )
    if not claimed:
        return None
    chunk = await ImportChunk.select().where(ImportChunk.id == claimed[0]["id"]).first()
    assert chunk is not None
    if chunk["started_at"] is None:
        await ImportChunk.update({ImportChunk.started_at: now}).where(ImportChunk.id == chunk["id"])
    return {**chunk, "started_at": chunk["started_at"] or now}


async def _renew(state: _ChunkState, changes: dict[Any, Any] | None = None) -> None:
    """Renew the chunk's lease (with ``changes`` to the chunk, e.g. its progress) if
    its claim is still this job's; else :class:`ClaimLost` (inside a transaction:
    rolled back with it)."""
    now = clock.now()
    renewed = (
        await ImportChunk.update(
            {
                ImportChunk.lease_until: _lease_until(now),
                ImportChunk.updated_at: now,
                **(changes or {}),  # e.g. the lease ended with the chunk done
            }
        )
        .where((ImportChunk.id == state.chunk_id) & (ImportChunk.claim == state.claim))
        .returning(ImportChunk.id)
    )
    if not renewed:
        raise ClaimLost(f"chunk {state.chunk_no}: claimed by another job")


async def _execute_chunk(
    run: dict[str, Any],
    chunk_no: int,
    store: ObjectStore,
    budget: _Budget,
    progress: _Progress | None,
    batch_size: int,
) -> bool:
    """Claim chunk ``chunk_no`` (:func:`_claim`) and do it from its last committed
    row. False if stopped (``stop_after``: the chunk stays ``running`` under its
    claim, as after a crash). A chunk another job has claimed is left to it
    (True: nothing to do here); so is one whose claim this job loses meanwhile
    (:class:`ClaimLost`)."""
    run_id, no = int(run["id"]), chunk_no
    chunk = await _claim(run_id, no)
    if chunk is None:
        log.info("import run %s chunk %s: another job has it or it is done", run_id, no)
        return True
    # A failed chunk retried (Dramatiq's retry, or resumed): the run runs again
    # unless another chunk is still failed.
    if run["status"] == RunStatus.failed.value and not await ImportChunk.exists().where(
        (ImportChunk.run == run_id)
        & (ImportChunk.status == ChunkStatus.failed.value)
        & (ImportChunk.chunk_no != no)
    ):
        await ImportRun.update(
            {ImportRun.status: RunStatus.running.value, ImportRun.failure_reason: ""}
        ).where((ImportRun.id == run_id) & (ImportRun.status == RunStatus.failed.value))
    state = _ChunkState(
        chunk_no=no,
        chunk_id=int(chunk["id"]),
        claim=str(chunk["claim"]),
        row_done=int(chunk["row_done"]),
        rows_done=int(chunk["rows_done"]),
        raised=int(chunk["warnings_raised"]),
    )
    last_row = chunk["last_row"]
    try:
        async with _RunFiles.open(run["object_key"], store) as (list_path, zip_path):
            with contextlib.ExitStack() as stack:
                index = await _target_index(run_id)
                faces = _FaceSearch.open(zip_path, store, stack, object_key=run["object_key"])
                skip = await _skipped_rows(run["object_key"], store)
                # The list and its photos fetched (minutes for a ZIP of gigabytes): still ours?
                await _renew(state)
                fh = stack.enter_context(list_path.open("rb"))
                rows = _chunk_rows(run, chunk, fh, duplicates=skip is None, stack=stack)
                batch: list[RowCheck] = []
                for check in rows:
                    if last_row is not None and check.row > last_row:
                        break
                    if check.row <= state.row_done:
                        continue
                    if skip is not None and check.row in skip and not check.errors:
                        check.errors.append(("", "a problem row of the dry run"))
                    batch.append(check)
                    budget.rows += 1
                    stopping = budget.stop_after is not None and budget.rows >= budget.stop_after
                    if len(batch) >= batch_size or stopping:
                        await _flush(run, state, batch, index, faces)
                        batch = []
                        budget.batches += 1
                        if progress is not None:
                            progress(no, state.rows_done)
                        if budget.after_batch is not None:
                            await budget.after_batch()
                        if (
                            budget.fail_after_batches is not None
                            and budget.batches >= budget.fail_after_batches
                        ):
                            raise InjectedFailure(
                                f"injected failure after {budget.batches} batch(es)"
                            )
                    if stopping:
                        return False
                if batch:
                    await _flush(run, state, batch, index, faces)
                    if progress is not None:
                        progress(no, state.rows_done)
        await finish_claimed_chunk(state, clock.now())
    except ClaimLost:
        log.warning(
            "import run %s chunk %s: its lease ran out and another job took it; "
            "this job leaves it (its last batch rolled back)",
            run_id,
            no,
        )
        return True
    except Exception as exc:
        await fail_claimed_chunk(run_id, state, exc, run_reason=f"chunk {no}: ")
        raise
    if await _finish_run(run_id):
        await _RunFiles.release(run["object_key"])
    return True


async def _finish_run(run_id: int) -> bool:
    """Mark the run done once every chunk is (called after each chunk: the last
    one to finish sees none left), with its totals summed over the chunks.
    True if every chunk is done."""
    if await ImportChunk.exists().where(
        (ImportChunk.run == run_id) & (ImportChunk.status != ChunkStatus.done.value)
    ):
        return False
    done, raised = (await _chunk_sums([run_id])).get(run_id, (0, 0))
    await ImportRun.update(
        {
            ImportRun.rows_done: done,
            ImportRun.warnings_raised: raised,
            ImportRun.status: RunStatus.done.value,
            ImportRun.failure_reason: "",
            ImportRun.finished_at: clock.now(),
            ImportRun.updated_at: clock.now(),
        }
    ).where((ImportRun.id == run_id) & (ImportRun.status != RunStatus.done.value))
    return True


def _chunk_rows(
    run: dict[str, Any],
    chunk: dict[str, Any],
    fh: IO[bytes],
    *,
    duplicates: bool,
    stack: contextlib.ExitStack,
) -> Iterator[RowCheck]:
    """The checked rows of the list file from the chunk's first row on (to the end
    of the file: the caller stops at ``last_row``).

    A CSV chunk with a byte offset is read from there (its first row checked
    against ``first_id``; on a mismatch the file is read from the start
    instead); otherwise the rows before the chunk are read past without checks
    (the Excel reader cannot seek).
    """
    kind = ListKind(run["list_kind"])
    first = int(chunk["first_row"])
    # The dry run told the encoding from the whole file (run["encoding"]).
    opened = open_stream(fh, encoding=run["encoding"] or None)
    stack.callback(lambda: opened.close())
    if chunk["byte_offset"] is not None and opened.file_format == "csv" and first > 1:
        at = open_at(fh, opened, int(chunk["byte_offset"]))
        rows = check_rows(kind, at, duplicates=False, first_row=first)
        head = next(rows, None)
        if (
            head is not None
            and head.row == first
            and head.fields.get("external_id", "") == chunk["first_id"]
        ):
            stack.callback(at.close)
            yield head
            yield from rows
            return
        at.release()  # the offset does not hold (a changed file?): read from the start
        fh.seek(0)
        opened = open_stream(fh, encoding=run["encoding"] or None)
        stack.callback(opened.close)
    for _skipped in itertools.islice(opened.rows, first - 1):
        pass
    yield from check_rows(kind, opened, duplicates=duplicates and first == 1, first_row=first)


#: Seconds a worker process reuses a run's index of the people in care and the
#: open notices for the run's next chunks before building it again. Building it
#: took 0.9 s at 10,000 open notices and 9.5 s at 100,000 (docs/performance.md,
#: issue 13): once per chunk of 1,000 rows that was ~12 % of the chunk's time.
#: Before chunks a run built it once and used it to its end (hours).
INDEX_MAX_AGE_SECONDS = 300.0
_indexes: dict[int, tuple[float, TargetIndex]] = {}
_loop_locks: dict[tuple[int, str], asyncio.Lock] = {}


def _loop_lock(name: str) -> asyncio.Lock:
    """A lock of the running event loop (a process may run several loops in turn:
    the command line, tests; an asyncio lock must not outlive its loop)."""
    key = (id(asyncio.get_running_loop()), name)
    if key not in _loop_locks:
        if len(_loop_locks) > 64:
            _loop_locks.clear()
        _loop_locks[key] = asyncio.Lock()
    return _loop_locks[key]


async def _target_index(run_id: int) -> TargetIndex:
    """This process's index for the run (:data:`INDEX_MAX_AGE_SECONDS`).

    Not refreshed row by row like the face galleries: those follow an
    append-only table of faces, while a person leaves care or a notice closes
    by an update whose time (``updated_at``) is written by the application,
    not the database, so "what changed since" cannot be asked reliably. A
    rebuild every few minutes keeps the comparison at most that stale (a run
    used to keep its index for hours)."""
    async with _loop_lock("index"):
        now = time.monotonic()
        held = _indexes.get(run_id)
        if held is not None and now - held[0] < INDEX_MAX_AGE_SECONDS:
            return held[1]
        index = await TargetIndex.build()
        _indexes.clear()  # one run's index at a time (a process takes one chunk at a time)
        _indexes[run_id] = (time.monotonic(), index)
        return index


@dataclass
class _ChunkState:
    """A chunk's committed progress, carried from batch to batch, and the claim
    it is done under."""

    chunk_no: int
    chunk_id: int
    claim: str
    row_done: int
    rows_done: int
    raised: int


#: Name of a worker process's private folder of run copies: this, its pid, "-",
#: and random letters (tempfile), under the system's temporary directory.
_TEMP_PREFIX = "rescue-import-"


def remove_orphan_folders(parent: Path | None = None) -> list[Path]:
    """Delete the run-copy folders (:data:`_TEMP_PREFIX`) under ``parent`` (default:
    the system's temporary directory) of worker processes that no longer run: a
    process killed, or ended past ``WORKER_STOP_SECONDS``, skips its own clean-up,
    and its folder holds other departments' lists and photos (docs/privacy.md).

    Only folders of this user named with a pid are touched, and only when no
    process has that pid (a pid taken again by a new process keeps the folder
    until that one ends, never the other way round). Returns the folders deleted.
    """
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for folder in parent.glob(f"{_TEMP_PREFIX}*-*"):
        pid_text = folder.name[len(_TEMP_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:  # nobody has that pid: its owner is gone
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except OSError:  # alive under another user, or the folder vanished
            continue
    return removed


async def finish_claimed_chunk(state: _ChunkState, now: datetime) -> None:
    """A job's chunk (a backlog run's one chunk, too) ends ``done`` at ``now``, its
    claim released. Raises ClaimLost if the claim is no longer this job's."""
    await _renew(
        state,
        {
            ImportChunk.status: ChunkStatus.done.value,
            ImportChunk.claim: "",
            ImportChunk.lease_until: None,
            ImportChunk.finished_at: now,
        },
    )


async def fail_claimed_chunk(
    run_id: int, state: _ChunkState, exc: BaseException, *, run_reason: str = ""
) -> None:
    """A job's chunk (a backlog run's one chunk, too) ends ``failed`` with ``exc`` as
    its reason and its claim released, and the run with it (``run_reason`` before
    the reason, e.g. "chunk 3: "): only while the claim is still this job's (not
    handed on to another job after its lease ran out)."""
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    failed = (
        await ImportChunk.update(
            {
                ImportChunk.status: ChunkStatus.failed.value,
                ImportChunk.claim: "",
                ImportChunk.lease_until: None,
                ImportChunk.failure_reason: reason,
                ImportChunk.updated_at: clock.now(),
            }
        )
        .where((ImportChunk.id == state.chunk_id) & (ImportChunk.claim == state.claim))
        .returning(ImportChunk.id)
    )
    if failed:
        await ImportRun.update(
            {
                ImportRun.status: RunStatus.failed.value,
                ImportRun.failure_reason: f"{run_reason}{reason}"[:2000],
                ImportRun.updated_at: clock.now(),
            }
        ).where(ImportRun.id == run_id)


class _RunFiles:
    """The list file and photos ZIP of the runs this process works on, copied from
    the object store to a private temporary folder once per process, not once
    per chunk (a photos ZIP of a full-size list is gigabytes).

    A run's copies are removed (never while a chunk of this process uses them):

    - when the run is done (:meth:`release`, by the job that finished it);
    - when another run's files are fetched (:meth:`_evict`);
    - by :meth:`sweep` (each worker process, every
      ``workers.lifecycle.TEMP_SWEEP_SECONDS``): once unused for
      ``IMPORT_TEMP_IDLE_SECONDS`` on :mod:`rescue.clock` (a failed run that
      may be resumed, a running run whose other chunks other processes do),
      and at once when the run is done (finished by another process), purged
      by the retention run, or gone.

    The copies hold other departments' personal data (PIPL arts. 28-29): an
    idle worker kept a failed run's list and photos until it fetched another
    run's, even after rescue.retention had deleted the run's records and
    objects (docs/privacy.md, "Retention").
    """

    _folder: tempfile.TemporaryDirectory[str] | None = None
    _files: dict[str, tuple[Path, Path | None]] = {}  # noqa: RUF012
    _users: dict[str, int] = {}  # noqa: RUF012
    #: When a chunk of this process last took or let go of each run's copies.
    _last_use: dict[str, datetime] = {}  # noqa: RUF012

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, object_key: str, store: ObjectStore
    ) -> AsyncIterator[tuple[Path, Path | None]]:
        async with _loop_lock(f"files:{object_key}"):
            if object_key not in cls._files:
                cls._evict()
                cls._files[object_key] = await cls._fetch(object_key, store)
            cls._users[object_key] = cls._users.get(object_key, 0) + 1
            cls._last_use[object_key] = clock.now()
        try:
            yield cls._files[object_key]
        finally:
            cls._users[object_key] -= 1
            cls._last_use[object_key] = clock.now()

    @classmethod
    def folder(cls) -> Path:
        """This process's private folder of copies (made on first use), named with
        its pid so that :func:`remove_orphan_folders` knows when it is left behind."""
        if cls._folder is None:
            cls._folder = tempfile.TemporaryDirectory(prefix=f"{_TEMP_PREFIX}{os.getpid()}-")
        return Path(cls._folder.name)

    @classmethod
    async def _fetch(cls, object_key: str, store: ObjectStore) -> tuple[Path, Path | None]:
        base = cls.folder() / hashlib.sha256(object_key.encode()).hexdigest()[:16]
        list_path, zip_path = base.with_suffix(".list"), base.with_suffix(".zip")
        with list_path.open("wb") as fh:
            await store.aget_into(object_key, fh)
        if not await store.aexists(photos_key(object_key)):
            return list_path, None
        with zip_path.open("wb") as fh:
            await store.aget_into(photos_key(object_key), fh)
        return list_path, zip_path

    @classmethod
    async def release(cls, object_key: str) -> None:
        """Remove this process's copies of a run's files once the run is done and
        no chunk in this process uses them: the list and its photos hold other
        departments' personal data, and a finished run needs them no more (the
        object store's copies go by rescue.retention). Without this, an idle
        worker kept its last run's copies until it fetched another run's."""
        async with _loop_lock(f"files:{object_key}"):
            if cls._users.get(object_key, 0) or object_key not in cls._files:
                return
            cls._drop(object_key)

    @classmethod
    async def sweep(cls, *, idle_seconds: float, now: datetime) -> list[str]:
        """Remove the copies no chunk of this process uses that were last used
        ``idle_seconds`` or more before ``now`` (seconds; aware datetime), and
        those of runs done, purged (``purged_at``) or deleted. Copies in use
        are never removed.

        Returns the object keys whose copies were removed. A database that does
        not answer leaves the run-state rule to the next sweep (the idle rule
        needs no database): logged, not raised."""
        unused = [k for k, n in cls._users.items() if n == 0 and k in cls._files]
        if not unused:
            return []
        ended: set[str] = set()
        try:
            live = {
                str(r["object_key"])
                for r in await ImportRun.select(ImportRun.object_key).where(
                    ImportRun.object_key.is_in(unused)
                    & ImportRun.purged_at.is_null()
                    & (ImportRun.status != RunStatus.done.value)
                )
            }
            ended = set(unused) - live
        except Exception:  # the database is down: the idle rule still applies
            log.warning("import temp copies: run states not read; next sweep", exc_info=True)
        removed = []
        for key in unused:
            async with _loop_lock(f"files:{key}"):
                if cls._users.get(key, 0) or key not in cls._files:
                    continue  # a chunk took them up meanwhile, or they went already
                last = cls._last_use.get(key, now)
                if last > now:  # the clock went back: count the idle time from now
                    cls._last_use[key] = last = now
                if key in ended or (now - last).total_seconds() >= idle_seconds:
                    cls._drop(key)
                    removed.append(key)
        return removed

    @classmethod
    def _evict(cls) -> None:
        for key in [k for k, n in cls._users.items() if n == 0]:
            cls._drop(key)

    @classmethod
    def _drop(cls, key: str) -> None:
        """Delete the copies of run ``key`` from disk and forget them (the caller
        checked that no chunk uses them)."""
        for path in cls._files.pop(key, (None, None)):
            if path is not None:
                path.unlink(missing_ok=True)
        cls._users.pop(key, None)
        cls._last_use.pop(key, None)


async def sweep_temp_copies() -> int:
    """Remove this process's temporary copies of import runs' list files and
    photos ZIPs that no chunk uses and that were unused for
    ``IMPORT_TEMP_IDLE_SECONDS`` (on :mod:`rescue.clock`), or whose run is
    done, purged by the retention run or deleted (:meth:`_RunFiles.sweep`).
    Each worker process calls it periodically (workers.lifecycle.TempCopySweep):
    every process holds copies of its own. Also deletes the folders that worker
    processes ended at once left behind (:func:`remove_orphan_folders`). Returns
    how many runs' copies of this process went."""
    removed = await _RunFiles.sweep(
        idle_seconds=get_settings().upload.import_temp_idle_seconds, now=clock.now()
    )
    if removed:
        log.info("import temp copies removed: %s run(s)", len(removed))
    orphans = await anyio.to_thread.run_sync(remove_orphan_folders)
    if orphans:
        log.info("import temp folders of ended worker processes removed: %s", len(orphans))
    return len(removed)


def skip_key(run_object_key: str) -> str:
    """Object key of the dry run's problem row numbers (a JSON list)."""
    return f"{run_object_key}.skip.json"


def row_photo_key(run_object_key: str, row: int) -> str:
    """Object key of row ``row``'s photo, kept when its face is within the matcher's
    threshold of someone (the warning's evidence): verifying the warning ``helped``
    puts it on the new notice, so the reviewer compares the faces. Photos of rows
    that raise nothing are not kept (docs/privacy.md)."""
    return f"{run_object_key}.rows/{row}"


async def _skipped_rows(object_key: str, store: ObjectStore) -> set[int] | None:
    """The dry run's problem rows (None for a run made before they were kept: the
    run then finds duplicates within the file itself)."""
    try:
        return set(json.loads(await store.aget(skip_key(object_key))))
    except ObjectMissing:
        return None


class _FaceSearch:
    """The run's photos (rescue.imports.photos) and the matcher's galleries: a
    row's photo → (kind, id) → face distance of the people within the threshold.

    The galleries are the worker process's own (:func:`rescue.runtime.get_galleries`,
    shared with the photo jobs), refreshed incrementally before each search, not
    loaded again per run or chunk."""

    def __init__(
        self,
        source: PhotoSource | None,
        settings: Settings,
        *,
        object_key: str = "",
        store: ObjectStore | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.object_key = object_key  # the run's list: where kept row photos go
        self.store = store

    @classmethod
    def open(
        cls,
        zip_path: Path | None,
        store: ObjectStore,
        stack: contextlib.ExitStack,
        *,
        object_key: str,
    ) -> _FaceSearch:
        settings = get_settings()
        zipped = None if zip_path is None else stack.enter_context(zip_path.open("rb"))
        source = PhotoSource(zipped, store=store, storage=settings.storage, limits=settings.upload)
        stack.callback(source.close)
        return cls(source, settings, object_key=object_key, store=store)

    async def distances(self, check: RowCheck) -> dict[tuple[str, int], float]:
        """Face distances of the row's photo; a photo that fails makes the row a
        problem row (as in the dry run)."""
        value = check.fields.get("photo")
        if not value or self.source is None:
            return {}
        try:
            data = await self.source.read(value)
        except PhotoProblem as exc:
            check.errors.append(("photo", exc.reason))
            return {}
        encodings = await anyio.to_thread.run_sync(encode_faces, data, self.settings)
        if not encodings:
            return {}
        from rescue.runtime import get_galleries

        galleries: Any = get_galleries()
        threshold = self.settings.matching.threshold
        found: dict[tuple[str, int], float] = {}
        for kind, side in (("case", galleries.cases), ("notice", galleries.notices)):
            gallery = await side.refresh()
            for hit in await anyio.to_thread.run_sync(gallery.search, encodings, threshold):
                found[(kind, hit.owner_id)] = float(hit.distance)
        if found and self.store is not None and self.object_key:
            # Kept before the row's batch commits; a resumed run writes the same key.
            await self.store.aput(
                row_photo_key(self.object_key, check.row), data, "application/octet-stream"
            )
        return found


async def _flush(
    run: dict[str, Any],
    state: _ChunkState,
    batch: list[RowCheck],
    index: TargetIndex,
    faces: _FaceSearch | None = None,
) -> None:
    """Store a batch of rows, raise their warnings and save the chunk's progress
    in one transaction (a crash loses the whole batch or nothing). ``state`` is
    advanced once the transaction committed.

    The warnings of the batch are raised in the order of their pair keys, so two
    chunks (or runs) raising warnings for the same pairs at once take the
    unique index's locks in the same order (no deadlock); the second waits and
    then finds the first's warning (ON CONFLICT DO NOTHING)."""
    run_id = int(run["id"])
    distances = {
        c.row: await faces.distances(c) for c in batch if faces is not None and not c.errors
    }
    valid = [c for c in batch if not c.errors]
    raised = 0
    async with ImportRun._meta.db.transaction():
        if valid:
            await ImportRecord.insert(
                *[
                    ImportRecord(
                        run=run_id,
                        row_number=c.row,
                        row_key=f"{run_id}:{c.row}",
                        external_id=c.fields["external_id"],
                        fields=c.fields,
                    )
                    for c in valid
                ]
            ).on_conflict(target=ImportRecord.row_key, action="DO NOTHING")
            ids = {
                r["row_key"]: int(r["id"])
                for r in await ImportRecord.select(ImportRecord.id, ImportRecord.row_key).where(
                    ImportRecord.row_key.is_in([f"{run_id}:{c.row}" for c in valid])
                )
            }
            hits = [
                (pair_key(run, c.fields, hit), c, hit)
                for c in valid
                for hit in index.hits(c.fields, distances.get(c.row))
            ]
            for _key, c, hit in sorted(hits, key=lambda h: h[0]):
                raised += await _raise_warning(run, ids[f"{run_id}:{c.row}"], c.fields, hit)
        rows_done = state.rows_done + len(batch)
        # Only under the job's claim (else ClaimLost rolls the batch back).
        await _renew(
            state,
            {
                ImportChunk.row_done: batch[-1].row,
                ImportChunk.rows_done: rows_done,
                ImportChunk.warnings_raised: state.raised + raised,
            },
        )
    state.row_done, state.rows_done, state.raised = batch[-1].row, rows_done, state.raised + raised


def _age_days(raised_at: datetime) -> int:
    return max(0, (clock.today() - clock.local_date(raised_at)).days)


async def _warning_outs(rows: list[dict[str, Any]]) -> list[WarningOut]:
    records = {
        int(r["id"]): _loads(r["fields"])
        for r in (
            await ImportRecord.select(ImportRecord.id, ImportRecord.fields).where(
                ImportRecord.id.is_in([int(w["record"]) for w in rows])
            )
            if rows
            else []
        )
    }
    outs = []
    for w in rows:
        kind, target_id = ("case", w["case"]) if w["case"] is not None else ("notice", w["notice"])
        outs.append(
            WarningOut(
                id=w["id"],
                run_id=w["run"],
                list_kind=w["list_kind"],
                list_name=w["list_name"],
                external_id=w["external_id"],
                record=records.get(int(w["record"]), {}),
                target=WarningTarget(kind=kind, id=target_id, link=f"/api/{kind}s/{target_id}"),
                station=w["station"],
                evidence=list(_loads(w["evidence"])),
                explanation=explain(list(_loads(w["evidence"]))),
                score=w["score"],
                outcome=WarningOutcome(w["outcome"]) if w["outcome"] else None,
                note=w["note"],
                raised_at=w["raised_at"],
                verified_at=w["verified_at"],
                age_days=_age_days(w["raised_at"]),
                candidate_id=w["candidate_id"],
            )
        )
    return outs


def _where(
    *,
    list_name: str | None,
    station: str | None,
    outcome: str | None,
    stations: list[str] | None,
    min_age_days: int | None = None,
) -> Any:
    where: Any = ImportWarning.id > 0
    if min_age_days is not None and min_age_days > 0:
        # age_days >= n  <=>  raised on or before the station day today - n.
        cutoff = clock.today() - timedelta(days=min_age_days - 1)
        where &= ImportWarning.raised_at < clock.start_of_local_day(cutoff)
    if list_name:
        where &= ImportWarning.list_name == list_name
    if station:
        where &= ImportWarning.station == station
    if outcome == "open":
        where &= ImportWarning.outcome.is_null()
    elif outcome:
        where &= ImportWarning.outcome == outcome
    if stations is not None:
        where &= ImportWarning.station.is_in(stations or [""])
    return where


async def list_warnings(
    *,
    limit: int,
    offset: int,
    stations: list[str] | None,
    list_name: str | None = None,
    station: str | None = None,
    outcome: str | None = None,
    min_age_days: int | None = None,
) -> Page[WarningOut]:
    """Warnings, oldest open first (``outcome``: open or a WarningOutcome value);
    only those of ``stations`` (None: all); ``min_age_days``: raised at least that
    many station days ago (``age_days`` >= n)."""
    where = _where(
        list_name=list_name,
        station=station,
        outcome=outcome,
        stations=stations,
        min_age_days=min_age_days,
    )
    rows = (
        await ImportWarning.select()
        .where(where)
        .order_by(ImportWarning.raised_at)
        .order_by(ImportWarning.id)
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=await _warning_outs(rows),
        total=await ImportWarning.count().where(where),
        limit=limit,
        offset=offset,
    )


async def warning_summary(
    *, stations: list[str] | None, list_name: str | None = None, station: str | None = None
) -> list[WarningSummaryRow]:
    """Counts per (list, station): raised, open, verified and each outcome."""
    where = _where(list_name=list_name, station=station, outcome=None, stations=stations)
    rows = await ImportWarning.select(
        ImportWarning.list_name, ImportWarning.station, ImportWarning.outcome
    ).where(where)
    table: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        counts = table.setdefault((r["list_name"], r["station"]), {})
        counts["raised"] = counts.get("raised", 0) + 1
        name = r["outcome"] or "open"
        counts[name] = counts.get(name, 0) + 1
    return [
        WarningSummaryRow(
            list_name=ln,
            station=st,
            raised=c.get("raised", 0),
            open=c.get("open", 0),
            verified=c.get("raised", 0) - c.get("open", 0),
            helped=c.get("helped", 0),
            already_known=c.get("already_known", 0),
            not_same=c.get("not_same", 0),
            no_action=c.get("no_action", 0),
        )
        for (ln, st), c in sorted(table.items())
    ]


async def warnings_csv(
    *,
    stations: list[str] | None,
    list_name: str | None = None,
    station: str | None = None,
    outcome: str | None = None,
    min_age_days: int | None = None,
) -> bytes:
    """Every matching warning as CSV (UTF-8 with BOM, Chinese headers), oldest first."""
    where = _where(
        list_name=list_name,
        station=station,
        outcome=outcome,
        stations=stations,
        min_age_days=min_age_days,
    )
    rows = (
        await ImportWarning.select()
        .where(where)
        .order_by(ImportWarning.raised_at)
        .order_by(ImportWarning.id)
    )
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            "预警编号",
            "名单",
            "外部编号",
            "负责站",
            "比中对象",
            "依据",
            "分值",
            "预警时间",
            "天数",
            "核实结果",
            "核实时间",
            "备注",
        ]
    )
    for w in await _warning_outs(rows):
        writer.writerow(
            [
                w.id,
                w.list_name,
                w.external_id,
                w.station,
                f"{w.target.kind} {w.target.id}",
                " ".join(w.evidence),
                w.score,
                w.raised_at.isoformat(),
                w.age_days,
                w.outcome.value if w.outcome else "open",
                w.verified_at.isoformat() if w.verified_at else "",
                w.note,
            ]
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


async def verify(
    *,
    warning_id: int,
    outcome: WarningOutcome,
    note: str,
    by: Principal,
    store: ObjectStore,
    settings: Settings,
    enqueue: Callable[[int], Awaitable[None]] | None = None,
) -> WarningOut:
    """Record the outcome of verifying a warning (核实). ``helped`` also submits the
    pair to the candidate review ledger (a staff lead carrying the external record).
    When the list's person is new to the service (a warning on a person in care),
    the lead creates a notice from the record, and the row's kept photo (a face
    warning's evidence, :func:`row_photo_key`) becomes that notice's photo through
    the photo service (``enqueue`` queues its matching), so the reviewer sees both
    faces and the matcher adds the face evidence to the same candidate.

    Raises:
        NotFound: no such warning.
        PermissionDenied: the warning belongs to a station the caller does not see.
        InvalidInput: no note for an outcome other than no_action.
        Conflict: already verified.
    """
    row = await ImportWarning.select().where(ImportWarning.id == warning_id).first()
    if row is None:
        raise NotFound(_("warning {warning_id} does not exist", warning_id=warning_id))
    if not by.sees_station(row["station"]):
        raise PermissionDenied(
            _("warning {warning_id} belongs to another station", warning_id=warning_id)
        )
    if outcome != WarningOutcome.no_action and not note.strip():
        raise InvalidInput(
            _("say what was found: a note is required for this outcome"),
            accepted={"note": "1..2000 characters"},
        )
    if row["outcome"] is not None:
        raise Conflict(
            _("warning {warning_id} is already verified", warning_id=warning_id),
            accepted={"outcome": [None]},
        )
    candidate_id = None
    if outcome == WarningOutcome.helped:
        candidate_id = await _to_ledger(
            row, note=note, by=by, store=store, settings=settings, enqueue=enqueue
        )
    now = clock.now()
    updated = (
        await ImportWarning.update(
            {
                ImportWarning.outcome: outcome.value,
                ImportWarning.note: note,
                ImportWarning.verified_by: by.user_id,
                ImportWarning.verified_at: now,
                ImportWarning.candidate_id: candidate_id,
                ImportWarning.updated_at: now,
            }
        )
        .where((ImportWarning.id == warning_id) & ImportWarning.outcome.is_null())
        .returning(ImportWarning.id)
    )
    if not updated:
        raise Conflict(_("warning {warning_id} is already verified", warning_id=warning_id))
    fresh = await ImportWarning.select().where(ImportWarning.id == warning_id).first()
    assert fresh is not None
    return (await _warning_outs([fresh]))[0]


async def _to_ledger(
    row: dict[str, Any],
    *,
    note: str,
    by: Principal,
    store: ObjectStore,
    settings: Settings,
    enqueue: Callable[[int], Awaitable[None]] | None,
) -> int:
    """Submit a verified-same warning as a staff lead; returns the candidate id."""
    from datetime import date

    from rescue.cases.tables import Sex
    from rescue.matching.ledger import submit_candidate
    from rescue.matching.schemas import LeadValues
    from rescue.matching.tables import EvidenceKind
    from rescue.notices.schemas import NoticeCreate
    from rescue.notices.tables import NoticeSource

    record = (
        await ImportRecord.select(
            ImportRecord.fields, ImportRecord.row_number, ImportRecord.run.object_key
        )
        .where(ImportRecord.id == row["record"])
        .first()
    )
    fields: dict[str, str] = _loads(record["fields"]) if record else {}
    summary = (f"{row['list_name']} #{row['external_id']}: {row['explanation']}. {note}".strip())[
        :5000
    ]
    values = LeadValues(summary=summary)
    if row["case"] is not None:
        birth = fields.get("birth_date", "")
        age = fields.get("age", "").partition("-")[0]
        notice = NoticeCreate(
            name=(fields.get("name") or row["external_id"])[:100],
            source=NoticeSource.external,
            sex=Sex(fields.get("sex", "unknown")),
            date_of_birth=date.fromisoformat(birth) if len(birth) == 10 else None,
            age_when_missing=int(age) if age else None,
            missing_since=date.fromisoformat(fields["event_date"])
            if fields.get("event_date")
            else None,
            last_seen_place=(fields.get("place") or fields.get("home_place") or "")[:300],
            description=f"{row['list_name']} #{row['external_id']}"[:10_000],
        )
        detail, _new = await submit_candidate(
            kind=EvidenceKind.staff,
            values=values,
            by=by,
            store=store,
            limits=settings.upload,
            settings=settings,
            case_id=int(row["case"]),
            notice=notice,
            note=note,
        )
        if record and enqueue is not None and "face" in _loads(row["evidence"]):
            await _notice_photo_from_row(
                record,
                notice_id=detail.candidate.notice_id,
                by=by,
                store=store,
                settings=settings,
                enqueue=enqueue,
            )
    else:
        detail, _new = await submit_candidate(
            kind=EvidenceKind.staff,
            values=values,
            by=by,
            store=store,
            limits=settings.upload,
            settings=settings,
            person_description=f"{row['list_name']} #{row['external_id']} {fields.get('name', '')}"[
                :300
            ],
            notice_id=int(row["notice"]),
            note=note,
        )
    return int(detail.candidate.id)


async def _notice_photo_from_row(
    record: dict[str, Any],
    *,
    notice_id: int,
    by: Principal,
    store: ObjectStore,
    settings: Settings,
    enqueue: Callable[[int], Awaitable[None]],
) -> None:
    """Give the notice made from a list row that row's kept photo (uploaded like any
    photo: checked, stored, queued for matching). A photo already on the notice
    (verified twice through a retry) or no longer kept is left as it is."""
    from rescue.photos.services import upload_photo

    key = row_photo_key(record["run.object_key"], int(record["row_number"]))
    try:
        data = await store.aget(key)
    except ObjectMissing:
        return
    try:
        await upload_photo(
            owner="notice",
            owner_id=notice_id,
            data=data,
            taken_on=None,
            by=by,
            store=store,
            limits=settings.upload,
            enqueue=enqueue,
        )
    except Conflict:  # the same bytes are already this notice's photo
        return
