"""A case's stay (admission to leaving) and the order of recorded times.

Every time staff record (a search action's date, a handover, a return plan, a
DNA result) must fall inside the person's stay — not before admission (入站),
not after leaving (离站), not in the future — and after what it depends on (a
handover after the identification and not before the return plan was made —
its recorded time, not its planned departure date: families often arrive
early; a DNA result on or after its request). Dates typed by staff are the
station's local dates (rescue.clock). A time typed on a page to the minute
stands for the whole minute (``until``: its last instant), so a handover typed
in the minute of the identification is not "before" it. Issue 12 item 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from rescue import clock
from rescue.cases.events import CaseEvent
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus
from rescue.errors import InvalidInput, NotFound
from rescue.i18n import _

__all__ = ["Stay", "stay_of"]


@dataclass(frozen=True)
class Stay:
    """When a case's person arrived and left, and when they were identified."""

    case_id: int
    admitted_at: datetime
    #: The first change to a leaving status (离站), or None while in care.
    left_at: datetime | None
    #: The latest change to ``identified``, or None.
    identified_at: datetime | None

    def _end(self) -> datetime:
        now = clock.now()
        return min(self.left_at, now) if self.left_at is not None else now

    def _outside(self, name: str, value: str, start: str, end: str) -> InvalidInput:
        return InvalidInput(
            _(
                "{name} {value} lies outside the case's stay ({start} to {end})",
                name=name,
                value=value,
                start=start,
                end=end,
            ),
            accepted=f"{start} .. {end}",
        )

    def check_moment(self, moment: datetime, name: str, until: datetime | None = None) -> None:
        """Raise InvalidInput unless admission <= ``moment`` <= leaving (or now).

        ``until``: the last instant ``moment`` stands for (a minute typed on a
        page: ``moment`` + 59.999999 s); then the interval must touch the stay."""
        end = self._end()
        if (until or moment) < self.admitted_at or moment > end:
            raise self._outside(
                name,
                clock.local(moment).isoformat(timespec="minutes"),
                clock.local(self.admitted_at).isoformat(timespec="minutes"),
                clock.local(end).isoformat(timespec="minutes"),
            )

    def check_day(self, day: date, name: str) -> None:
        """Raise InvalidInput unless the admission's local date <= ``day`` <= the
        leaving's local date (or the station's today)."""
        start, end = clock.local_date(self.admitted_at), clock.local_date(self._end())
        if day < start or day > end:
            raise self._outside(name, day.isoformat(), start.isoformat(), end.isoformat())

    @staticmethod
    def check_after(value: datetime | date, name: str, earlier: datetime | date, what: str) -> None:
        """Raise InvalidInput if ``value`` is before ``earlier`` (what it depends on)."""
        if isinstance(value, datetime) != isinstance(earlier, datetime):
            value = clock.local_date(value) if isinstance(value, datetime) else value
            earlier = clock.local_date(earlier) if isinstance(earlier, datetime) else earlier
        if value < earlier:  # type: ignore[operator]
            shown = (
                clock.local(earlier).isoformat(timespec="minutes")
                if isinstance(earlier, datetime)
                else earlier.isoformat()
            )
            raise InvalidInput(
                _("{name} is before {what} ({when})", name=name, what=what, when=shown),
                accepted=f">= {shown}",
            )


async def stay_of(*, case_id: int) -> Stay:
    """The stay of case ``case_id``. Raises NotFound."""
    row = await Case.select(Case.admitted_at).where(Case.id == case_id).first()
    if row is None:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    events = (
        await CaseEvent.select(CaseEvent.to_status, CaseEvent.at, CaseEvent.occurred_at)
        .where((CaseEvent.case == case_id) & (CaseEvent.kind == "status_changed"))
        .order_by(CaseEvent.id)
    )
    terminal = {s.value for s in TERMINAL_STATUSES}
    for e in events:  # an entry recorded later (历史补录) counts when it happened
        e["at"] = e["occurred_at"] or e["at"]
    left = next((e["at"] for e in events if e["to_status"] in terminal), None)
    identified = [e["at"] for e in events if e["to_status"] == CaseStatus.identified.value]
    return Stay(
        case_id=case_id,
        admitted_at=row["admitted_at"],
        left_at=left,
        identified_at=identified[-1] if identified else None,
    )
