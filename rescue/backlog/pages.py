"""Pages: loading the station's backlog of long-term residents (在站人员历史补录):
upload (table + ZIP of photos) → dry run with per-row errors → confirm → progress.

The same services and permission row (``history_write``) as ``/api/backlog-runs``.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.response import Redirect, Template

from rescue.backlog import services
from rescue.backlog.controllers import _enqueue
from rescue.backlog.templates import COLUMNS, template_csv
from rescue.errors import DomainError, NotFound
from rescue.i18n import _
from rescue.imports.services import get_run, start_run
from rescue.imports.tables import ImportRun
from rescue.permissions import Action, allow
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.web.forms import read_form

__all__ = ["BacklogPages"]


def _upload_page(error: str = "", status_code: int = 200) -> Template:
    return Template(
        template_name="backlog/upload.html",
        context={"columns": [c.header for c in COLUMNS], "error": error},
        status_code=status_code,
    )


async def _run(run_id: int, request: Request[Any, Any, Any]) -> Any:
    row = await ImportRun.select().where(ImportRun.id == run_id).first()
    if row is None:
        raise NotFound(_("backlog run {run_id} does not exist", run_id=run_id))
    services.check_access(row, request.user)
    return await get_run(run_id=run_id)


class BacklogPages(Controller):
    path = "/backlog"
    include_in_schema = False

    @get("/", name="backlog", guards=[allow(Action.history_write)])
    async def index(self) -> Template:
        """The upload form, with the template's columns explained."""
        return _upload_page()

    @get("/template.csv", guards=[allow(Action.history_write)])
    async def template(self) -> Response[bytes]:
        """The template (CSV, UTF-8 with BOM)."""
        return Response(
            template_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="backlog.csv"'},
        )

    @post(
        "/",
        guards=[allow(Action.history_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def upload(self, request: Request[Any, Any, Any]) -> Any:
        """The dry run; its findings on the run's page. A file that cannot be read
        is refused next to the form (400), keeping nothing."""
        values, files = await read_form(request)
        table = files.get("file")
        if table is None:
            return _upload_page(_("Choose the filled-in template (CSV or Excel)."), 400)
        photos = files.get("photos")
        user = request.user
        station = values.get("station", "") if user.visible_stations() is None else ""
        try:
            run = await services.create_run(
                filename=table.filename or "",
                data=await table.read(),
                photos=await photos.read() if photos is not None else None,
                station=station or user.station,
                by=user,
                store=get_store(),
            )
        except DomainError as exc:
            return _upload_page(exc.detail, exc.status_code)
        return Redirect(path=f"/backlog/{run.id}", status_code=303)

    @get("/{run_id:int}", guards=[allow(Action.history_write)])
    async def detail(self, run_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """A run: the dry run's findings and the confirm button, then its progress."""
        return Template(
            template_name="backlog/run.html", context={"run": await _run(run_id, request)}
        )

    @get("/{run_id:int}/progress", guards=[allow(Action.history_write)])
    async def progress(self, run_id: PathId, request: Request[Any, Any, Any]) -> Template:
        """The progress bar (htmx polls it every second while the run runs)."""
        return Template(
            template_name="backlog/_progress.html", context={"run": await _run(run_id, request)}
        )

    @post(
        "/{run_id:int}/start",
        guards=[allow(Action.history_write)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def start(self, run_id: PathId, request: Request[Any, Any, Any]) -> Redirect:
        """Confirm: load the checked rows (a stopped run resumes; one a job is
        loading is left to it: nothing more is queued)."""
        await _run(run_id, request)
        await start_run(run_id=run_id, enqueue=_enqueue)
        return Redirect(path=f"/backlog/{run_id}", status_code=303)
