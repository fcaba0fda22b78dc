"""Request bodies of history entered later (历史补录) and of backlog runs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec

from rescue.cases.tables import CaseStatus
from rescue.placements.tables import PlacementKind
from rescue.schemas import AwareDatetime
from rescue.searches.tables import AnnouncementChannel, PoliceCheckType, SearchKind

Notes = Annotated[str, msgspec.Meta(max_length=5000)]
Text300 = Annotated[str, msgspec.Meta(max_length=300)]


class HistoryPlacementIn(msgspec.Struct, forbid_unknown_fields=True):
    """An earlier placement (hospital, psychiatric hospital, outsourced care,
    welfare home, or back in the station) from the station's files.

    A period inside the placement open then (usually the station) splits it: the
    person returns there at ``ended_at``. Without ``ended_at`` it is a move: the
    placement open then ends at ``started_at``. The contract reference of
    outsourced care is optional here (old files often lack it).
    """

    kind: PlacementKind
    facility: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    responsible_contact: Text300 = ""
    contract_reference: Annotated[str, msgspec.Meta(max_length=100)] = ""


class HistoryStatusIn(msgspec.Struct, forbid_unknown_fields=True):
    """An earlier status change (e.g. stranded in 2014, settled in 2015), at
    ``occurred_at``; it follows the transitions table from the case's status."""

    to: CaseStatus
    occurred_at: AwareDatetime
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class HistorySearchIn(msgspec.Struct, forbid_unknown_fields=True):
    """An earlier search action on ``on_date`` (station's date). Columns used by
    ``kind`` as in rescue.searches.tables.SearchAction: ``channel`` for an
    announcement, ``police_unit`` for a DNA request, ``check_type`` for a police
    check; ``result_on``/``result`` for a DNA request with its result."""

    kind: SearchKind
    on_date: date
    channel: AnnouncementChannel | None = None
    reference: Text300 = ""
    police_unit: Annotated[str, msgspec.Meta(max_length=200)] = ""
    sample_id: Annotated[str, msgspec.Meta(max_length=100)] = ""
    check_type: PoliceCheckType | None = None
    result_on: date | None = None
    result: Notes = ""
    notes: Notes = ""
