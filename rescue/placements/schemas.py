"""Request and response bodies for placements (安置去向 / 托养)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from rescue.placements.tables import PlacementKind
from rescue.schemas import AwareDatetime

Text300 = Annotated[str, msgspec.Meta(max_length=300)]


class PlacementCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A period at a facility. ``started_at`` defaults to now; leave ``ended_at`` empty
    for the current placement (the previous open one then ends when this starts).
    ``contract_reference`` (托养协议) is required for ``outsourced_care``."""

    kind: PlacementKind
    facility: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    responsible_contact: Text300 = ""
    contract_reference: Annotated[str, msgspec.Meta(max_length=100)] = ""
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None


class PlacementEnd(msgspec.Struct, forbid_unknown_fields=True):
    """End the placement at ``ended_at`` (default now)."""

    ended_at: AwareDatetime | None = None
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class DocumentOut(msgspec.Struct):
    id: int
    placement_id: int
    title: str
    media_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
    #: Presigned GET URL (only on the single-document route), valid ``url_expires_in`` s.
    url: str | None = None
    url_expires_in: int | None = None


class PlacementOut(msgspec.Struct):
    id: int
    case_id: int
    kind: PlacementKind
    facility: str
    reason: str
    responsible_contact: str
    contract_reference: str
    started_at: datetime
    ended_at: datetime | None
    current: bool
    documents: list[DocumentOut] = msgspec.field(default_factory=list)
    #: Recorded later (历史补录): ``created_at`` is when, ``created_by`` who.
    entered_later: bool = False
    created_by: int | None = None
    created_at: datetime | None = None


class PlacementList(msgspec.Struct):
    """A case's placements, oldest first, and the current one (None after leaving)."""

    current: PlacementOut | None
    items: list[PlacementOut]


class SettlementApprovalOut(msgspec.Struct):
    """A recorded approval of settlement (落户安置审批) with its document."""

    id: int
    case_id: int
    authority: str
    reference: str
    approved_on: date
    media_type: str
    sha256: str
    recorded_by: int | None
    created_at: datetime
