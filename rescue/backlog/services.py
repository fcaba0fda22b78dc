"""Backlog runs: loading a station's long-term residents with their history and
photos from one table and a ZIP (issue 12 item 6).

The same run machinery as external lists (rescue.imports: the run record,
dry run, progress, resume), with its own template (rescue.backlog.templates)
and rows (rescue.backlog.rows):

1. :func:`create_run` — the dry run: every row checked (per-row problems name
   the row and the column), every photo named checked in the ZIP with the
   upload's image checks; nothing is created but the run's record with what the
   run would create (``plan``). Rows whose 编号 was loaded before are counted
   ``already_loaded`` and will be skipped.
2. ``POST …/start`` (rescue.imports.services.start_run) queues the run on the
   worker (the ``run_import`` actor dispatches backlog runs here) unless a job
   is loading it: the run is one chunk (chunk 0) with the claim and lease of
   every import chunk, and start queues it when it is checked or failed, or
   when its job has saved no row for ``IMPORT_LEASE_SECONDS`` (a worker killed
   or stalled); while its job is at it, start queues nothing and answers the
   run as it is.
3. :func:`execute_run` — one job at a time (the run's claim); per row, in one
   transaction with the row's progress: the case with its real admission
   (entered at the run's start), the earlier placements, the current placement
   and the status path (rescue.backlog.history: marked entered later, by the
   user who uploaded), then its photos through the photo pipeline (the same
   checks, stored, and queued for faces and matching once the row committed).
   ``rows_done`` is saved with every row; a resumed or repeated run skips rows
   whose 编号 is loaded (``cases.backlog_key`` is unique) and adds only photos
   not yet there. Two jobs never load the same row at once: each row first
   renews the job's claim and holds the run's chunk locked until it commits.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
import msgspec

from media.images import ImageRejected, inspect_image
from media.storage import ObjectStore, new_object_key
from rescue import clock
from rescue.alerts.rules import rules_for
from rescue.audit import unit
from rescue.backlog import history
from rescue.backlog.rows import RowPlan, check_rows, path_to
from rescue.backlog.schemas import HistoryPlacementIn, HistoryStatusIn
from rescue.backlog.templates import COLUMNS, KEY, header
from rescue.cases.schemas import CaseCreate
from rescue.cases.services import create_case
from rescue.cases.tables import Case
from rescue.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from rescue.i18n import _
from rescue.imports.reader import FileRefused, open_rows
from rescue.imports.schemas import RunOut
from rescue.imports.services import (
    MAX_ERRORS_KEPT,
    MEDIA_TYPES,
    ClaimLost,
    _ChunkState,
    _claim,
    _ensure_chunks,
    _refuse,
    _renew,
    fail_claimed_chunk,
    finish_claimed_chunk,
    get_run,
)
from rescue.imports.tables import ImportChunk, ImportRun, RunStatus
from rescue.imports.templates import ListKind
from rescue.placements.tables import PlacementKind
from rescue.settings import get_settings
from rescue.users.services import Principal
from rescue.users.tables import Role

__all__ = ["check_access", "create_run", "execute_run"]

log = logging.getLogger(__name__)

#: Most files a photo ZIP may hold (a station's backlog is hundreds of people).
MAX_ARCHIVE_MEMBERS = 20_000


def _archive(data: bytes | None, max_bytes: int) -> zipfile.ZipFile | None:
    if not data:
        return None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InvalidInput(
            _("the photos are not a readable ZIP file"),
            accepted=_("a ZIP of JPEG, PNG or WebP files named in the 照片 column"),
        ) from exc
    if len(archive.infolist()) > MAX_ARCHIVE_MEMBERS:
        raise InvalidInput(
            _("the ZIP holds more than {n} files", n=MAX_ARCHIVE_MEMBERS),
            accepted=_("at most {n} files", n=MAX_ARCHIVE_MEMBERS),
        )
    del max_bytes
    return archive


def _names(archive: zipfile.ZipFile | None) -> set[str] | None:
    """Photo names in the ZIP: each member by its file name (folders ignored)."""
    if archive is None:
        return None
    return {i.filename.rsplit("/", 1)[-1] for i in archive.infolist() if not i.is_dir()}


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    return next(
        i for i in archive.infolist() if not i.is_dir() and i.filename.rsplit("/", 1)[-1] == name
    )


async def _check_photo(archive: zipfile.ZipFile, name: str, max_bytes: int, max_pixels: int) -> str:
    """The upload's checks on one photo of the ZIP: '' if fine, else the reason."""
    info = _member(archive, name)
    if info.file_size > max_bytes:
        return _(
            "{name} is {size} bytes; the limit is {limit}",
            name=name,
            size=info.file_size,
            limit=max_bytes,
        )
    data = archive.read(info)
    try:
        await anyio.to_thread.run_sync(lambda: inspect_image(data, max_pixels=max_pixels))
    except ImageRejected as exc:
        return f"{name}: {exc.detail}"
    return ""


def check_access(run: dict[str, Any], by: Principal) -> None:
    """Refuse a run of another station, or a run that is not a backlog run."""
    if run["list_kind"] != ListKind.backlog.value:
        raise NotFound(_("backlog run {run_id} does not exist", run_id=run["id"]))
    if not by.sees_station(run["station"]):
        raise PermissionDenied(_("the run belongs to another station"))


async def create_run(
    *,
    filename: str,
    data: bytes,
    photos: bytes | None,
    station: str,
    by: Principal,
    store: ObjectStore,
) -> RunOut:
    """Dry run of a backlog file (and its ZIP of photos): check every row and
    photo; store both and the run's findings. Nothing else is created.

    Returns the run ``checked``: ``errors`` per row (row number, column header,
    reason), ``valid_rows``, and ``would_create`` (cases, placements, status
    changes, photos, already_loaded).

    Raises:
        InvalidInput: an unreadable table (encoding, unknown columns, no 编号
            column, broken Excel) or ZIP (400; no run is made).
        PayloadTooLarge: the table over the upload limit, or the ZIP over twice it
            (a request holds at most 2 × UPLOAD_MAX_BYTES: load a large backlog in
            several files, each with its photos).
    """
    limits = get_settings().upload
    if len(data) > limits.max_bytes or len(photos or b"") > 2 * limits.max_bytes:
        raise PayloadTooLarge(
            _("the file is too large; the limit is {limit} bytes", limit=limits.max_bytes),
            accepted={"table": limits.max_bytes, "photos_zip": 2 * limits.max_bytes},
        )
    archive = _archive(photos, limits.max_bytes)
    names = _names(archive)
    rules = rules_for(station, get_settings().deadlines.overrides)
    try:
        opened = open_rows(data, COLUMNS, KEY)
        plans = list(check_rows(opened, rules=rules, archive=names))
    except FileRefused as exc:
        raise _refuse(exc) from exc
    except UnicodeDecodeError as exc:
        raise _refuse(FileRefused(f"undecodable bytes at position {exc.start}")) from exc
    except Exception as exc:  # a CSV/Excel structure the readers reject
        raise _refuse(FileRefused(f"unreadable {type(exc).__name__}: {exc}")) from exc
    checked_photos: dict[str, str] = {}
    for plan in plans:
        for name in plan.photos:
            if archive is None or name not in (names or set()):
                continue
            if name not in checked_photos:
                checked_photos[name] = await _check_photo(
                    archive, name, limits.max_bytes, limits.max_pixels
                )
            if checked_photos[name]:
                plan.errors.append((header("photos"), checked_photos[name]))
    keys = [f"{station}:{p.key}" for p in plans if p.key]
    loaded = {
        r["backlog_key"]
        for r in await Case.select(Case.backlog_key).where(Case.backlog_key.is_in(keys or [""]))
    }
    errors = [
        {"row": p.row, "column": column, "reason": reason}
        for p in plans
        for column, reason in p.errors
    ]
    valid = [p for p in plans if not p.errors]
    new = [p for p in valid if f"{station}:{p.key}" not in loaded]
    plan_counts = {
        "cases": len(new),
        "placements": sum(len(p.history) + (1 if p.current else 0) for p in new),
        "status_changes": sum(len(path_to(p.status)) for p in new),
        "photos": sum(len(p.photos) for p in valid),
        "already_loaded": len(valid) - len(new),
    }
    key = new_object_key("imports", opened.file_format)
    await store.aput(key, data, MEDIA_TYPES[opened.file_format])
    archive_key = None
    if photos:
        archive_key = new_object_key("imports", "zip")
        await store.aput(archive_key, photos, "application/zip")
    rows = await ImportRun.insert(
        ImportRun(
            list_kind=ListKind.backlog.value,
            list_name=(filename or "backlog")[:200],
            station=station,
            filename=filename[:300],
            object_key=key,
            archive_key=archive_key,
            file_sha256=hashlib.sha256(data).hexdigest(),
            file_format=opened.file_format,
            encoding=opened.encoding,
            status=RunStatus.checked.value,
            total_rows=len(plans),
            valid_rows=len(valid),
            error_rows=len(plans) - len(valid),
            errors=errors[:MAX_ERRORS_KEPT],
            plan=plan_counts,
            created_by=by.user_id,
        )
    ).returning(ImportRun.id)
    return await get_run(run_id=int(rows[0]["id"]))


async def _principal(user_id: int | None) -> Principal:
    from rescue.users.tables import User

    row = await User.select().where(User.id == (user_id or 0)).first()
    if row is None:
        raise NotFound(_("the user who uploaded the run no longer exists"))
    return Principal(
        user_id=row["id"], username=row["username"], role=Role(row["role"]), station=row["station"]
    )


async def execute_run(
    *,
    run_id: int,
    store: ObjectStore,
    stop_after: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    after_row: Callable[[], Awaitable[None]] | None = None,
) -> RunOut:
    """Load the run's valid rows from ``rows_done`` on (see the module docstring).

    One job at a time: the run is one chunk (rescue.imports.tables.ImportChunk,
    chunk 0), and a job loads rows only under its claim
    (rescue.imports.services: the claim and lease of every import chunk). A job
    given a run another job has claimed (start clicked while it runs, a message
    delivered again) ends at once without loading a row. Each row is loaded in
    one transaction that first renews the claim's lease
    (``IMPORT_LEASE_SECONDS``) and holds the chunk's row locked until the row
    and its progress are committed; once a start after the lease ran out (the
    job silent, e.g. stalled) gave the run to another job, this job's next row
    finds the claim gone and it stops (:class:`ClaimLost`), so two jobs never
    load the same row at once.

    Args:
        stop_after: stop (as a crash would) after this many rows of this call;
            the run stays ``running`` under this job's claim until the lease
            runs out, then a start queues it again and it resumes where it
            stopped.
        on_progress: called with (rows_done, total_rows) after each row.
        after_row: awaited after each committed row of this call (tests:
            something happens between two rows).

    A row the rules refuse on loading (e.g. a history order the transitions
    table does not allow) is left out with its reason added to ``errors``.
    Any other failure rolls the row back (its stored photo objects removed),
    marks the run (and its chunk) ``failed`` and raises; a start resumes it.
    """
    run = await ImportRun.select().where(ImportRun.id == run_id).first()
    if run is None:
        raise NotFound(_("import run {run_id} does not exist", run_id=run_id))
    if run["status"] == RunStatus.done.value:
        return await get_run(run_id=run_id)
    await _ensure_chunks(run_id)
    chunk = await _claim(run_id, 0)
    if chunk is None:
        log.info("backlog run %s: another job is loading it, or it is done", run_id)
        return await get_run(run_id=run_id)
    # A failed run retried (Dramatiq's retry) runs again.
    await ImportRun.update(
        {ImportRun.status: RunStatus.running.value, ImportRun.failure_reason: ""}
    ).where((ImportRun.id == run_id) & (ImportRun.status == RunStatus.failed.value))
    state = _ChunkState(
        chunk_no=0,
        chunk_id=int(chunk["id"]),
        claim=str(chunk["claim"]),
        row_done=int(chunk["row_done"]),
        rows_done=int(chunk["rows_done"]),
        raised=0,
    )
    try:
        by = await _principal(run["created_by"])
        data = await store.aget(run["object_key"])
        archive = _archive(await store.aget(run["archive_key"]) if run["archive_key"] else None, 0)
        rules = rules_for(run["station"], get_settings().deadlines.overrides)
        entered_at = run["started_at"] or clock.now()
        this_call = 0
        plans = check_rows(open_rows(data, COLUMNS, KEY), rules=rules, archive=_names(archive))
        for plan in plans:
            if plan.row <= state.row_done:
                continue
            async with _one_transaction():
                await _renew(state)  # still ours? (and the chunk's row locked till the commit)
                problem = None
                if not plan.errors:
                    try:
                        await _load_row(plan, run, by, entered_at, archive, store)
                    except DomainError as exc:
                        problem = {"row": plan.row, "column": "", "reason": exc.detail}
                await _progress(run_id, plan.row, problem)
                await _renew(
                    state, {ImportChunk.row_done: plan.row, ImportChunk.rows_done: plan.row}
                )
            state.row_done = state.rows_done = plan.row
            this_call += 1
            if on_progress:
                on_progress(plan.row, run["total_rows"])
            if after_row is not None:
                await after_row()
            if stop_after is not None and this_call >= stop_after:
                return await get_run(run_id=run_id)
        async with ImportRun._meta.db.transaction():
            now = clock.now()
            await finish_claimed_chunk(state, now)
            await ImportRun.update(
                {
                    ImportRun.status: RunStatus.done.value,
                    ImportRun.failure_reason: "",
                    ImportRun.finished_at: now,
                    ImportRun.updated_at: now,
                }
            ).where(ImportRun.id == run_id)
    except ClaimLost:
        log.warning(
            "backlog run %s: its lease ran out and another job took it; this job stops "
            "(the row it was at rolled back)",
            run_id,
        )
        return await get_run(run_id=run_id)
    except Exception as exc:
        await fail_claimed_chunk(run_id, state, exc)
        raise
    return await get_run(run_id=run_id)


@contextlib.asynccontextmanager
async def _one_transaction() -> AsyncIterator[None]:
    """One row's work in one transaction: a unit (rescue.audit.unit) as a
    request's write has, outside a request, so that the photos stored in it
    follow it: their objects are removed if it rolls back, and their face jobs
    are queued only once it has committed (workers.broker)."""
    opened = await unit.open_unit(ImportRun._meta.db)
    try:
        yield
    except BaseException:
        with anyio.CancelScope(shield=True):
            await opened.rollback()
            await opened.close()
        raise
    try:
        await opened.commit()
    except BaseException:
        # Committed or not is unknown: the row is done again on resume (its case
        # and photos are found then); an orphan object goes with the recovery sweep.
        with anyio.CancelScope(shield=True):
            await opened.close()
        raise
    await opened.close()
    opened.run_committed()


async def _progress(run_id: int, row: int, problem: dict[str, Any] | None) -> None:
    changes: dict[Any, Any] = {ImportRun.rows_done: row, ImportRun.updated_at: clock.now()}
    if problem is not None:
        current = await ImportRun.select(ImportRun.errors).where(ImportRun.id == run_id).first()
        errors = current["errors"] if current else []
        errors = json.loads(errors) if isinstance(errors, str) else errors
        changes[ImportRun.errors] = [*errors, problem][:MAX_ERRORS_KEPT]
        changes[ImportRun.error_rows] = ImportRun.error_rows + 1
        changes[ImportRun.valid_rows] = ImportRun.valid_rows - 1
    await ImportRun.update(changes).where(ImportRun.id == run_id)


async def _load_row(
    plan: RowPlan,
    run: dict[str, Any],
    by: Principal,
    entered_at: datetime,
    archive: zipfile.ZipFile | None,
    store: ObjectStore,
) -> None:
    """Create one row's case with its history (one transaction), then its photos."""
    key = f"{run['station']}:{plan.key}"
    row = await Case.select(Case.id).where(Case.backlog_key == key).first()
    note = _("entered from the backlog file {name}, row {row}", name=run["filename"], row=plan.row)
    if row is None:
        async with Case._meta.db.transaction():
            case = await create_case(
                data=msgspec.convert(
                    {**plan.case, "station": run["station"], "admitted_at": plan.admitted_at},
                    CaseCreate,
                ),
                by=by,
                entered_at=entered_at,
                backlog_key=key,
            )
            stays = list(plan.history)
            if plan.current is not None and not (
                plan.current.kind == PlacementKind.in_station and not stays
            ):
                stays.append(plan.current)
            for stay in stays:
                await history.add_placement(
                    case_id=case.id,
                    data=HistoryPlacementIn(
                        kind=stay.kind,
                        facility=stay.facility,
                        started_at=stay.start,
                        ended_at=stay.end,
                        reason=note,
                    ),
                    by=by,
                )
            for status in path_to(plan.status):
                assert plan.status_at is not None
                await history.add_status(
                    case_id=case.id,
                    data=HistoryStatusIn(to=status, occurred_at=plan.status_at, reason=note),
                    by=by,
                )
        case_id = case.id
    else:
        case_id = int(row["id"])
    if archive is not None:
        await _photos(case_id, plan, archive, by, store)


async def _photos(
    case_id: int, plan: RowPlan, archive: zipfile.ZipFile, by: Principal, store: ObjectStore
) -> None:
    """Each named photo through the upload pipeline; one already there is skipped."""
    from rescue.photos.services import upload_photo
    from workers.actors import send_photo

    for name in plan.photos:
        try:
            await upload_photo(
                owner="case",
                owner_id=case_id,
                data=archive.read(_member(archive, name)),
                taken_on=None,
                by=by,
                store=store,
                limits=get_settings().upload,
                enqueue=send_photo,
            )
        except Conflict:
            continue  # the same bytes are already a photo of this case (a re-run)
