"""Deadlines and alerts: computed from admission, status and recorded actions.

Alerts are derived, never stored, so nothing can delete one: an item disappears
only when the record that satisfies it exists (an announcement, a DNA request,
a DNA result, a care decision, an extension filing, a status change). When the
search ends (identification or leaving) items that were not yet overdue at that
moment lapse; items already overdue then stay listed until satisfied.

A case entered later than its admission (历史补录, ``cases.entered_at``): its
deadlines are computed from the real dates, and those that fell due before the
case was entered are ``historic`` — not overdue, not on the alert list, shown on
the case with the reason (nobody can announce within 24 hours of a 2014
admission in 2024). Deadlines still running at entry behave normally.

Also here: :func:`apply_stranded`, which moves cases over 10 days unidentified to
``stranded`` with a system timeline event (run by ``rescue deadlines apply`` and
the ``apply_deadlines`` Dramatiq actor).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from rescue import clock
from rescue.alerts.calendar import work_calendar
from rescue.alerts.rules import CHINA_TZ, PACKAGED, AlertKind, Rule, WorkCalendar, rules_for
from rescue.alerts.schemas import AlertOut
from rescue.cases.events import CaseEvent
from rescue.cases.tables import Case, CaseStatus
from rescue.errors import Conflict, NotFound
from rescue.i18n import _
from rescue.schemas import Page
from rescue.searches.tables import SearchAction, SearchKind
from rescue.settings import get_settings

__all__ = ["UNIDENTIFIED", "CaseFacts", "apply_stranded", "case_alerts", "list_alerts"]

S = CaseStatus
#: Statuses in which the identity search is running.
UNIDENTIFIED = frozenset({S.admitted, S.searching, S.stranded, S.settlement_pending, S.settled})


@dataclass
class DnaFact:
    id: int
    requested_on: date
    result_on: date | None


@dataclass
class CaseFacts:
    """What the rules need to know about one case."""

    case_id: int
    reference: str
    station: str
    status: CaseStatus
    admitted_at: datetime
    #: When the case was entered into this service (``entered_at`` or created_at).
    entered_at: datetime | None = None
    #: When the case left the unidentified statuses (identification or leaving).
    search_ended_at: datetime | None = None
    announcements: list[date] = field(default_factory=list)
    dna: list[DnaFact] = field(default_factory=list)
    kinds_recorded: set[SearchKind] = field(default_factory=set)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=CHINA_TZ)


def case_alerts(
    facts: CaseFacts,
    rules: dict[AlertKind, Rule],
    now: datetime,
    calendar: WorkCalendar = PACKAGED,
) -> list[AlertOut]:
    """Due and overdue items of one case, soonest first.

    Args:
        facts: the case's admission, status and recorded actions.
        rules: the station's rule table (:func:`rescue.alerts.rules.rules_for`).
        now: the moment to judge "overdue" (aware datetime).
        calendar: working days (loaded schedules; see rescue.alerts.calendar).
    """
    out: list[AlertOut] = []
    ended = facts.search_ended_at

    def add(
        kind: AlertKind, start: datetime, *, lapses: bool = True, subject: int | None = None
    ) -> None:
        rule = rules[kind]
        due, estimated = rule.period.due(start, calendar)
        if lapses and ended is not None and due > ended:
            return  # the search ended before this fell due: nothing outstanding
        historic = facts.entered_at is not None and due < facts.entered_at
        out.append(
            AlertOut(
                kind=kind,
                case_id=facts.case_id,
                case_reference=facts.reference,
                station=facts.station,
                due_at=due,
                overdue=due <= now and not historic,
                period=str(rule.period),
                counts_from=rule.counts_from,
                satisfied_by=rule.satisfied_by,
                source=rule.source,
                subject_id=subject,
                estimated=estimated,
                historic=historic,
                historic_reason=(
                    _(
                        "fell due on {due}, before the case was entered into the service "
                        "on {entered} (entered later); not applicable now",
                        due=clock.local(due).date().isoformat(),
                        entered=clock.local(facts.entered_at).date().isoformat(),
                    )
                    if historic and facts.entered_at is not None
                    else ""
                ),
            )
        )

    admitted = facts.admitted_at
    if not facts.announcements:
        add(AlertKind.announcement, admitted)
    else:
        add(AlertKind.announcement_update, _day_start(max(facts.announcements)))
    if not facts.dna:
        add(AlertKind.dna_request, admitted)
    for dna in facts.dna:
        if dna.result_on is None:
            add(AlertKind.dna_result, _day_start(dna.requested_on), subject=dna.id)
    if facts.status in (S.admitted, S.searching):
        add(AlertKind.stranded, admitted, lapses=False)
    for kind, record in (
        (AlertKind.care_decision, SearchKind.care_decision),
        (AlertKind.extension_filing, SearchKind.extension_filing),
    ):
        if record not in facts.kinds_recorded:
            add(kind, admitted)
    if facts.status in (S.admitted, S.searching, S.stranded):
        add(AlertKind.settlement_eligible, admitted, lapses=False)
    out.sort(key=lambda a: (a.due_at, a.kind.value))
    return out


async def _facts(case_rows: list[dict[str, Any]]) -> list[CaseFacts]:
    if not case_rows:
        return []
    ids = [r["id"] for r in case_rows]
    facts = {
        r["id"]: CaseFacts(
            case_id=r["id"],
            reference=r["reference"],
            station=r["station"],
            status=CaseStatus(r["status"]),
            admitted_at=r["admitted_at"],
            entered_at=r.get("entered_at"),
        )
        for r in case_rows
    }
    actions = await SearchAction.select(
        SearchAction.id,
        SearchAction.case,
        SearchAction.kind,
        SearchAction.on_date,
        SearchAction.result_on,
    ).where(SearchAction.case.is_in(ids) & SearchAction.voided_at.is_null())
    for a in actions:
        f = facts[a["case"]]
        kind = SearchKind(a["kind"])
        f.kinds_recorded.add(kind)
        if kind == SearchKind.announcement:
            f.announcements.append(a["on_date"])
        elif kind == SearchKind.dna_request:
            f.dna.append(DnaFact(a["id"], a["on_date"], a["result_on"]))
    ended_statuses = [s.value for s in CaseStatus if s not in UNIDENTIFIED]
    ends = (
        await CaseEvent.select(CaseEvent.case, CaseEvent.at, CaseEvent.occurred_at)
        .where(
            CaseEvent.case.is_in(ids)
            & (CaseEvent.kind == "status_changed")
            & CaseEvent.to_status.is_in(ended_statuses)
        )
        .order_by(CaseEvent.at)
    )
    for e in ends:
        f = facts[e["case"]]
        when = e["occurred_at"] or e["at"]  # an entry recorded later: when it happened
        if f.search_ended_at is None or when < f.search_ended_at:
            f.search_ended_at = when
    for f in facts.values():
        if f.status in UNIDENTIFIED:
            f.search_ended_at = None  # e.g. an identification later withdrawn
        elif f.search_ended_at is None:
            f.search_ended_at = f.admitted_at  # left before any event recorded it
    return [facts[i] for i in ids]


#: The case columns the rules read.
_CASE_COLUMNS = (
    Case.id,
    Case.reference,
    Case.station,
    Case.status,
    Case.admitted_at,
    Case.entered_at,
)


async def alerts_for_case(*, case_id: int, now: datetime | None = None) -> list[AlertOut]:
    """One case's due and overdue items, soonest first, including ``historic``
    ones (due before the case was entered; shown with their reason). Raises NotFound."""
    rows = await Case.select(*_CASE_COLUMNS).where(Case.id == case_id)
    if not rows:
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    [facts] = await _facts(rows)
    overrides = get_settings().deadlines.overrides
    return case_alerts(
        facts, rules_for(facts.station, overrides), now or clock.now(), await work_calendar()
    )


async def list_alerts(
    *,
    station: str | None = None,
    stations: list[str] | None = None,
    kind: AlertKind | None = None,
    overdue_only: bool = False,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> Page[AlertOut]:
    """Due and overdue items across cases, soonest first (overdue ones lead);
    without ``historic`` items (due before their case was entered, 历史补录).

    Args:
        station: only cases of this station.
        stations: only cases of these stations (the caller's visible stations;
            None: all).
        kind: only this kind of item.
        overdue_only: only items whose deadline has passed.
    """
    now = now or clock.now()
    query = Case.select(*_CASE_COLUMNS)
    if station is not None:
        query = query.where(Case.station == station)
    if stations is not None:
        query = query.where(Case.station.is_in(stations or [""]))
    overrides = get_settings().deadlines.overrides
    tables: dict[str, dict[AlertKind, Rule]] = defaultdict(dict)
    items: list[AlertOut] = []
    calendar = await work_calendar()
    for facts in await _facts(await query):
        if facts.station not in tables:
            tables[facts.station] = rules_for(facts.station, overrides)
        items.extend(case_alerts(facts, tables[facts.station], now, calendar))
    if kind is not None:
        items = [a for a in items if a.kind == kind]
    items = [a for a in items if not a.historic]  # due before the case was entered
    if overdue_only:
        items = [a for a in items if a.overdue]
    items.sort(key=lambda a: (a.due_at, a.case_id, a.kind.value))
    return Page(items=items[offset : offset + limit], total=len(items), limit=limit, offset=offset)


async def apply_stranded(*, now: datetime | None = None) -> list[int]:
    """Move every ``admitted``/``searching`` case whose ``stranded`` deadline has
    passed (default: 10 days in care, unidentified; 2015 意见) to ``stranded``,
    with a system ``status_changed`` event. Idempotent; returns the moved case ids.
    """
    from rescue.cases import flows

    now = now or clock.now()
    overrides = get_settings().deadlines.overrides
    rows = await Case.select(Case.id, Case.station, Case.admitted_at).where(
        Case.status.is_in([S.admitted.value, S.searching.value])
    )
    moved: list[int] = []
    for row in rows:
        rule = rules_for(row["station"], overrides)[AlertKind.stranded]
        if rule.period.after(row["admitted_at"]) > now:
            continue
        try:
            await flows.transition(
                case_id=row["id"],
                to=S.stranded,
                by=None,
                reason=f"{rule.period} in care and unidentified ({rule.source})",
            )
        except Conflict:
            continue  # changed meanwhile
        moved.append(int(row["id"]))
    return moved
