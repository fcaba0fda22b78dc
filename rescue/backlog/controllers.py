"""HTTP routes: history entered later (历史补录) and backlog runs (在站人员历史补录)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import JSONBody, MultipartBody

from rescue.backlog import history, services
from rescue.backlog.schemas import HistoryPlacementIn, HistorySearchIn, HistoryStatusIn
from rescue.backlog.templates import template_csv
from rescue.cases.schemas import TransitionOut
from rescue.errors import NotFound
from rescue.i18n import _
from rescue.imports.schemas import RunOut
from rescue.imports.services import get_run, start_run
from rescue.imports.tables import ImportRun
from rescue.permissions import Action, allow
from rescue.placements.schemas import PlacementOut
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.searches.schemas import SearchActionOut


@dataclass
class BacklogUpload:
    """Multipart form: ``file`` (the backlog template filled in: CSV in UTF-8 or
    GBK, or .xlsx), ``photos`` (optional ZIP of the image files named in the
    照片 column) and, for an administrator, the ``station`` (staff: their own)."""

    file: UploadFile
    photos: UploadFile | None = None
    station: str = ""


async def _enqueue(run_id: int, chunk_no: int | None = None) -> None:
    """Queue a chunk of an import run (None: the whole run) on the workers."""
    from workers.actors import send_import

    await send_import(run_id, chunk_no)


async def _run_row(run_id: int, request: Request[Any, Any, Any]) -> None:
    row = await ImportRun.select().where(ImportRun.id == run_id).first()
    if row is None:
        raise NotFound(_("backlog run {run_id} does not exist", run_id=run_id))
    services.check_access(row, request.user)


class HistoryController(Controller):
    """Earlier records of a case admitted before it was entered here."""

    path = "/api/cases/{case_id:int}/history"
    tags = ("history",)

    @post(
        "/placements",
        summary="Record an earlier placement (entered later)",
        guards=[allow(Action.history_write)],
    )
    async def placement(
        self, case_id: PathId, data: JSONBody[HistoryPlacementIn], request: Request[Any, Any, Any]
    ) -> PlacementOut:
        """201 with the placement (``entered_later``, ``created_by``). A period inside
        the placement open then splits it (the person returns there at ``ended_at``).
        400 outside the stay or in the future; 409 overlapping another placement."""
        return await history.add_placement(case_id=case_id, data=data, by=request.user)

    @post(
        "/status",
        summary="Record an earlier status change (entered later)",
        guards=[allow(Action.history_write)],
    )
    async def status(
        self, case_id: PathId, data: JSONBody[HistoryStatusIn], request: Request[Any, Any, Any]
    ) -> TransitionOut:
        """201. Follows the transitions table from the current status; rules judged
        at ``occurred_at`` (409 with current/allowed/requires); 400 when
        ``occurred_at`` is before the admission or the previous status change."""
        return await history.add_status(case_id=case_id, data=data, by=request.user)

    @post(
        "/search-actions",
        summary="Record an earlier search action (entered later)",
        guards=[allow(Action.history_write)],
    )
    async def search_action(
        self, case_id: PathId, data: JSONBody[HistorySearchIn], request: Request[Any, Any, Any]
    ) -> SearchActionOut:
        """201 with the action (``entered_later``); it satisfies deadlines by its
        ``on_date``. 400 outside the stay, in the future, or a missing field."""
        return await history.add_search_action(case_id=case_id, data=data, by=request.user)


class BacklogController(Controller):
    """Loading a station's long-term residents: template, dry run, run, progress."""

    path = "/api"
    tags = ("backlog",)

    @get(
        "/backlog-template",
        summary="The backlog template (CSV)",
        guards=[allow(Action.history_write)],
    )
    async def template(self) -> Response[bytes]:
        """UTF-8 with BOM; columns in docs/workflow.md "Backlog"."""
        return Response(
            template_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="backlog.csv"'},
        )

    @post(
        "/backlog-runs",
        summary="Upload a backlog (and its photos): the dry run",
        guards=[allow(Action.history_write)],
    )
    async def create(
        self, data: MultipartBody[BacklogUpload], request: Request[Any, Any, Any]
    ) -> RunOut:
        """201 with the run ``checked``: per-row errors (row, column header, reason
        in the caller's language), ``would_create`` (cases, placements,
        status_changes, photos, already_loaded). Nothing else is created until
        ``start``. 400 for an unreadable table or ZIP; 413 too large."""
        user = request.user
        station = (
            data.station if (data.station and user.visible_stations() is None) else user.station
        )
        return await services.create_run(
            filename=data.file.filename or "",
            data=await data.file.read(),
            photos=await data.photos.read() if data.photos is not None else None,
            station=station,
            by=user,
            store=get_store(),
        )

    @get(
        "/backlog-runs/{run_id:int}",
        summary="A backlog run and its progress",
        guards=[allow(Action.history_write)],
    )
    async def detail(self, run_id: PathId, request: Request[Any, Any, Any]) -> RunOut:
        """``rows_done`` of ``total_rows`` (rate and time left while running);
        errors found while loading are added to ``errors``. 403 another station's; 404."""
        await _run_row(run_id, request)
        return await get_run(run_id=run_id)

    @post(
        "/backlog-runs/{run_id:int}/start",
        status_code=202,
        summary="Load a checked backlog (or resume one that stopped)",
        guards=[allow(Action.history_write)],
    )
    async def start(self, run_id: PathId, request: Request[Any, Any, Any]) -> RunOut:
        """Queues the run on a worker; poll ``GET /api/backlog-runs/{id}``. Rows
        already loaded (their 编号) are skipped, so resuming or starting the same
        file again creates no duplicates. While a job is loading the run (its
        lease, ``IMPORT_LEASE_SECONDS`` after its last row, still holds) nothing
        more is queued and the answer is the run as it is, ``running``; a run
        whose job went silent for longer, or failed, is queued again
        (rescue.imports.services.start_run). 409 when already done."""
        await _run_row(run_id, request)
        return await start_run(run_id=run_id, enqueue=_enqueue)
