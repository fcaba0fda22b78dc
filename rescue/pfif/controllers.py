"""HTTP routes for PFIF 1.4 exchange (People Finder Interchange Format)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery

from rescue.permissions import Action, allow
from rescue.pfif import services
from rescue.pfif.schemas import PfifImportReport, PfifRecordOut
from rescue.schemas import PathId
from rescue.settings import get_settings


class PfifController(Controller):
    path = "/api"
    tags = ("pfif",)

    @get(
        "/pfif/export",
        summary="PFIF 1.4 XML of open notices and published announcements",
        guards=[allow(Action.pfif_export)],
    )
    async def export(
        self, notices: FromQuery[bool] = True, announcements: FromQuery[bool] = True
    ) -> Response[bytes]:
        """``application/xml``, persons with nested notes, each with ``expiry_date``
        and ``source_*``. Announced cases carry only what the announcement publishes;
        reporters' contacts are never exported."""
        body = await services.export_pfif(
            settings=get_settings().pfif, notices=notices, announcements=announcements
        )
        return Response(
            body,
            media_type="application/xml; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="pfif-1.4.xml"'},
        )

    @post(
        "/pfif/import",
        status_code=200,
        summary="Import a PFIF 1.1–1.4 file as notices with their notes",
        guards=[allow(Action.pfif_import)],
    )
    async def import_(self, request: Request[Any, Any, Any]) -> PfifImportReport:
        """Body: the XML file itself (``Content-Type: application/xml``). Valid
        records become or update notices; malformed ones are listed in ``refused``
        with their reason. 400 when the file is not PFIF (or unsafe XML: DTDs and
        entities are refused); 413 over 50 MB."""
        return await services.import_pfif(
            data=await request.body(), by=request.user, settings=get_settings().pfif
        )

    @get(
        "/notices/{notice_id:int}/pfif",
        summary="The PFIF record a notice was imported from, with its notes",
        guards=[allow(Action.notice_read)],
    )
    async def record(self, notice_id: PathId) -> PfifRecordOut:
        """Fields under PFIF 1.4 names; notes with ``status`` (believed_alive,
        information_sought …) and ``linked_person_record_id``. 404 if the notice
        was not imported from PFIF."""
        return await services.pfif_record(notice_id=notice_id)
