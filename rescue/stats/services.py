"""Statistics from the stored records: how many were taken in, identified (how
and how fast), stranded, settled, how they left, and how the review and the
external-list warnings performed.

Every figure is counted from timestamps of records (cases, the case timeline,
candidates and their evidence, warnings) that fall in the period — station
dates ``date_from``..``date_to`` inclusive, in ``STATION_TIMEZONE`` — for the
cases of ``stations`` (None: all).

Identification channel of a confirmed candidate, first that applies:
``external_list`` (it came from a verified 比对预警), ``police_dna``,
``police_face``, ``announcement_response`` (announcement_clue evidence),
``face_match`` (the service's own face matching), ``interview_clue`` (a staff
lead), ``other``. ``family_online_request`` is counted once notices record
that they came through the online request form (not yet distinguishable).
"""

from __future__ import annotations

import csv
import io
import statistics
from datetime import date, timedelta
from typing import Any

from rescue import clock
from rescue.cases.events import CaseEvent
from rescue.cases.tables import TERMINAL_STATUSES, Case, CaseStatus, LeavingCategory
from rescue.errors import InvalidInput
from rescue.i18n import _, use_locale
from rescue.i18n import label as enum_label
from rescue.imports.tables import ImportWarning
from rescue.matching.tables import Candidate, CandidateEvidence, CandidateStatus
from rescue.stats.schemas import Statistics

__all__ = [
    "CHANNELS",
    "DAY_BUCKETS",
    "compute",
    "leaving_code",
    "statistics_csv",
    "statistics_rows",
    "statistics_xlsx",
]

CHANNELS = (
    "face_match",
    "police_dna",
    "police_face",
    "announcement_response",
    "interview_clue",
    "external_list",
    "family_online_request",
    "other",
)
#: Buckets of days from admission to identification (upper bounds, inclusive).
DAY_BUCKETS = (("0-1", 1), ("2-3", 3), ("4-7", 7), ("8-10", 10), ("11-30", 30), ("31-90", 90))
_EVIDENCE_CHANNEL = (
    ("police_dna", "police_dna"),
    ("police_face", "police_face"),
    ("announcement_clue", "announcement_response"),
    ("face", "face_match"),
    ("staff", "interview_clue"),
)


def leaving_code(status: str) -> str:
    """The official 离站方式 category (民政部救助管理统计, ``LeavingCategory``) of a
    case that left in ``status``: the workflow's one table of them
    (rescue.cases.flows.LEAVING_CATEGORY)."""
    from rescue.cases.flows import LEAVING_CATEGORY

    return LEAVING_CATEGORY[CaseStatus(status)].value


def _bucket(days: float) -> str:
    for name, upper in DAY_BUCKETS:
        if days <= upper:
            return name
    return ">90"


async def compute(*, date_from: date, date_to: date, stations: list[str] | None) -> Statistics:
    """The figures of one period. Raises InvalidInput when ``date_to`` < ``date_from``."""
    if date_to < date_from:
        raise InvalidInput(
            _("the period ends before it starts"), accepted={"date_from": "<= date_to"}
        )
    start = clock.start_of_local_day(date_from)
    end = clock.start_of_local_day(date_to + timedelta(days=1))

    def in_period(column: Any) -> Any:
        return (column >= start) & (column < end)

    case_where: Any = in_period(Case.admitted_at)
    if stations is not None:
        case_where &= Case.station.is_in(stations or [""])
    admitted = await Case.count().where(case_where)

    station_ok: Any = (
        Candidate.case.station.is_in(stations or [""]) if stations is not None else None
    )

    def scoped(where: Any) -> Any:
        return where if station_ok is None else where & station_ok

    confirmed = await Candidate.select(
        Candidate.id, Candidate.case, Candidate.decided_at, Candidate.case.admitted_at
    ).where(
        scoped(
            in_period(Candidate.decided_at) & (Candidate.status == CandidateStatus.confirmed.value)
        )
    )
    ids = [int(c["id"]) for c in confirmed]
    kinds: dict[int, set[str]] = {}
    for e in (
        await CandidateEvidence.select(CandidateEvidence.candidate, CandidateEvidence.kind).where(
            CandidateEvidence.candidate.is_in(ids)
        )
        if ids
        else []
    ):
        kinds.setdefault(int(e["candidate"]), set()).add(e["kind"])
    from_warnings = {
        int(w["candidate_id"])
        for w in (
            await ImportWarning.select(ImportWarning.candidate_id).where(
                ImportWarning.candidate_id.is_in(ids)
            )
            if ids
            else []
        )
    }
    by_channel = dict.fromkeys(CHANNELS, 0)
    days: list[float] = []
    buckets = {name: 0 for name, _upper in DAY_BUCKETS} | {">90": 0}
    seen_cases: set[int] = set()
    for c in sorted(confirmed, key=lambda r: r["decided_at"]):
        if int(c["case"]) in seen_cases:
            continue
        seen_cases.add(int(c["case"]))
        channel = "other"
        if int(c["id"]) in from_warnings:
            channel = "external_list"
        else:
            for kind, name in _EVIDENCE_CHANNEL:
                if kind in kinds.get(int(c["id"]), set()):
                    channel = name
                    break
        by_channel[channel] += 1
        waited = (c["decided_at"] - c["case.admitted_at"]).total_seconds() / 86400
        days.append(waited)
        buckets[_bucket(waited)] += 1

    event_where: Any = in_period(CaseEvent.at)
    if stations is not None:
        event_where &= CaseEvent.case.station.is_in(stations or [""])
    moves = await CaseEvent.select(CaseEvent.case, CaseEvent.to_status).where(
        event_where & CaseEvent.to_status.is_not_null()
    )
    stranded = {int(m["case"]) for m in moves if m["to_status"] == CaseStatus.stranded.value}
    settled = {int(m["case"]) for m in moves if m["to_status"] == CaseStatus.settled.value}
    left: dict[str, int] = {c.value: 0 for c in LeavingCategory}  # every category, as reported
    terminal = {s.value for s in TERMINAL_STATUSES}
    for m in moves:
        if m["to_status"] in terminal:
            key = leaving_code(m["to_status"])
            left[key] = left.get(key, 0) + 1

    proposed = await Candidate.count().where(scoped(in_period(Candidate.created_at)))
    rejected = await Candidate.count().where(
        scoped(
            in_period(Candidate.decided_at) & (Candidate.status == CandidateStatus.rejected.value)
        )
    )
    n_confirmed = len(confirmed)

    warn_scope: Any = (
        ImportWarning.station.is_in(stations or [""]) if stations is not None else None
    )

    def warned(where: Any) -> Any:
        return where if warn_scope is None else where & warn_scope

    raised = await ImportWarning.count().where(warned(in_period(ImportWarning.raised_at)))
    verified = await ImportWarning.count().where(warned(in_period(ImportWarning.verified_at)))
    helped = await ImportWarning.count().where(
        warned(in_period(ImportWarning.verified_at) & (ImportWarning.outcome == "helped"))
    )
    return Statistics(
        date_from=date_from,
        date_to=date_to,
        stations=stations,
        admitted=admitted,
        identified=len(seen_cases),
        identified_by_channel=by_channel,
        median_days_to_identification=round(statistics.median(days), 2) if days else None,
        days_to_identification=buckets,
        became_stranded=len(stranded),
        settled=len(settled),
        left_by_outcome=left,
        candidates_proposed=proposed,
        candidates_confirmed=n_confirmed,
        candidates_rejected=rejected,
        review_precision=(
            round(n_confirmed / (n_confirmed + rejected), 4) if n_confirmed + rejected else None
        ),
        warnings_raised=raised,
        warnings_verified=verified,
        warnings_helped=helped,
    )


_LABELS = {
    "admitted": "入站人数",
    "identified": "查明身份人数",
    "median_days_to_identification": "入站至查明身份天数（中位数）",
    "became_stranded": "转为滞留人数",
    "settled": "落户安置人数",
    "candidates_proposed": "比对候选（新增）",
    "candidates_confirmed": "比对候选（确认）",
    "candidates_rejected": "比对候选（否定）",
    "review_precision": "审核准确率",
    "warnings_raised": "预警（发出）",
    "warnings_verified": "预警（已核实）",
    "warnings_helped": "预警（核实有效）",
}
CHANNEL_LABELS = {
    "face_match": "人脸比对",
    "police_dna": "公安DNA比对",
    "police_face": "公安人像比对",
    "announcement_response": "寻亲公告回应",
    "interview_clue": "问询线索",
    "external_list": "外部名单比对预警",
    "family_online_request": "家属网上寻亲",
    "other": "其他",
}


def statistics_rows(stats: Statistics) -> list[tuple[str, Any]]:
    """The figures as (指标, 数值) rows in Chinese: the CSV's and the Excel sheet's
    lines, in the same order (period, stations, totals, channels, days, outcomes)."""
    rows: list[tuple[str, Any]] = [
        ("统计期间", f"{stats.date_from.isoformat()} 至 {stats.date_to.isoformat()}"),
        ("救助站", "、".join(stats.stations) if stats.stations is not None else "全部"),
    ]
    for key, label in _LABELS.items():
        value = getattr(stats, key)
        rows.append((label, "" if value is None else value))
    for channel, count in stats.identified_by_channel.items():
        rows.append((f"查明途径：{CHANNEL_LABELS[channel]}", count))
    for bucket, count in stats.days_to_identification.items():
        rows.append((f"查明用时：{bucket} 天", count))
    with use_locale("zh_CN"):  # the downloads are in Chinese whatever the page's language
        for outcome, count in stats.left_by_outcome.items():
            rows.append((f"离站方式：{enum_label(LeavingCategory(outcome))}", count))
    return rows


def statistics_csv(stats: Statistics) -> bytes:
    """The figures as a two-column CSV (指标, 数值) in Chinese, UTF-8 with BOM."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["指标", "数值"])
    writer.writerows(statistics_rows(stats))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def statistics_xlsx(stats: Statistics) -> bytes:
    """The figures as an Excel .xlsx workbook (openpyxl, the library that reads
    imported lists): one sheet 统计 with the columns 指标, 数值 (numbers as numbers)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("统计")
    sheet.append(["指标", "数值"])
    for label, value in statistics_rows(stats):
        sheet.append([label, value])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
