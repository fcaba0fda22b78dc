"""HTTP routes of the other station: the case summary for a station taking part,
incoming persons, our notices with candidates elsewhere, 转送."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody

from rescue.permissions import Action, Participation, allow
from rescue.schemas import PathId
from rescue.stations import services
from rescue.stations.schemas import (
    CaseSummaryOut,
    IncomingOut,
    NoticeElsewhereOut,
    TransferCreate,
    TransferOut,
)

_BOTH = (Participation.notice_station, Participation.destination_station)


class StationController(Controller):
    path = "/api"
    tags = ("other station",)

    @get(
        "/cases/{case_id:int}/shared",
        summary="The case summary a station taking part may read",
        guards=[allow(Action.case_read, _BOTH)],
    )
    async def summary(self, case_id: PathId, request: Request[Any, Any, Any]) -> CaseSummaryOut:
        """For the case's own station, the station that registered the notice of a
        candidate on it, and the destination station of its return plan (fields:
        CaseSummaryOut; ``participation`` says why). Audited (the route names
        ``shared``). 403 other stations; 404 unknown case."""
        return await services.case_summary(case_id=case_id, by=request.user)

    @get("/stations", summary="Stations using this service", guards=[allow(Action.case_read)])
    async def stations(self) -> list[str]:
        """Stations with at least one active station_staff account: the accepted
        values of a return plan's ``destination_station`` and of a transfer's
        ``to_station``."""
        return await services.known_stations()

    @get(
        "/stations/incoming",
        summary="Persons other stations will hand over to ours (接收)",
        guards=[allow(Action.case_read)],
    )
    async def incoming(self, request: Request[Any, Any, Any]) -> list[IncomingOut]:
        """Return plans naming one of the caller's stations as destination, of
        cases still in care at another station (admin: all)."""
        return await services.incoming(stations=request.user.visible_stations())

    @get(
        "/stations/notices-elsewhere",
        summary="Our notices with candidates at other stations",
        guards=[allow(Action.notice_read)],
    )
    async def notices_elsewhere(self, request: Request[Any, Any, Any]) -> list[NoticeElsewhereOut]:
        """Candidates (not rejected) on other stations' cases for notices the
        caller's stations registered, best first (at most 200)."""
        user = request.user
        return await services.notices_elsewhere(stations=user.visible_stations() or [user.station])

    @post(
        "/cases/{case_id:int}/transfers",
        summary="转送: move a person in care to another station",
        guards=[allow(Action.case_transfer)],
    )
    async def transfer(
        self, case_id: PathId, data: JSONBody[TransferCreate], request: Request[Any, Any, Any]
    ) -> TransferOut:
        """The case (with its whole history) now belongs to ``to_station``. 201;
        400 unknown station (``accepted`` lists them), empty reason, date in the
        future or before admission; 409 case closed or already there; 404."""
        return await services.transfer_case(case_id=case_id, data=data, by=request.user)

    @get(
        "/cases/{case_id:int}/transfers",
        summary="A case's transfers (转送)",
        guards=[allow(Action.case_read)],
    )
    async def transfers(self, case_id: PathId) -> list[TransferOut]:
        """Oldest first. 404 unknown case."""
        return await services.list_transfers(case_id=case_id)
