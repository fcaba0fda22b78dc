"""Pages of the other station: the 转送 form's action on the case page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, post
from litestar.response import Redirect

from rescue.errors import Conflict, InvalidInput
from rescue.permissions import Action, allow
from rescue.schemas import PathId
from rescue.stations import services
from rescue.stations.schemas import TransferCreate
from rescue.web.forms import parse, read_form

__all__ = ["TransferPages"]


class TransferPages(Controller):
    path = "/cases/{case_id:int}"
    include_in_schema = False

    @post(
        "/transfer",
        guards=[allow(Action.case_transfer)],
        status_code=303,
        media_type=MediaType.HTML,
    )
    async def transfer(self, case_id: PathId, request: Request[Any, Any, Any]) -> Any:
        """转送 the person to another station (same rules as
        ``POST /api/cases/{id}/transfers``). The case then belongs to the other
        station: the page goes back to the list of people."""
        from rescue.cases.pages import case_page

        values, _files = await read_form(request)
        data, errors = parse(TransferCreate, values)
        if data is None:
            return await case_page(
                case_id, request, form_errors={"transfer": errors}, form_values=values, status=400
            )
        try:
            await services.transfer_case(case_id=case_id, data=data, by=request.user)
        except (Conflict, InvalidInput) as exc:
            return await case_page(
                case_id,
                request,
                form_errors={"transfer": {"__all__": exc.detail}},
                form_values=values,
                status=exc.status_code,
            )
        if request.user.sees_station(data.to_station):
            return Redirect(path=f"/cases/{case_id}#transfers", status_code=303)
        return Redirect(path="/cases", status_code=303)
