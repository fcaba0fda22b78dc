"""The import reader's streamed parts: the encoding told from the whole file read
in chunks, and duplicates within a file found with the keys kept on disk."""

from __future__ import annotations

import io

import pytest

from rescue.imports.reader import (
    SNIFF_CHUNK,
    FileRefused,
    SeenKeys,
    check_rows,
    open_stream,
    sniff_encoding,
)
from rescue.imports.templates import ListKind

HEADER = "外部编号,姓名,性别,出生日期,年龄,身份证号,户籍地,地点,日期,备注"


def test_gbk_after_an_ascii_first_chunk_is_told_gbk():
    """What decoding the whole file told (before streaming) is still told: a GBK
    file whose first chunk happens to be ASCII is GBK, not a UTF-8 file with a
    bad byte further on."""
    ascii_rows = "".join(f"A-{i},,,,40,,,,,\r\n" for i in range(SNIFF_CHUNK // 10))
    data = (
        (HEADER + "\r\n").encode("gbk")
        + ascii_rows.encode()
        + "Z-1,张三,男,,,,,,,\r\n".encode("gbk")
    )
    fh = io.BytesIO(data)
    assert sniff_encoding(fh) == "gbk"
    assert fh.tell() == 0
    rows = list(check_rows(ListKind.police_missing, open_stream(fh, encoding="gbk")))
    assert rows[-1].fields["name"] == "张三"


def test_sniff_refuses_what_the_whole_file_read_refused():
    with pytest.raises(FileRefused):
        sniff_encoding(io.BytesIO(b""))
    with pytest.raises(FileRefused):
        sniff_encoding(io.BytesIO(b"\x81\x30\xff\xfe\xfd" * 50))
    assert sniff_encoding(io.BytesIO("外部编号\r\n".encode("utf-8-sig"))) == "utf-8-sig"
    assert sniff_encoding(io.BytesIO(b"PK\x03\x04rest")) is None


def test_duplicates_far_apart_are_found_with_the_keys_on_disk():
    rows = [f"D-{i},某{i},男,,40,,,,," for i in range(20_000)]
    rows.append("D-7,某某,男,,40,,,,,")  # the same 外部编号 as row 8
    rows.append("X-1,某甲,男,,,11010519491231002X,,,,")
    rows.append("X-2,某乙,男,,,11010519491231002X,,,,")  # the same ID number
    data = ("\r\n".join([HEADER, *rows]) + "\r\n").encode()
    checks = list(check_rows(ListKind.police_missing, open_stream(io.BytesIO(data))))
    problems = {c.row: c.errors for c in checks if c.errors}
    assert set(problems) == {20_001, 20_003}
    assert "8" in problems[20_001][0][1]
    assert problems[20_001][0][0] == "external_id"
    assert problems[20_003][0][0] == "id_number"
    assert "20002" in problems[20_003][0][1]


def test_seen_keys_answers_the_first_row_per_key_space():
    seen = SeenKeys()
    try:
        assert seen.first(0, "A", 1) is None
        assert seen.first(1, "A", 2) is None  # another key space
        assert seen.first(0, "A", 3) == 1
        assert seen.first(1, "A", 4) == 2
    finally:
        seen.close()
