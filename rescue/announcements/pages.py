"""Pages for the 寻亲公告 (family-search announcement): publish from the case, print.

Publishing calls rescue.announcements.services.publish (the API's rules); the
poster is an A4 PDF (rescue.web.pdf) with the photo, exactly the published
fields (public_view: internal fields left out), the station's contact and a QR
code of the announcement's public address.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.response import Redirect, Template

from rescue import clock
from rescue.announcements import services
from rescue.announcements.schemas import AnnouncedField, AnnouncementIn
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.i18n import _, label
from rescue.permissions import Action, allow
from rescue.runtime import get_store
from rescue.schemas import PathId
from rescue.settings import get_settings
from rescue.web.forms import parse, read_form
from rescue.web.pdf import render_pdf

__all__ = ["AnnouncementPages", "qr_svg"]


def qr_svg(url: str) -> str:
    """A QR code of ``url`` as an SVG data URI (error correction M, ISO/IEC 18004)."""
    import segno

    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def poster_url(*, announcement_id: int, request: Request[Any, Any, Any]) -> str:
    """The announcement's public address as families reach it: ``PUBLIC_BASE_URL``
    + ``/public/announcements/{id}`` (a phone is sent on to the page), or, when
    unset, the staff browser's own address (the case page then warns)."""
    base = get_settings().site.public_base_url or str(request.base_url).rstrip("/")
    return f"{base}/public/announcements/{announcement_id}"


async def _form(
    case_id: int, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Template:
    """The publish form; the case's photos are offered as thumbnails to pick
    (``photo_id``; none = no photo)."""
    from rescue.photos.services import photo_summaries

    return Template(
        template_name="announcements/form.html",
        context={
            "case_id": case_id,
            "values": values,
            "errors": errors,
            "fields": [(f.value, label(f)) for f in AnnouncedField],
            "photos": await photo_summaries(case_id=case_id),
        },
        status_code=status,
    )


class AnnouncementPages(Controller):
    path = "/cases/{case_id:int}/announcement"
    include_in_schema = False

    @get("/", guards=[allow(Action.announcement_publish)])
    async def form(self, case_id: PathId) -> Template:
        """The publish form, filled from the case (and the current announcement)."""
        from rescue.cases.services import get_case

        case = await get_case(case_id=case_id)
        found = case.found_at or case.admitted_at
        values: dict[str, str] = {
            "found_place": case.found_place,
            "estimated_age": "" if case.estimated_age is None else str(case.estimated_age),
            "photo_id": str(case.photos[0].id) if case.photos else "",
            "height_cm": "" if case.height_cm is None else str(case.height_cm),
            "physical_features": case.description,
            "found_date": clock.local_date(found).isoformat(),
        }
        try:
            current = await services.get_for_staff(case_id=case_id)
            values.update({k: "" if v is None else str(v) for k, v in current.fields.items()})
            values["photo_id"] = values["photo_id"] if current.fields.get("photo") else ""
        except NotFound:
            pass
        return await _form(case_id, values, {})

    @post(
        "/", guards=[allow(Action.announcement_publish)], status_code=303, media_type=MediaType.HTML
    )
    async def publish(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """Publish (or replace) it; ``internal`` fields stay off the public view.
        Publishing twice replaces, so a double submit makes no second record."""
        values, _files = await read_form(request)
        form = await request.form()
        names = {f.value for f in AnnouncedField}
        internal = [v for k, v in form.multi_items() if k == "internal" and v in names]
        data, errors = parse(AnnouncementIn, values, internal=internal)
        if data is None:
            return await _form(case_id, values, errors, 400)
        try:
            await services.publish(case_id=case_id, data=data, by=request.user)
        except (InvalidInput, Conflict) as exc:
            return await _form(case_id, values, {"__all__": exc.detail}, exc.status_code)
        return Redirect(path=f"/cases/{case_id}#announcement", status_code=303)

    @post(
        "/unpublish",
        guards=[allow(Action.announcement_publish)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def unpublish(self, case_id: PathId, request: Request[Any, Any, Any]) -> Redirect:
        """Take the announcement off the public pages (as ``DELETE
        /api/cases/{id}/announcement``: idempotent, its public photo copies
        removed); the reason typed, if any, is kept with it. 404 without one."""
        values, _files = await read_form(request)
        await services.get_for_staff(case_id=case_id)
        reason = values.get("reason", "").strip()[:500] or "unpublished by staff"
        await services.unpublish(case_id=case_id, reason=reason)
        return Redirect(path=f"/cases/{case_id}#announcement", status_code=303)

    @get("/poster.pdf", guards=[allow(Action.case_read)])
    async def poster(self, case_id: PathId, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The A4 寻亲公告 poster (PDF). 404 unless published; 503 without a CJK font."""
        from rescue.announcements.tables import Announcement

        row = (
            await Announcement.select(Announcement.id, Announcement.published)
            .where(Announcement.case == case_id)
            .first()
        )
        if row is None or not row["published"]:
            raise NotFound(_("This person's announcement is not published."))
        view = await services.public_get(announcement_id=row["id"])
        photo = None
        if "photo_url" in view:
            data, media_type = await services.public_photo(
                announcement_id=row["id"], store=get_store()
            )
            photo = f"data:{media_type};base64," + base64.b64encode(data).decode()
        public_url = poster_url(announcement_id=row["id"], request=request)
        from rescue.cases.tables import Case

        case = await Case.select(Case.station).where(Case.id == case_id).first()
        pdf = await render_pdf(
            "announcements/poster.html",
            view=view,
            home=get_settings().site.station(case["station"] if case else ""),
            photo=photo,
            qr=qr_svg(public_url),
            public_url=public_url,
            fields=[f for f in AnnouncedField if f.value in view and f != AnnouncedField.photo],
        )
        return Response(
            content=pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="announcement-{row["id"]}.pdf"'},
        )
