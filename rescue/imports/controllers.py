"""HTTP routes for import runs of external lists and their warnings (比对预警)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter

from rescue.forms import BODY_LIMIT
from rescue.imports import services
from rescue.imports.schemas import RunOut, VerifyIn, WarningOut, WarningSummaryRow
from rescue.imports.templates import ListKind, template_csv
from rescue.permissions import Action, allow
from rescue.photos.controllers import enqueue_photo
from rescue.runtime import get_store
from rescue.schemas import Limit, Offset, Page, PathId
from rescue.settings import get_settings


@dataclass
class RunUpload:
    """Multipart form: ``file`` (CSV in UTF-8/GBK, or .xlsx, from the kind's
    template), ``list_kind``, ``list_name`` (e.g. "2026年11月公安失踪人员"), for
    an administrator the responsible ``station`` (staff: their own), and
    ``photos``: a ZIP whose file names the 照片 column gives."""

    file: UploadFile
    list_kind: ListKind
    list_name: str
    station: str = ""
    #: A ZIP of the photos the 照片 column names (optional; rescue.imports.photos).
    photos: UploadFile | None = None


async def _enqueue(run_id: int, chunk_no: int | None = None) -> None:
    """Queue a chunk of an import run (None: the whole run) on the workers."""
    from workers.actors import send_import

    await send_import(run_id, chunk_no)


Outcome = Annotated[str | None, "open, helped, already_known, not_same or no_action"]
MinAge = Annotated[
    int | None, QueryParameter(ge=0, le=36500, description="days since raised, at least")
]


class ImportController(Controller):
    path = "/api"
    tags = ("imports",)

    @get(
        "/import-templates/{kind:str}",
        summary="The CSV template of a list kind",
        guards=[allow(Action.import_run)],
    )
    async def template(self, kind: FromPath[ListKind]) -> Response[bytes]:
        """UTF-8 with BOM (opens in Excel/WPS); the same columns for every kind."""
        return Response(
            template_csv(kind),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{kind.value}.csv"'},
        )

    @post(
        "/import-runs",
        summary="Upload an external list: the dry run",
        guards=[allow(Action.import_run)],
        # Files up to IMPORT_MAX_BYTES each (a photos ZIP of a full-size list),
        # counted by the form reader (rescue.forms), not Litestar's 2 x UPLOAD_MAX_BYTES.
        # (rescue.app._import_body_limits sets Litestar's limit of these routes).
        opt={BODY_LIMIT: "import"},
    )
    async def create(
        self, data: MultipartBody[RunUpload], request: Request[Any, Any, Any]
    ) -> RunOut:
        """Answers 201 with the run ``checked``: rows, valid rows, per-row errors and
        what the run would create. Nothing else is created until ``start``. 400 for
        a file that cannot be read (encoding, unknown columns, broken Excel) or a
        photos file that is not a ZIP. 413 naming the limit for a file over
        ``IMPORT_MAX_BYTES`` (default 4 GiB; the list and the ZIP are each spooled
        to a temporary file on disk, never held in memory). Each row's photo is
        checked like an upload (a row whose photo fails, is missing, or is a URL
        outside this service's object store is a per-row problem)."""
        settings = get_settings()
        user = request.user
        station = (
            data.station if (data.station and user.visible_stations() is None) else user.station
        )
        return await services.create_run(
            kind=data.list_kind,
            list_name=data.list_name.strip()[:200] or data.file.filename,
            filename=data.file.filename or "",
            data=data.file.file,  # spooled to disk by the multipart parser: streamed
            station=station,
            by=user,
            store=get_store(),
            max_bytes=settings.upload.import_max_bytes,
            photos=data.photos.file if data.photos and data.photos.filename else None,
        )

    @get(
        "/import-runs/{run_id:int}",
        summary="A run and its progress",
        guards=[allow(Action.import_run)],
    )
    async def detail(self, run_id: PathId, request: Request[Any, Any, Any]) -> RunOut:
        """``rows_done`` of ``total_rows``, ``rate_rows_per_s`` and ``seconds_left``
        while running. 404 if unknown; 403 another station's."""
        return await services.get_run(run_id=run_id, by=request.user)

    @post(
        "/import-runs/{run_id:int}/start",
        status_code=202,
        summary="Run a checked import (or resume one that stopped)",
        guards=[allow(Action.import_run)],
    )
    async def start(self, run_id: PathId, request: Request[Any, Any, Any]) -> RunOut:
        """Queues the run on a worker; poll ``GET /api/import-runs/{id}``. A run that
        stopped (crash, failure) resumes after its last saved row without
        duplicating anything. 409 when already done, or when its list was deleted
        under the retention rules (``purged_at``); 403 another station's."""
        return await services.start_run(run_id=run_id, enqueue=_enqueue, by=request.user)

    @get(
        "/import-warnings",
        summary="Warnings to verify (比对预警), oldest first",
        guards=[allow(Action.import_warning_read)],
    )
    async def warnings(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = 50,
        offset: Offset = 0,
        list_name: FromQuery[str | None] = None,
        station: FromQuery[str | None] = None,
        outcome: FromQuery[Outcome] = None,
        min_age_days: MinAge = None,
    ) -> Page[WarningOut]:
        """Filters: ``list_name``, ``station``, ``outcome`` (``open`` or an outcome),
        ``min_age_days`` (raised at least that many days ago). Only warnings of the
        stations the caller sees; ``age_days`` since raised."""
        return await services.list_warnings(
            limit=limit,
            offset=offset,
            stations=request.user.visible_stations(),
            list_name=list_name,
            station=station,
            outcome=outcome,
            min_age_days=min_age_days,
        )

    @get(
        "/import-warnings/summary",
        summary="Warnings raised → verified → helped, per list and station",
        guards=[allow(Action.import_warning_read)],
    )
    async def summary(
        self,
        request: Request[Any, Any, Any],
        list_name: FromQuery[str | None] = None,
        station: FromQuery[str | None] = None,
    ) -> list[WarningSummaryRow]:
        """One row per (list, station) with counts of each outcome."""
        return await services.warning_summary(
            stations=request.user.visible_stations(), list_name=list_name, station=station
        )

    @get(
        "/import-warnings/csv",
        summary="Warnings as CSV (Chinese headers)",
        guards=[allow(Action.import_warning_read)],
    )
    async def csv(
        self,
        request: Request[Any, Any, Any],
        list_name: FromQuery[str | None] = None,
        station: FromQuery[str | None] = None,
        outcome: FromQuery[Outcome] = None,
        min_age_days: MinAge = None,
    ) -> Response[bytes]:
        """Same filters as the list; UTF-8 with BOM."""
        body = await services.warnings_csv(
            stations=request.user.visible_stations(),
            list_name=list_name,
            station=station,
            outcome=outcome,
            min_age_days=min_age_days,
        )
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="warnings.csv"'},
        )

    @post(
        "/import-warnings/{warning_id:int}/verify",
        status_code=200,
        summary="Record what verifying a warning found (核实)",
        guards=[allow(Action.import_warning_verify)],
    )
    async def verify(
        self, warning_id: PathId, data: JSONBody[VerifyIn], request: Request[Any, Any, Any]
    ) -> WarningOut:
        """``helped`` also puts the pair in the candidate review queue
        (``candidate_id``). 400 without a note (except no_action); 403 another
        station's warning; 404; 409 already verified."""
        settings = get_settings()
        return await services.verify(
            warning_id=warning_id,
            outcome=data.outcome,
            note=data.note,
            by=request.user,
            store=get_store(),
            settings=settings,
            enqueue=enqueue_photo,
        )
