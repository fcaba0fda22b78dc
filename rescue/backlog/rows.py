"""Checking backlog rows (pure, no I/O): each row becomes a plan or its problems.

Dates are the station's local dates (rescue.clock). Moments derived from them:
the admission at 00:00, everything else (placements, status changes) at 12:00
of its day, so a placement or status change on the admission day lies after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rescue import clock
from rescue.alerts.rules import AlertKind, Rule
from rescue.backlog.templates import KEY, PLACEMENT_KINDS, STATUSES, header
from rescue.cases.services import EARLIEST_ADMISSION
from rescue.cases.tables import CaseStatus
from rescue.i18n import _
from rescue.imports.reader import OpenedFile, parse_date
from rescue.placements.tables import PlacementKind

__all__ = ["PlacementPlan", "RowPlan", "check_rows", "path_to", "split_names"]

_SEXES = {
    "男": "male",
    "女": "female",
    "未知": "unknown",
    "male": "male",
    "female": "female",
    "unknown": "unknown",
    "": "unknown",
}
_SEPARATORS = re.compile(r"[;；\n]+")


def split_names(text: str) -> list[str]:
    """``a.jpg; b.jpg`` → ``["a.jpg", "b.jpg"]`` (``;``, ``；``, ``,``, ``，`` or line breaks)."""
    return [n.strip() for n in re.split(r"[;；,，\n]+", text or "") if n.strip()]


def noon(day: date) -> datetime:
    """12:00 of a station-local date."""
    return clock.start_of_local_day(day) + timedelta(hours=12)


@dataclass
class PlacementPlan:
    kind: PlacementKind
    facility: str
    start: datetime
    end: datetime | None


@dataclass
class RowPlan:
    """What one row creates; ``errors`` (column header, reason) when it cannot."""

    row: int
    key: str
    case: dict[str, Any] = field(default_factory=dict)
    admitted_at: datetime | None = None
    history: list[PlacementPlan] = field(default_factory=list)
    current: PlacementPlan | None = None
    status: CaseStatus = CaseStatus.admitted
    status_at: datetime | None = None
    photos: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def path_to(target: CaseStatus) -> list[CaseStatus]:
    """The shortest way from ``admitted`` to ``target`` in the transitions table
    through changes staff make (e.g. settled: stranded → settlement_pending → settled)."""
    from rescue.cases.flows import STAFF, TRANSITIONS

    paths: dict[CaseStatus, list[CaseStatus]] = {CaseStatus.admitted: []}
    queue = [CaseStatus.admitted]
    while queue:
        here = queue.pop(0)
        if here == target:
            return paths[here]
        for (source, to), rule in TRANSITIONS.items():
            if source == here and to not in paths and rule.roles & STAFF:
                paths[to] = [*paths[here], to]
                queue.append(to)
    raise ValueError(target)


def _cell(value: Any) -> str:
    """A cell as text; an Excel date (datetime) as its ISO date."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _day(row: RowPlan, fields: dict[str, str], name: str) -> date | None:
    text = fields.get(name, "")
    if not text:
        return None
    try:
        iso = parse_date(text)
    except ValueError:
        iso = None
    if not iso:
        row.errors.append(
            (header(name), _("{value} is not a date like 2015-06-01", value=repr(text)))
        )
        return None
    return date.fromisoformat(iso)


def _kind(row: RowPlan, column: str, text: str) -> PlacementKind | None:
    kind = PLACEMENT_KINDS.get(text.strip())
    if kind is None:
        row.errors.append(
            (
                header(column),
                _(
                    "{value} is not a placement kind (站内, 医院, 精神病院, 站外托养, 福利院)",
                    value=repr(text),
                ),
            )
        )
    return kind


def _history(row: RowPlan, text: str, admitted: date, today: date) -> None:
    column = header("history")
    for n, entry in enumerate(_SEPARATORS.split(text), start=1):
        entry = entry.strip()
        if not entry:
            continue
        parts = [p.strip() for p in entry.split("|")]
        if len(parts) != 4 or not parts[1] or not parts[2]:
            row.errors.append(
                (
                    column,
                    _(
                        "entry {n} {entry} is not 类型|机构|开始日期|结束日期",
                        n=n,
                        entry=repr(entry),
                    ),
                )
            )
            continue
        kind = _kind(row, "history", parts[0])
        try:
            start = date.fromisoformat(parse_date(parts[2]) or "")
            end = date.fromisoformat(parse_date(parts[3]) or "") if parts[3] else None
        except ValueError:
            row.errors.append((column, _("entry {n} has a date that is not like 2015-06-01", n=n)))
            continue
        if start < admitted or start > today or (end is not None and (end <= start or end > today)):
            row.errors.append(
                (
                    column,
                    _(
                        "entry {n}: the period must start on or after the admission "
                        "({admitted}), end after its start and not in the future",
                        n=n,
                        admitted=admitted.isoformat(),
                    ),
                )
            )
            continue
        if kind is not None:
            row.history.append(
                PlacementPlan(kind, parts[1], noon(start), noon(end) if end else None)
            )
    row.history.sort(key=lambda p: p.start)
    for earlier, later in zip(row.history, row.history[1:], strict=False):
        if earlier.end is None or earlier.end > later.start:
            row.errors.append(
                (column, _("the earlier placements overlap; give each an end before the next"))
            )
            break


def check_row(
    number: int,
    raw: dict[str, Any],
    *,
    rules: dict[AlertKind, Rule],
    archive: set[str] | None,
) -> RowPlan:
    """One row's plan, or its problems (column header, reason in the active language).

    Args:
        rules: the station's deadline rules (10 days to stranded, 3 months to settled).
        archive: the file names in the uploaded ZIP (None: no ZIP).
    """
    fields = {k: _cell(v) for k, v in raw.items() if k and v is not None}
    row = RowPlan(row=number, key=fields.get(KEY, ""))
    today = clock.today()
    if not row.key:
        row.errors.append((header(KEY), _("required: the station's file number")))
    sex = _SEXES.get(fields.get("sex", "").lower())
    if sex is None:
        row.errors.append(
            (header("sex"), _("{value} is not 男, 女 or 未知", value=repr(fields["sex"])))
        )
    case: dict[str, Any] = {"sex": sex or "unknown"}
    if fields.get("reported_name"):
        case["reported_name"] = fields["reported_name"][:100]
    year = fields.get("birth_year", "")
    if year:
        if not re.fullmatch(r"\d{4}", year) or not 1900 <= int(year) <= today.year:
            row.errors.append(
                (header("birth_year"), _("{value} is not a year like 1970", value=repr(year)))
            )
        else:
            case["birth_date_estimate"] = date(int(year), 7, 1)
    age = fields.get("age", "")
    if age:
        if not re.fullmatch(r"\d{1,3}", age) or int(age) > 120:
            row.errors.append((header("age"), _("{value} is not an age in years", value=repr(age))))
        else:
            case["estimated_age"] = int(age)
    for name, limit in (("found_place", 300), ("description", 10_000), ("dialect", 100)):
        if fields.get(name):
            case[name] = fields[name][:limit]
    admitted = _day(row, fields, "admitted_on")
    if admitted is None and not fields.get("admitted_on"):
        row.errors.append((header("admitted_on"), _("required: the real admission date")))
    earliest = EARLIEST_ADMISSION.date()
    if admitted is not None and (admitted < earliest or admitted > today):
        row.errors.append(
            (
                header("admitted_on"),
                _(
                    "the admission must lie between {earliest} and today",
                    earliest=earliest.isoformat(),
                ),
            )
        )
        admitted = None
    found = _day(row, fields, "found_on")
    if found is not None and admitted is not None and found > admitted:
        row.errors.append(
            (header("found_on"), _("the person is found on or before the admission date"))
        )
    if found is not None:
        case["found_at"] = clock.start_of_local_day(found)
    row.case = case
    status_text = fields.get("status", "")
    status = STATUSES.get(status_text)
    if status is None:
        row.errors.append(
            (
                header("status"),
                _(
                    "{value} is not a status of a person in care (入站, 寻亲中, 滞留, "
                    "待落户安置, 落户安置)",
                    value=repr(status_text),
                ),
            )
        )
    status_on = _day(row, fields, "status_on")
    if (
        status not in (None, CaseStatus.admitted)
        and status_on is None
        and not fields.get("status_on")
    ):
        row.errors.append((header("status_on"), _("required with this status")))
    if admitted is None:
        return row
    row.admitted_at = clock.start_of_local_day(admitted)
    if status_on is not None and (status_on < admitted or status_on > today):
        row.errors.append(
            (
                header("status_on"),
                _("must lie between the admission ({admitted}) and today", admitted=admitted),
            )
        )
        status_on = None
    if fields.get("history"):
        _history(row, fields["history"], admitted, today)
    kind_text = fields.get("placement_kind", "")
    if kind_text:
        kind = _kind(row, "placement_kind", kind_text)
        facility = fields.get("placement_facility", "")
        since = _day(row, fields, "placement_since")
        if not facility:
            row.errors.append((header("placement_facility"), _("required with a placement")))
        if since is None and not fields.get("placement_since"):
            row.errors.append((header("placement_since"), _("required with a placement")))
        if since is not None and (since < admitted or since > today):
            row.errors.append(
                (
                    header("placement_since"),
                    _("must lie between the admission ({admitted}) and today", admitted=admitted),
                )
            )
        elif since is not None and kind is not None and facility:
            row.current = PlacementPlan(kind, facility, noon(since), None)
            last = row.history[-1] if row.history else None
            if last is not None and (last.end is None or last.end > row.current.start):
                row.errors.append(
                    (
                        header("history"),
                        _("the earlier placements must end before the current one starts"),
                    )
                )
    if status is not None and status_on is not None:
        row.status, row.status_at = status, noon(status_on)
        _status_rules(row, rules)
    elif status == CaseStatus.admitted:
        row.status = status
    names = split_names(fields.get("photos", ""))
    missing = [n for n in names if archive is None or n not in archive]
    if missing:
        row.errors.append(
            (
                header("photos"),
                _(
                    "not in the uploaded ZIP of photos: {names}",
                    names=", ".join(missing),
                ),
            )
        )
    row.photos = names
    return row


def _status_rules(row: RowPlan, rules: dict[AlertKind, Rule]) -> None:
    """The time and placement rules of the status path, judged at the status date."""
    assert row.admitted_at is not None
    assert row.status_at is not None
    path = path_to(row.status)
    for kind, status in (
        (AlertKind.stranded, CaseStatus.stranded),
        (AlertKind.settlement_eligible, CaseStatus.settled),
    ):
        due = rules[kind].period.after(row.admitted_at)
        if status in path and due > row.status_at:
            row.errors.append(
                (
                    header("status_on"),
                    _(
                        "a case can become {status} only after {period} in care (from {due})",
                        status=status.value,
                        period=str(rules[kind].period),
                        due=clock.local_date(due).isoformat(),
                    ),
                )
            )
    if row.status == CaseStatus.settled:
        here = row.current
        if here is None or here.kind != PlacementKind.welfare_home or here.start > row.status_at:
            row.errors.append(
                (
                    header("placement_kind"),
                    _(
                        "落户安置 needs the current placement at a welfare home (福利院) "
                        "since on or before the status date"
                    ),
                )
            )


def check_rows(
    opened: OpenedFile, *, rules: dict[AlertKind, Rule], archive: set[str] | None
) -> Iterator[RowPlan]:
    """Each data row's plan (1 = the first row after the header); a 编号 seen
    before in the file is a problem of the later row. Empty rows are skipped."""
    seen: dict[str, int] = {}
    for number, cells in enumerate(opened.rows, start=1):
        if all(c is None or str(c).strip() == "" for c in cells):
            continue
        raw = dict(zip(opened.fields, cells, strict=False))
        plan = check_row(number, raw, rules=rules, archive=archive)
        if len(cells) > len(opened.fields) and any(
            str(c or "").strip() for c in cells[len(opened.fields) :]
        ):
            plan.errors.append(("", _("the row has more cells than the header has columns")))
        if plan.key:
            if plan.key in seen:
                plan.errors.append(
                    (header(KEY), _("the same 编号 as row {row}", row=seen[plan.key]))
                )
            else:
                seen[plan.key] = number
        yield plan
