"""Pages of external-list comparison (比对预警): upload a list, its dry run with
per-row errors, the run with its progress (htmx polling), and the warnings to
verify with their filters, CSV download and the 核实 form.

Same services and permission rows as ``/api/import-runs`` and
``/api/import-warnings`` (import_run, import_warning_read, import_warning_verify).
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from rescue.errors import Conflict, InvalidInput, PayloadTooLarge, PermissionDenied
from rescue.forms import BODY_LIMIT, REFUSAL_ON_PAGE, refused_body
from rescue.i18n import _, label
from rescue.imports import services
from rescue.imports.tables import ImportRun, ImportWarning, RunStatus, WarningOutcome
from rescue.imports.templates import COLUMNS, ListKind, template_csv
from rescue.permissions import PERMISSIONS, Action, allow
from rescue.photos.controllers import enqueue_photo
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.web.forms import read_form

__all__ = ["ImportPages", "WarningPages"]

#: Warnings shown on one page of the list.
PAGE_SIZE = 50


async def _enqueue(run_id: int, chunk_no: int | None = None) -> None:
    """Queue a chunk of an import run (None: the whole run) on the workers."""
    from workers.actors import send_import

    await send_import(run_id, chunk_no)


async def _recent_runs() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await ImportRun.select(
            ImportRun.id,
            ImportRun.list_name,
            ImportRun.list_kind,
            ImportRun.station,
            ImportRun.status,
            ImportRun.total_rows,
            ImportRun.rows_done,
            ImportRun.warnings_raised,
            ImportRun.created_at,
        )
        .order_by(ImportRun.id, ascending=False)
        .limit(50)
    )
    return await services.with_chunk_progress(rows)


async def _runs_page(
    request: Request[Any, Any, Any],
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    user = request.user
    visible = user.visible_stations()
    runs = [r for r in await _recent_runs() if visible is None or r["station"] in visible]
    return Template(
        template_name="imports/runs.html",
        context={
            "runs": runs,
            "kinds": [(k.value, label(k)) for k in ListKind],
            "errors": errors or {},
            "values": values or {},
            "choose_station": visible is None,
        },
        status_code=status,
    )


def _filters(
    list_name: str, station: str, outcome: str, min_age_days: str
) -> tuple[dict[str, str], dict[str, str], int | None]:
    """(the filters as typed, their errors, the minimum age in days)."""
    errors: dict[str, str] = {}
    outcomes = {"open", *(o.value for o in WarningOutcome)}
    if outcome and outcome not in outcomes:
        errors["outcome"] = _("Choose an outcome from the list.")
    age: int | None = None
    if min_age_days.strip():
        if min_age_days.strip().isdigit() and int(min_age_days) <= 36500:
            age = int(min_age_days)
        else:
            errors["min_age_days"] = _("A whole number of days, 0 to 36500.")
    typed = {
        "list_name": list_name,
        "station": station,
        "outcome": outcome,
        "min_age_days": min_age_days,
    }
    return typed, errors, age


class ImportPages(Controller):
    path = "/imports"
    include_in_schema = False

    @get("/", guards=[allow(Action.import_run)])
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        """The upload form and the latest runs of the stations the user sees."""
        return await _runs_page(request)

    @get("/template.csv", guards=[allow(Action.import_run)])
    async def template(self) -> Response[bytes]:
        """The list template (UTF-8 with BOM, Chinese headers; same for every kind)."""
        return Response(
            template_csv(ListKind.police_missing),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="template.csv"'},
        )

    @post(
        "/",
        guards=[allow(Action.import_run)],
        status_code=303,
        media_type=MediaType.HTML,
        # Files up to IMPORT_MAX_BYTES each, counted by the form reader (rescue.forms).
        # (rescue.app._import_body_limits sets Litestar's limit of these routes).
        # A body announced over it is not read: refused next to the file field.
        opt={BODY_LIMIT: "import", REFUSAL_ON_PAGE: True},
    )
    async def create(self, request: Request[Any, Any, Any]) -> Any:
        """Upload a list: its dry run (same rules as ``POST /api/import-runs``); a
        file that cannot be read is named next to the file field (400). An upload
        over ``IMPORT_MAX_BYTES`` (a file, or a body beyond two files' worth whose
        files are then not read: rescue.forms.REFUSAL_ON_PAGE) is refused next to
        the file field too, naming the limit (413), keeping what was typed."""
        values, files = await read_form(request)
        errors: dict[str, str] = {}
        refused = refused_body(request)
        if refused is not None:
            errors["file"] = refused.detail
            return await _runs_page(request, errors=errors, values=values, status=413)
        kind_raw = values.get("list_kind", "")
        if kind_raw not in {k.value for k in ListKind}:
            errors["list_kind"] = _("Choose a list kind.")
        upload = files.get("file")
        if upload is None:
            errors["file"] = _("Choose a CSV or Excel file made from the template.")
        if errors or upload is None:
            return await _runs_page(request, errors=errors, values=values, status=400)
        user = request.user
        station = values.get("station", "").strip()
        if not (station and user.visible_stations() is None):
            station = user.station
        try:
            run = await services.create_run(
                kind=ListKind(kind_raw),
                list_name=values.get("list_name", "").strip()[:200] or upload.filename,
                filename=upload.filename or "",
                data=upload.file,  # spooled to disk by the multipart parser: streamed
                station=station,
                by=user,
                store=get_store(),
                max_bytes=get_settings().upload.import_max_bytes,
                photos=files["photos"].file if "photos" in files else None,
            )
        except (InvalidInput, PayloadTooLarge) as exc:
            errors["file"] = str(exc.detail)
            return await _runs_page(request, errors=errors, values=values, status=exc.status_code)
        return Redirect(path=f"/imports/{run.id}", status_code=303)

    @get("/{run_id:int}", guards=[allow(Action.import_run)])
    async def detail(self, run_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """The dry run's findings (per-row errors, what would be created) and the run's
        progress, which updates itself while running."""
        run = await services.get_run(run_id=run_id, by=request.user)
        return Template(
            template_name="imports/run.html",
            context={"run": run, "headers": {c.field: c.header for c in COLUMNS}},
        )

    @get("/{run_id:int}/progress", guards=[allow(Action.import_run)])
    async def progress(self, run_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """The progress block alone (polled by htmx every second while running): rows
        done, rate (rows/s) and time left, measured by ``services.get_run``."""
        run = await services.get_run(run_id=run_id, by=request.user)
        return Template(template_name="imports/_progress.html", context={"run": run})

    @post(
        "/{run_id:int}/start",
        guards=[allow(Action.import_run)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def start(self, run_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Run the checked list (or resume a stopped run) on a worker."""
        with contextlib.suppress(Conflict):  # already done: the page shows it
            await services.start_run(run_id=run_id, enqueue=_enqueue, by=request.user)
        return Redirect(path=f"/imports/{run_id}", status_code=303)


class WarningPages(Controller):
    path = "/warnings"
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        *,
        list_name: str,
        station: str,
        outcome: str,
        min_age_days: str,
        page: int,
        verify_errors: dict[int, str] | None = None,
        typed: dict[str, str] | None = None,
        status: int = 200,
    ) -> Template:
        filters, errors, age = _filters(list_name, station, outcome, min_age_days)
        visible = request.user.visible_stations()
        page = max(page, 1)
        if errors:
            status = 400
        result = await services.list_warnings(
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            stations=visible,
            list_name=list_name or None,
            station=station or None,
            outcome=None if errors.get("outcome") else (outcome or None),
            min_age_days=age,
        )
        summary = await services.warning_summary(
            stations=visible, list_name=list_name or None, station=station or None
        )
        lists = sorted(
            {r["list_name"] for r in await ImportWarning.select(ImportWarning.list_name)}
        )
        query = urlencode({k: v for k, v in filters.items() if v})
        return Template(
            template_name="imports/warnings.html",
            context={
                "result": result,
                "summary": summary,
                "filters": filters,
                "errors": errors,
                "lists": lists,
                "outcomes": [(o.value, label(o)) for o in WarningOutcome],
                "page": page,
                "pages": (result.total + PAGE_SIZE - 1) // PAGE_SIZE,
                "query": query,
                "verify_errors": verify_errors or {},
                "typed": typed or {},
                "can_verify": request.user.role in PERMISSIONS[Action.import_warning_verify],
            },
            status_code=status,
        )

    @get("/", guards=[allow(Action.import_warning_read)])
    async def index(
        self,
        request: Request[Any, Any, Any],
        list_name: FromQuery[str] = "",
        station: FromQuery[str] = "",
        outcome: FromQuery[str] = "",
        min_age_days: FromQuery[str] = "",
        page: FromQuery[int] = 1,
    ) -> Template:
        """Warnings oldest first, filtered by list, station, outcome and age in days,
        with the raised → verified → helped counts per list and station."""
        return await self._page(
            request,
            list_name=list_name,
            station=station,
            outcome=outcome,
            min_age_days=min_age_days,
            page=page,
        )

    @get("/csv", guards=[allow(Action.import_warning_read)])
    async def csv(
        self,
        request: Request[Any, Any, Any],
        list_name: FromQuery[str] = "",
        station: FromQuery[str] = "",
        outcome: FromQuery[str] = "",
        min_age_days: FromQuery[str] = "",
    ) -> Response[bytes]:
        """The filtered warnings as CSV (same as ``GET /api/import-warnings/csv``)."""
        _typed, errors, age = _filters(list_name, station, outcome, min_age_days)
        if errors:
            raise InvalidInput(
                "; ".join(errors.values()),
                accepted={"outcome": "open or an outcome", "min_age_days": "0..36500"},
            )
        body = await services.warnings_csv(
            stations=request.user.visible_stations(),
            list_name=list_name or None,
            station=station or None,
            outcome=outcome or None,
            min_age_days=age,
        )
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="warnings.csv"'},
        )

    @post(
        "/{warning_id:int}/verify",
        guards=[allow(Action.import_warning_verify)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def verify(self, warning_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """核实: record the outcome with a note (same rules as the API); a missing
        note or outcome is shown next to the warning's form, keeping what was typed."""
        values, _files = await read_form(request)
        back = {k: values.get(k, "") for k in ("list_name", "station", "outcome", "min_age_days")}
        problem = ""
        try:
            outcome = WarningOutcome(values.get("verify_outcome", ""))
        except ValueError:
            problem = _("Choose what verifying found.")
        else:
            try:
                await services.verify(
                    warning_id=warning_id,
                    outcome=outcome,
                    note=values.get("note", "").strip()[:2000],
                    by=request.user,
                    store=get_store(),
                    settings=get_settings(),
                    enqueue=enqueue_photo,
                )
            except (InvalidInput, Conflict, PermissionDenied) as exc:
                problem = str(exc.detail)
        if problem:
            return await self._page(
                request,
                **back,
                page=1,
                verify_errors={warning_id: problem},
                typed={"note": values.get("note", ""), "outcome": values.get("verify_outcome", "")},
                status=400,
            )
        query = urlencode({k: v for k, v in back.items() if v})
        return Redirect(
            path=f"/warnings?{query}#warning-{warning_id}" if query else "/warnings",
            status_code=303,
        )


def run_finished(run: Any) -> bool:
    """Whether the progress block stops polling."""
    return bool(run.status in {RunStatus.done, RunStatus.failed, RunStatus.checked})
