"""List kinds and their templates: the columns an external list's file must have.

Every kind shares one set of columns (Chinese headers, as the departments'
office software writes them; English names accepted too) and differs in which
are required. A file's header must name only known columns: an unknown column
is refused (it usually means the wrong template or a shifted header row).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["COLUMNS", "KINDS", "ListKind", "header_map"]


class ListKind(StrEnum):
    police_missing = "police_missing"  # 公安失踪人员信息
    hospital_unidentified = "hospital_unidentified"  # 医院身份不明患者
    station_intake = "station_intake"  # 其他救助站受助人员
    poverty_monitoring = "poverty_monitoring"  # 防返贫监测对象
    medical_insurance = "medical_insurance"  # 医保参保人员
    #: Not an external list: a station's own long-term residents with their
    #: history (在站人员历史补录), loaded through /api/backlog-runs (rescue.backlog).
    backlog = "backlog"


@dataclass(frozen=True)
class Column:
    field: str
    header: str  # Chinese header of the template


#: Template columns, in order: field name and Chinese header.
COLUMNS = (
    Column("external_id", "外部编号"),
    Column("name", "姓名"),
    Column("sex", "性别"),
    Column("birth_date", "出生日期"),
    Column("age", "年龄"),
    Column("id_number", "身份证号"),
    Column("home_place", "户籍地"),
    Column("place", "地点"),
    Column("event_date", "日期"),
    Column("note", "备注"),
    # A file name in the photos ZIP, or a URL into this service's object store
    # (rescue.imports.photos).
    Column("photo", "照片"),
)

#: Required fields per kind (besides ``external_id``, always required).
KINDS: dict[ListKind, frozenset[str]] = {
    ListKind.police_missing: frozenset({"name"}),
    ListKind.hospital_unidentified: frozenset({"sex"}),
    ListKind.station_intake: frozenset({"sex"}),
    ListKind.poverty_monitoring: frozenset({"name", "id_number"}),
    ListKind.medical_insurance: frozenset({"name", "id_number"}),
    ListKind.backlog: frozenset(),  # its own template: rescue.backlog.templates
}


def header_map() -> dict[str, str]:
    """Accepted header (Chinese or the field name, case-insensitive) → field."""
    out = {c.header: c.field for c in COLUMNS}
    out.update({c.field: c.field for c in COLUMNS})
    return out


def template_csv(kind: ListKind) -> bytes:
    """The kind's template: a UTF-8 CSV with BOM (opens correctly in Excel/WPS)."""
    if kind == ListKind.backlog:
        from rescue.backlog.templates import template_csv as backlog_template

        return backlog_template()
    return ("\ufeff" + ",".join(c.header for c in COLUMNS) + "\r\n").encode("utf-8")
