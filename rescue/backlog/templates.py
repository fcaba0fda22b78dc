"""The backlog template (在站人员历史补录): one row per person still in care.

One file (CSV in UTF-8 or GBK, or Excel .xlsx: its first sheet), one row per
person; earlier placements go in one cell (``历史安置``), several separated by
``;`` (or ``；`` or a line break), each ``类型|机构|开始日期|结束日期`` (the end
may be left empty only for the last one when there is no current placement).
Photos come as a ZIP of image files beside the table; ``照片`` names them
(several separated by ``;``). See docs/workflow.md "Backlog".
"""

from __future__ import annotations

from rescue.cases.tables import CaseStatus
from rescue.imports.templates import Column
from rescue.placements.tables import PlacementKind

__all__ = ["COLUMNS", "KEY", "PLACEMENT_KINDS", "STATUSES", "header", "template_csv"]

KEY = "key"

#: Template columns, in order: field name and Chinese header.
COLUMNS = (
    Column(KEY, "编号"),  # the station's own file number (档案号), unique per station
    Column("reported_name", "姓名"),  # as reported or as known; empty: 无名氏-NNNN
    Column("sex", "性别"),
    Column("birth_year", "出生年份"),
    Column("age", "年龄"),
    Column("found_on", "发现日期"),
    Column("found_place", "发现地点"),
    Column("admitted_on", "入站日期"),
    Column("status", "当前状态"),
    Column("status_on", "状态日期"),
    Column("placement_kind", "当前安置类型"),
    Column("placement_facility", "当前安置机构"),
    Column("placement_since", "安置开始日期"),
    Column("history", "历史安置"),
    Column("description", "体貌特征"),
    Column("dialect", "方言"),
    Column("photos", "照片"),
)

#: The header of each field (for per-row errors).
HEADERS = {c.field: c.header for c in COLUMNS}

#: Statuses a backlog row may give (a person still in care), Chinese or English.
STATUSES: dict[str, CaseStatus] = {
    "入站": CaseStatus.admitted,
    "寻亲中": CaseStatus.searching,
    "滞留": CaseStatus.stranded,
    "待落户安置": CaseStatus.settlement_pending,
    "落户安置": CaseStatus.settled,
    **{
        s.value: s
        for s in (
            CaseStatus.admitted,
            CaseStatus.searching,
            CaseStatus.stranded,
            CaseStatus.settlement_pending,
            CaseStatus.settled,
        )
    },
}

#: Placement kinds, Chinese or English.
PLACEMENT_KINDS: dict[str, PlacementKind] = {
    "站内": PlacementKind.in_station,
    "站内照料": PlacementKind.in_station,
    "救助站": PlacementKind.in_station,
    "医院": PlacementKind.general_hospital,
    "综合医院": PlacementKind.general_hospital,
    "定点医院": PlacementKind.general_hospital,
    "精神病院": PlacementKind.psychiatric_hospital,
    "精神病医院": PlacementKind.psychiatric_hospital,
    "精神专科医院": PlacementKind.psychiatric_hospital,
    "站外托养": PlacementKind.outsourced_care,
    "托养": PlacementKind.outsourced_care,
    "福利院": PlacementKind.welfare_home,
    **{k.value: k for k in PlacementKind},
}


def header(field: str) -> str:
    """The Chinese header of a template field."""
    return HEADERS.get(field, field)


def template_csv() -> bytes:
    """The template: a UTF-8 CSV with BOM (opens correctly in Excel/WPS), header
    only (an example row would be loaded as a person)."""
    return ("\ufeff" + ",".join(c.header for c in COLUMNS) + "\r\n").encode("utf-8")
