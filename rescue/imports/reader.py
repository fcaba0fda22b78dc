"""Reading an external list's file (CSV or Excel) row by row, and checking each row.

Encodings: a UTF-8 file with or without BOM, or GBK/GB18030 (what Chinese office
software writes by default: Excel and WPS save CSV in the system code page).
A file that is neither is refused as a whole, as is a header naming a column
no template has. Rows are checked one by one; a bad row is reported with its
number (1 = the first data row after the header) and column and skipped.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from rescue.i18n import _
from rescue.imports.templates import COLUMNS, KINDS, ListKind

__all__ = [
    "FileRefused",
    "RowCheck",
    "check_rows",
    "csv_offsets",
    "id_number_ok",
    "open_at",
    "open_rows",
    "open_stream",
    "parse_date",
    "sniff_encoding",
]


class FileRefused(ValueError):
    """The file cannot be read at all (encoding, format, header)."""

    def __init__(self, reason: str, **detail: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass
class OpenedFile:
    file_format: str  # csv | xlsx
    encoding: str
    fields: list[str]
    rows: Iterator[list[Any]]
    #: What reads the underlying file (text wrapper or workbook), closed by close().
    source: Any = None

    def close(self) -> None:
        """Close the reader and the file under it (streamed files)."""
        if self.source is not None:
            self.source.close()

    def release(self) -> None:
        """Stop reading but leave the file under the reader open (a CSV's text
        wrapper is detached; a workbook is closed, which leaves a file it was
        given open)."""
        if isinstance(self.source, io.TextIOWrapper):
            self.source.detach()
        elif self.source is not None:
            self.source.close()
        self.source = None


def _decode_name(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused(_("the file is UTF-16; save it as CSV UTF-8 or CSV (GBK)"))
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("gb18030")
        return "gbk"
    except UnicodeDecodeError:
        raise FileRefused(
            _("the file is neither UTF-8 nor GBK text; save it as CSV UTF-8 or CSV (GBK)")
        ) from None


def _header(
    cells: list[Any], columns: tuple[Any, ...] = COLUMNS, key_field: str = "external_id"
) -> list[str]:
    known = {c.header: c.field for c in columns}
    known.update({c.field: c.field for c in columns})
    fields, unknown = [], []
    for cell in cells:
        name = str(cell or "").strip().lstrip("\ufeff")
        field = known.get(name) or known.get(name.lower())
        if field is None:
            unknown.append(name)
        fields.append(field or "")
    if unknown:
        raise FileRefused(
            _("unknown column(s): {columns}", columns=", ".join(repr(u) for u in unknown)),
            accepted=[c.header for c in columns],
        )
    if key_field not in fields:
        key_header = next(c.header for c in columns if c.field == key_field)
        raise FileRefused(
            _(
                "the header has no {header} ({field}) column",
                header=key_header,
                field=key_field,
            ),
            accepted=[c.header for c in columns],
        )
    if len(set(fields)) != len(fields):
        raise FileRefused(_("a column appears twice in the header"))
    return fields


#: Bytes read ahead to tell the encoding of a streamed file (the rest is decoded
#: as it is read; a bad byte later raises UnicodeDecodeError while iterating).
HEAD_BYTES = 1 << 20


def _head_encoding(head: bytes, complete: bool) -> str:
    """The encoding of a file from its first bytes (``complete``: the whole file)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused(_("the file is UTF-16; save it as CSV UTF-8 or CSV (GBK)"))
    for name, codec in (("utf-8", "utf-8"), ("gbk", "gb18030")):
        try:
            codecs.getincrementaldecoder(codec)().decode(head, final=complete)
            return name
        except UnicodeDecodeError:
            continue
    raise FileRefused(
        _("the file is neither UTF-8 nor GBK text; save it as CSV UTF-8 or CSV (GBK)")
    )


#: Bytes decoded at a time by :func:`sniff_encoding`.
SNIFF_CHUNK = 1 << 20


def sniff_encoding(fh: IO[bytes]) -> str | None:
    """The encoding of a whole CSV file read in chunks of :data:`SNIFF_CHUNK` bytes
    from the start of the seekable ``fh`` (left at its start): ``utf-8-sig``,
    ``utf-8`` or ``gbk`` (GB18030), the same answer as decoding the file whole,
    without holding it; None for an Excel file (a ZIP). UTF-8 is tried first, and
    GBK only once a byte is not UTF-8 (a GBK file whose first megabyte happens to
    be ASCII is still told right).

    Raises:
        FileRefused: empty, UTF-16, or neither UTF-8 nor GBK.
    """
    fh.seek(0)
    head = fh.read(SNIFF_CHUNK)
    fh.seek(0)
    if not head.strip() and len(head) < SNIFF_CHUNK:
        raise FileRefused(_("the file is empty"))
    if head.startswith(b"PK\x03\x04"):
        return None
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused(_("the file is UTF-16; save it as CSV UTF-8 or CSV (GBK)"))
    try:
        for name, codec in (("utf-8", "utf-8"), ("gbk", "gb18030")):
            decoder = codecs.getincrementaldecoder(codec)()
            try:
                while chunk := fh.read(SNIFF_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
                return name
            except UnicodeDecodeError:
                fh.seek(0)
    finally:
        fh.seek(0)
    raise FileRefused(
        _("the file is neither UTF-8 nor GBK text; save it as CSV UTF-8 or CSV (GBK)")
    )


def open_rows(
    data: bytes, columns: tuple[Any, ...] = COLUMNS, key_field: str = "external_id"
) -> OpenedFile:
    """Open a CSV or .xlsx file held in memory: see :func:`open_stream`.

    ``columns`` (field and Chinese header each) and the required ``key_field``
    are the template's: an external list's by default, or another template's
    (rescue.backlog.templates).

    Raises:
        FileRefused: empty, an unreadable encoding, a broken Excel file, or a
            header with unknown or missing columns.
    """
    if not data.strip():
        raise FileRefused(_("the file is empty"))
    # A file in memory is decoded whole to tell its encoding (as before streaming).
    encoding = None if data.startswith(b"PK\x03\x04") else _decode_name(data)
    return open_stream(io.BytesIO(data), encoding=encoding, columns=columns, key_field=key_field)


def open_stream(
    fh: IO[bytes],
    *,
    encoding: str | None = None,
    columns: tuple[Any, ...] = COLUMNS,
    key_field: str = "external_id",
) -> OpenedFile:
    """Open a CSV or .xlsx file from a seekable binary file: its format, encoding,
    header fields and a lazy row iterator (rows are read from ``fh`` as they are
    asked for, so memory does not grow with the file; keep ``fh`` open while
    iterating). The encoding (``utf-8``, ``utf-8-sig`` or ``gbk``) is told from
    the first :data:`HEAD_BYTES` unless given.

    Raises:
        FileRefused: empty, an unreadable encoding, a broken Excel file, or a
            header with unknown or missing columns.
    """
    head = fh.read(HEAD_BYTES)
    complete = len(head) < HEAD_BYTES
    fh.seek(0)
    if not head.strip():
        raise FileRefused(_("the file is empty"))
    if head.startswith(b"PK\x03\x04"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(fh, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds on a broken file
            raise FileRefused(
                _("not a readable Excel .xlsx file ({error})", error=type(exc).__name__)
            ) from exc
        sheet = book.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        first = next(values, None)
        if first is None:
            raise FileRefused(_("the first sheet is empty"))
        fields = _header(list(first), columns, key_field)
        return OpenedFile("xlsx", "", fields, (list(r) for r in values), book)
    encoding = encoding or _head_encoding(head, complete)
    text = io.TextIOWrapper(fh, encoding="gb18030" if encoding == "gbk" else encoding, newline="")
    reader = csv.reader(text)
    first_row = next(reader, None)
    if first_row is None:
        raise FileRefused(_("the file is empty"))
    fields = _header(first_row, columns, key_field)
    return OpenedFile("csv", encoding, fields, reader, text)


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
_SEXES = {
    "男": "male",
    "女": "female",
    "未知": "unknown",
    "male": "male",
    "female": "female",
    "unknown": "unknown",
    "m": "male",
    "f": "female",
    "": "unknown",
}
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_ok(value: str) -> bool:
    """A resident ID number (居民身份证号码) with a valid GB 11643-1999 check digit."""
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17]:
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return True


def _date(raw: Any) -> str | None:
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    text = str(raw).strip()
    for pattern in _DATE_PATTERNS:
        m = pattern.match(text)
        if m:
            y, mo, d = (int(g) for g in m.groups())
            return date(y, mo, d).isoformat()  # ValueError for 2026-02-30
    raise ValueError(text)


class SeenKeys:
    """The first row of each key (外部编号, 身份证号) seen in a file, kept in a
    private temporary SQLite database on disk (``sqlite3.connect("")``) with a
    page cache of :data:`CACHE_KIB`, so finding duplicates within a file of any
    length holds a bounded amount of memory (a dict of 100 k keys held ~10 MiB).
    Close it when done (the database file goes with it)."""

    #: SQLite's page cache for the keys (KiB); pages beyond it are on disk.
    CACHE_KIB = 1024

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute(f"PRAGMA cache_size = -{self.CACHE_KIB}")
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute(
            "CREATE TABLE seen (space INTEGER, key TEXT, row INTEGER, PRIMARY KEY (space, key))"
            " WITHOUT ROWID"
        )

    def first(self, space: int, key: str, row: int) -> int | None:
        """The row where ``key`` (in key space ``space``) was first seen, or None
        when this is the first time (``row`` is then remembered for it)."""
        cur = self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (space, key, row))
        if cur.rowcount:
            return None
        found = self.db.execute(
            "SELECT row FROM seen WHERE space = ? AND key = ?", (space, key)
        ).fetchone()
        return int(found[0])

    def close(self) -> None:
        self.db.close()


@dataclass
class RowCheck:
    row: int
    fields: dict[str, str]
    errors: list[tuple[str, str]]


def check_rows(
    kind: ListKind, opened: OpenedFile, *, duplicates: bool = True, first_row: int = 1
) -> Iterator[RowCheck]:
    """Each data row with its cleaned fields and its problems (column, reason).

    Cleaned: ``sex`` male/female/unknown; dates ISO; ``birth_date`` may be a
    year alone; ``age`` a number of years or ``low-high``; ``id_number`` upper-case,
    and birth date and sex taken from it when the row has none. Duplicates of an
    earlier row's 外部编号 or 身份证号 are problems of the later row
    (``duplicates=False``: not looked for, and nothing kept per row, so memory
    does not grow with the file; the import run skips the rows its dry run
    found instead). The keys seen so far are kept on disk (:class:`SeenKeys`),
    so memory does not grow with the file either way. Reasons are in the active
    locale (rescue.i18n).

    ``first_row``: the number of the next row ``opened.rows`` gives (a chunk of
    an import run read from its byte offset, or after skipping earlier rows).
    """
    seen = SeenKeys() if duplicates else None
    try:
        yield from _check_rows(kind, opened, seen, first_row)
    finally:
        if seen is not None:
            seen.close()


def _check_rows(
    kind: ListKind, opened: OpenedFile, seen: SeenKeys | None, first_row: int = 1
) -> Iterator[RowCheck]:
    required = KINDS[kind] | {"external_id"}
    for number, cells in enumerate(opened.rows, start=first_row):
        if all(c is None or str(c).strip() == "" for c in cells):
            continue
        raw = {
            f: ("" if c is None else c)
            for f, c in zip(
                opened.fields,
                list(cells) + [None] * (len(opened.fields) - len(cells)),
                strict=False,
            )
        }
        fields: dict[str, str] = {}
        errors: list[tuple[str, str]] = []
        for name, value in raw.items():
            if name in {"birth_date", "event_date"}:
                continue
            fields[name] = str(value).strip()
        if len(cells) > len(opened.fields) and any(
            str(c or "").strip() for c in cells[len(opened.fields) :]
        ):
            errors.append(("", _("the row has more cells than the header has columns")))
        sex = fields.get("sex", "").lower()
        if sex not in _SEXES:
            errors.append(("sex", _("{value!r} is not 男, 女 or 未知", value=fields["sex"])))
        else:
            fields["sex"] = _SEXES[sex]
        for name in ("birth_date", "event_date"):
            value = raw.get(name, "")
            if value in ("", None):
                continue
            text = str(value).strip()
            if name == "birth_date" and re.fullmatch(r"\d{4}", text):
                fields[name] = text
                continue
            try:
                fields[name] = _date(value) or ""
            except ValueError:
                why = _("{value!r} is not a date like 2026-01-31 or 2026年1月31日", value=text)
                errors.append((name, why))
        age = fields.get("age", "")
        if age:
            m = re.fullmatch(r"(\d{1,3})(?:\s*[-~至]\s*(\d{1,3}))?", age)
            if not m or int(m.group(1)) > 120 or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                errors.append(
                    ("age", _("{value!r} is not an age in years or a range like 30-40", value=age))
                )
            else:
                fields["age"] = m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")
        id_number = fields.get("id_number", "").upper()
        if id_number:
            fields["id_number"] = id_number
            if not id_number_ok(id_number):
                errors.append(
                    ("id_number", _("not an 18-character ID number with a valid check digit"))
                )
            else:
                fields.setdefault(
                    "birth_date", f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
                )
                if fields.get("sex", "unknown") == "unknown":
                    fields["sex"] = "male" if int(id_number[16]) % 2 else "female"
        for name in sorted(required):
            if not fields.get(name) or (
                name == "sex" and fields["sex"] == "unknown" and not raw.get("sex")
            ):
                errors.append((name, _("required for this list kind")))
        external_id = fields.get("external_id", "")
        if external_id and seen is not None:
            earlier = seen.first(0, external_id, number)
            if earlier is not None:
                errors.append(("external_id", _("duplicate of row {row}", row=earlier)))
        if seen is not None and id_number and id_number_ok(id_number):
            earlier = seen.first(1, id_number, number)
            if earlier is not None:
                errors.append(("id_number", _("the same ID number as row {row}", row=earlier)))
        yield RowCheck(number, {k: v for k, v in fields.items() if v}, errors)


def _codec(encoding: str) -> str:
    return "gb18030" if encoding == "gbk" else encoding


def csv_offsets(
    fh: IO[bytes], *, encoding: str, fields: list[str], starts: dict[int, str]
) -> dict[int, int] | None:
    """Byte offsets in a CSV file where the data rows numbered in ``starts`` begin
    (row → offset), or None when they cannot be told the same way as
    :func:`open_stream` numbers rows (a row's 外部编号 differs from ``starts[row]``,
    a line ending the line reader splits differently, bytes that do not decode).

    A second pass over the file at the speed of the C CSV parser (no checks):
    lines are read as bytes (``\\n`` ends a line in UTF-8 and GB18030 alike, never
    inside a character), so the offset after each parsed record is known.
    ``fh`` is left at its start.
    """
    if not starts:
        return {}
    key = fields.index("external_id")
    pos = 0

    def lines() -> Iterator[str]:
        nonlocal pos
        codec = _codec(encoding)
        for raw in iter(fh.readline, b""):
            pos += len(raw)
            yield raw.decode(codec)
            codec = _codec(encoding).replace("utf-8-sig", "utf-8")

    found: dict[int, int] = {}
    last = max(starts)
    fh.seek(0)
    try:
        reader = csv.reader(lines())
        next(reader)  # the header
        start = pos
        for number, cells in enumerate(reader, start=1):
            if number in starts:
                if (cells[key].strip() if len(cells) > key else "") != starts[number]:
                    return None
                found[number] = start
                if number == last:
                    return found
            start = pos
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None
    finally:
        fh.seek(0)
    return None


def open_at(fh: IO[bytes], opened: OpenedFile, offset: int) -> OpenedFile:
    """The CSV ``opened`` (its header read from the start of ``fh``) read on from
    byte ``offset`` (a row's start, :func:`csv_offsets`): ``opened`` is released
    and a new reader returned, whose first row is the one at ``offset``."""
    encoding = opened.encoding.replace("utf-8-sig", "utf-8")
    opened.release()
    fh.seek(offset)
    text = io.TextIOWrapper(fh, encoding=_codec(encoding), newline="")
    return OpenedFile("csv", opened.encoding, opened.fields, csv.reader(text), text)


def parse_date(raw: Any) -> str | None:
    """A cell as an ISO date: ``2015-06-01``, ``2015/6/1``, ``2015.6.1``,
    ``2015年6月1日``, ``20150601`` or an Excel date. Raises ValueError."""
    return _date(raw)
