"""External lists: dry run, run with progress, crash and resume, warnings verified."""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from typing import Any

from tests.conftest import make_token, wait_for_photo, worker_log
from tests.integration.helpers import new_case, new_notice

HEADER = "外部编号,姓名,性别,出生日期,年龄,身份证号,户籍地,地点,日期,备注"
ROWS = [
    "P-1,張建國,男,1966,,,四川成都,成都东站,2026-10-01,",  # traditional characters
    "P-2,李秀英,女,,70,,,城北汽车站,,",
    "P-3,王五,男,1980-01-01,,,,,,",
    "P-4,赵六,男,1980-13-01,,,,,,",  # bad date
    "P-1,钱七,男,,,,,,,",  # duplicate external id
    "P-6,孙八,男,,,11010519491231002Y,,,,",  # bad ID number
]


def csv_bytes(rows: list[str], *, encoding: str = "utf-8-sig", header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode(encoding)


async def headers_of(station: str, role: str = "station_staff") -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(role, station=station)}"}


async def dry_run(
    client: Any,
    headers: dict[str, str],
    data: bytes,
    *,
    name: str = "list.csv",
    photos: dict[str, bytes] | None = None,
    **form: str,
) -> Any:
    """POST a list for its dry run; ``photos``: a ZIP of these files sent with it."""
    files: dict[str, Any] = {"file": (name, data, "application/octet-stream")}
    if photos is not None:
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as z:
            for filename, content in photos.items():
                z.writestr(filename, content)
        files["photos"] = ("photos.zip", zipped.getvalue(), "application/zip")
    return await client.post(
        "/api/import-runs",
        files=files,
        data={"list_kind": "police_missing", "list_name": "2026年11月公安失踪人员", **form},
        headers=headers,
    )


async def run_to_end(client: Any, headers: dict[str, str], run_id: int) -> dict[str, Any]:
    started = await client.post(f"/api/import-runs/{run_id}/start", headers=headers)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 90
    while True:
        body = (await client.get(f"/api/import-runs/{run_id}", headers=headers)).json()
        if body["status"] in {"done", "failed"}:
            return dict(body)
        if time.monotonic() > deadline:
            raise AssertionError(f"run still {body['status']}; worker log:\n{worker_log()}")
        await asyncio.sleep(0.25)


async def people(client: Any, north: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    case = await new_case(
        client,
        north,
        reported_name="张建国",
        sex="male",
        estimated_age=60,
        found_place="成都东站广场",
        found_at="2026-10-20T08:00:00+08:00",
    )
    notice = await new_notice(
        client,
        north,
        name="李秀英",
        sex="female",
        age_when_missing=70,
        last_seen_place="城北汽车站",
    )
    return case, notice


async def test_dry_run_then_run_warns_the_responsible_station(client):
    from rescue.imports.tables import ImportRecord

    north = await headers_of("north")
    case, notice = await people(client, north)
    response = await dry_run(client, north, csv_bytes(ROWS))
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "checked"
    assert run["encoding"] == "utf-8-sig"
    assert (run["total_rows"], run["valid_rows"], run["error_rows"]) == (6, 3, 3)
    assert run["would_create"] == {"records": 3}
    problems = {(e["row"], e["column"]): e["reason"] for e in run["errors"]}
    assert "not a date" in problems[(4, "birth_date")]
    assert problems[(5, "external_id")] == "duplicate of row 1"
    assert "check digit" in problems[(6, "id_number")]
    assert await ImportRecord.count() == 0  # a dry run creates nothing

    done = await run_to_end(client, north, run["id"])
    assert done["status"] == "done", done
    assert done["rows_done"] == 6
    assert done["warnings_raised"] == 2
    assert await ImportRecord.count() == 3

    page = (await client.get("/api/import-warnings", headers=north)).json()
    by_target = {(w["target"]["kind"], w["target"]["id"]): w for w in page["items"]}
    on_case = by_target[("case", case["id"])]
    assert on_case["station"] == "north"
    assert on_case["evidence"] == ["name_pinyin", "sex", "age", "place", "date"]
    assert on_case["record"]["name"] == "張建國"
    assert on_case["outcome"] is None
    assert on_case["age_days"] == 0
    on_notice = by_target[("notice", notice["id"])]
    assert on_notice["evidence"] == ["name", "sex", "age", "place"]
    # Another station does not see north's warnings.
    south = await headers_of("south")
    assert (await client.get("/api/import-warnings", headers=south)).json()["total"] == 0


async def test_files_from_office_software_and_files_refused(client):
    north = await headers_of("north")
    gbk = await dry_run(client, north, csv_bytes(ROWS[:3], encoding="gbk"))
    assert gbk.status_code == 201, gbk.text
    assert gbk.json()["encoding"] == "gbk"
    assert gbk.json()["valid_rows"] == 3

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(["X-1", "周九", "女", None, 44, None, None, "南站", None, None])
    buf = io.BytesIO()
    book.save(buf)
    xlsx = await dry_run(client, north, buf.getvalue(), name="list.xlsx")
    assert xlsx.status_code == 201, xlsx.text
    assert (xlsx.json()["file_format"], xlsx.json()["valid_rows"]) == ("xlsx", 1)

    unknown = await dry_run(client, north, csv_bytes(ROWS[:1], header=HEADER + ",电话"))
    assert unknown.status_code == 400
    assert "'电话'" in unknown.json()["detail"]
    assert "外部编号" in unknown.json()["accepted"]
    binary = await dry_run(client, north, b"\x81\x30\xff\xfe\xfd" * 50)
    assert binary.status_code == 400
    assert "neither UTF-8 nor GBK" in binary.json()["detail"]
    empty = await dry_run(client, north, b"")
    assert empty.status_code == 400
    bad_kind = await dry_run(client, north, csv_bytes(ROWS), list_kind="tax_records")
    assert bad_kind.status_code == 400
    template = await client.get("/api/import-templates/police_missing", headers=north)
    assert template.content.decode("utf-8-sig").strip() == HEADER + ",照片"


async def test_a_run_that_stopped_resumes_without_duplicating(client):
    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRecord, ImportWarning
    from rescue.runtime import get_store

    north = await headers_of("north")
    await people(client, north)
    run = (await dry_run(client, north, csv_bytes(ROWS))).json()
    from rescue.imports.tables import ImportRun

    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run["id"])
    stopped = await execute_run(run_id=run["id"], store=get_store(), stop_after=2)
    assert (stopped.status.value, stopped.rows_done) == ("running", 2)
    assert await ImportRecord.count() == 2
    # The last row's work is redone after the crash: its progress was not saved.
    from rescue.imports.tables import ImportChunk

    await ImportChunk.update({ImportChunk.row_done: 1, ImportChunk.rows_done: 1}).where(
        ImportChunk.run == run["id"]
    )
    # The stopped job's claim holds until its lease runs out; then start resumes it.
    from datetime import timedelta

    from rescue import clock
    from rescue.settings import get_settings

    lease = get_settings().upload.import_lease_seconds
    with clock.frozen(clock.now() + timedelta(seconds=lease + 1)):
        done = await run_to_end(client, north, run["id"])
    assert done["status"] == "done"
    assert await ImportRecord.count() == 3
    assert await ImportWarning.count() == 2
    again = await client.post(f"/api/import-runs/{run['id']}/start", headers=north)
    assert again.status_code == 409
    # The same list imported again: nothing new, nothing raised twice.
    second = (await dry_run(client, north, csv_bytes(ROWS))).json()
    assert (await run_to_end(client, north, second["id"]))["warnings_raised"] == 0
    assert await ImportWarning.count() == 2


async def test_another_stations_run_is_refused(client):
    """A run's rows name people: its progress and start are the station's own."""
    north, south = await headers_of("north"), await headers_of("south")
    run = (await dry_run(client, north, csv_bytes(ROWS[:2]))).json()
    for method, path in (
        ("get", f"/api/import-runs/{run['id']}"),
        ("post", f"/api/import-runs/{run['id']}/start"),
    ):
        refused = await getattr(client, method)(path, headers=south)
        assert refused.status_code == 403, (path, refused.text)
    assert (await client.get(f"/api/import-runs/{run['id']}", headers=north)).status_code == 200


async def test_verify_outcomes_ledger_and_new_evidence(client):
    north, south = await headers_of("north"), await headers_of("south")
    case, _notice = await people(client, north)
    run = (await dry_run(client, north, csv_bytes(ROWS[:2]))).json()
    await run_to_end(client, north, run["id"])
    items = (await client.get("/api/import-warnings", headers=north)).json()["items"]
    on_case = next(w for w in items if w["target"]["kind"] == "case")
    on_notice = next(w for w in items if w["target"]["kind"] == "notice")

    path = f"/api/import-warnings/{on_case['id']}/verify"
    assert (await client.post(path, json={"outcome": "helped"}, headers=north)).status_code == 400
    assert (
        await client.post(path, json={"outcome": "helped", "note": "x"}, headers=south)
    ).status_code == 403
    helped = await client.post(
        path, json={"outcome": "helped", "note": "家属电话确认"}, headers=north
    )
    assert helped.status_code == 200, helped.text
    assert helped.json()["outcome"] == "helped"
    candidate_id = helped.json()["candidate_id"]
    candidate = await client.get(f"/api/candidates/{candidate_id}", headers=north)
    assert candidate.status_code == 200, candidate.text
    assert candidate.json()["candidate"]["case_id"] == case["id"]
    assert candidate.json()["candidate"]["status"] == "proposed"
    assert (
        await client.post(path, json={"outcome": "no_action"}, headers=north)
    ).status_code == 409

    not_same = await client.post(
        f"/api/import-warnings/{on_notice['id']}/verify",
        json={"outcome": "not_same", "note": "年龄不符"},
        headers=north,
    )
    assert not_same.status_code == 200
    # A later list with a new kind of evidence (a place) opens it again.
    later = ["Q-9,李秀英,女,,70,,,城北汽车站,,"]
    other = (
        await client.post(
            "/api/import-runs",
            files={
                "file": ("l.csv", csv_bytes([r.replace("P-2", "Q-9") for r in later]), "text/csv")
            },
            data={"list_kind": "police_missing", "list_name": "更新"},
            headers=north,
        )
    ).json()
    await run_to_end(client, north, other["id"])
    # Q-9 is a different external id: a new warning, not the old one re-opened.
    rows = (await client.get("/api/import-warnings?outcome=open", headers=north)).json()["items"]
    assert [w["external_id"] for w in rows] == ["Q-9"]

    summary = (await client.get("/api/import-warnings/summary", headers=north)).json()
    first = next(r for r in summary if r["list_name"] == "2026年11月公安失踪人员")
    assert (first["raised"], first["verified"], first["helped"], first["not_same"]) == (2, 2, 1, 1)
    csv_text = (await client.get("/api/import-warnings/csv", headers=north)).content.decode(
        "utf-8-sig"
    )
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("预警编号,名单,外部编号")
    assert len(lines) == 4
    assert any(",helped," in line for line in lines)


async def test_same_pair_with_new_evidence_reopens_a_not_same_warning(client):
    north = await headers_of("north")
    await people(client, north)
    first = (await dry_run(client, north, csv_bytes(["P-2,李秀英,女,,70,,,,,"]))).json()
    await run_to_end(client, north, first["id"])
    (warning,) = (await client.get("/api/import-warnings", headers=north)).json()["items"]
    assert warning["evidence"] == ["name", "sex", "age"]
    await client.post(
        f"/api/import-warnings/{warning['id']}/verify",
        json={"outcome": "not_same", "note": "不是"},
        headers=north,
    )
    same = (await dry_run(client, north, csv_bytes(["P-2,李秀英,女,,70,,,,,"]))).json()
    assert (await run_to_end(client, north, same["id"]))["warnings_raised"] == 0
    richer = (await dry_run(client, north, csv_bytes(["P-2,李秀英,女,,70,,,城北汽车站,,"]))).json()
    assert (await run_to_end(client, north, richer["id"]))["warnings_raised"] == 1
    (reopened,) = (await client.get("/api/import-warnings", headers=north)).json()["items"]
    assert reopened["id"] == warning["id"]
    assert reopened["outcome"] is None
    assert reopened["evidence"] == ["age", "name", "place", "sex"]


async def test_command_line_import_with_progress_bar(client, tmp_path):
    import sys
    from pathlib import Path

    import anyio

    from rescue.devservices import ROOT

    north = await headers_of("north")
    await people(client, north)
    rows = [*ROWS, *[f"B-{i},某{i},男,,40,,,,," for i in range(250)]]
    good = tmp_path / "list.csv"
    good.write_bytes(csv_bytes(rows, encoding="gbk"))
    rescue = str(Path(sys.executable).with_name("rescue"))
    args = ["--kind", "police_missing", "--name", "CLI list", "--station", "north"]
    result = await anyio.run_process([rescue, "import", str(good), *args], cwd=ROOT, check=False)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert "256 row(s), 253 valid, 3 with problems (gbk)" in out
    assert "done: 256 row(s), 2 warning(s) raised" in out
    assert "comparing" in err
    assert "row 4 birth_date" in err
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(ROWS, header="编号,名字"))
    refused = await anyio.run_process([rescue, "import", str(bad), *args], cwd=ROOT, check=False)
    assert refused.returncode == 1
    assert "'名字'" in refused.stderr.decode()  # the unknown column, named (any language)


async def test_a_crash_after_committed_batches_resumes_without_duplicates(client):
    """A deterministic crash (an exception injected right after the 2nd committed
    batch of 10 rows), then the run resumed: every valid row stored once, each
    warning raised once, the progress continuing from row 20."""
    import pytest

    from rescue.imports.services import InjectedFailure, execute_run
    from rescue.imports.tables import ImportRecord, ImportRun, ImportWarning
    from rescue.runtime import get_store

    north = await headers_of("north")
    await people(client, north)
    filler = [f"F-{i},某{i},男,,40,,,,," for i in range(23)]
    # Hits in the first batch (row 1) and after the crash (row 25).
    rows = [ROWS[0], *filler, ROWS[1]]
    run = (await dry_run(client, north, csv_bytes(rows))).json()
    assert run["valid_rows"] == 25
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run["id"])
    with pytest.raises(InjectedFailure):
        await execute_run(run_id=run["id"], store=get_store(), batch_size=10, fail_after_batches=2)
    crashed = (await client.get(f"/api/import-runs/{run['id']}", headers=north)).json()
    assert (crashed["status"], crashed["rows_done"]) == ("failed", 20)
    assert "InjectedFailure" in crashed["failure_reason"]
    assert await ImportRecord.count() == 20
    assert await ImportWarning.count() == 1

    done = await run_to_end(client, north, run["id"])  # resumed on the worker
    assert (done["status"], done["rows_done"]) == ("done", 25)
    assert done["warnings_raised"] == 2
    keys = [r["row_key"] for r in await ImportRecord.select(ImportRecord.row_key)]
    assert len(keys) == len(set(keys)) == 25
    assert await ImportWarning.count() == 2


async def test_a_large_file_is_read_as_a_stream(tmp_path):
    """The reader takes rows from an open file as they are asked for: after the
    first row only the first megabyte (HEAD_BYTES) and a read-ahead buffer have
    been read, whatever the file's size; GBK detected from that head."""
    from rescue.imports.reader import HEAD_BYTES, check_rows, open_stream
    from rescue.imports.templates import ListKind

    path = tmp_path / "big.csv"
    path.write_bytes(
        csv_bytes([f"B-{i},某{i},男,,40,,,,," for i in range(200_000)], encoding="gbk")
    )
    size = path.stat().st_size
    assert size > 4 * HEAD_BYTES
    with path.open("rb") as fh:
        opened = open_stream(fh)
        assert opened.encoding == "gbk"
        rows = check_rows(ListKind.police_missing, opened)
        first = next(rows)
        assert first.fields["name"] == "某0"
        assert fh.tell() <= HEAD_BYTES + 256 * 1024  # not the whole file
        assert sum(1 for _ in rows) == 199_999


async def test_photos_in_a_zip_or_the_object_store_are_checked_and_compared(client):
    """Photos named in the 照片 column: from the ZIP uploaded with the list, or a URL
    into this service's own bucket (any other host refused, never fetched); each
    checked like an upload; a face within the matcher's threshold of a person in
    care raises a warning whose evidence is the face."""
    import zipfile

    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRun, ImportWarning
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from tests.integration.helpers import upload_file
    from tests.support import BIDEN, OBAMA_A, OBAMA_B, photo

    north = await headers_of("north")
    case = await new_case(client, north, sex="male", estimated_age=50)
    await upload_file(client, north, "case", case["id"], OBAMA_A)
    store = get_store()
    await store.aput("imports/test-biden.jpg", photo(BIDEN), "image/jpeg")
    bucket = get_settings().storage.bucket
    endpoint = get_settings().storage.endpoint
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("photos/奥巴马.jpg", photo(OBAMA_B))
        z.writestr("坏图.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    header = HEADER + ",照片"
    rows = [
        "Z-1,某甲,男,,,,,,,,奥巴马.jpg",  # in the ZIP's folder: the same face as the case
        "Z-2,某乙,男,,,,,,,,坏图.jpg",  # fails the image check
        "Z-3,某丙,男,,,,,,,,不存在.jpg",  # not in the ZIP
        "Z-4,某丁,男,,,,,,,,http://169.254.169.254/latest/meta-data",  # another host
        f"Z-5,某戊,男,,,,,,,,http://{endpoint}/{bucket}/imports/test-biden.jpg",
        f"Z-6,某己,男,,,,,,,,s3://{bucket}/imports/missing.jpg",
        "Z-7,某庚,男,,,,,,,,s3://other-bucket/x.jpg",
    ]
    response = await client.post(
        "/api/import-runs",
        files={
            "file": ("list.csv", csv_bytes(rows, header=header), "text/csv"),
            "photos": ("photos.zip", zipped.getvalue(), "application/zip"),
        },
        data={"list_kind": "police_missing", "list_name": "照片名单"},
        headers=north,
    )
    assert response.status_code == 201, response.text
    run = response.json()
    problems = {e["row"]: e["reason"] for e in run["errors"] if e["column"] == "photo"}
    assert set(problems) == {2, 3, 4, 6, 7}, problems
    assert "not in the photos ZIP" in problems[3]
    assert "169.254.169.254" in problems[4]
    assert "other-bucket" in problems[7]
    assert run["valid_rows"] == 2

    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run["id"])
    done = await execute_run(run_id=run["id"], store=store)
    assert (done.status.value, done.rows_done) == ("done", 7)
    warnings = await ImportWarning.select()
    assert [(w["external_id"], w["case"]) for w in warnings] == [("Z-1", case["id"])]
    evidence = warnings[0]["evidence"]
    assert (json.loads(evidence) if isinstance(evidence, str) else evidence) == ["face"]
    page = (await client.get("/api/import-warnings", headers=north)).json()
    assert page["items"][0]["explanation"]  # explained in the caller's language

    # Verified "helped": the notice made from the row carries the row's photo, and
    # the matcher adds the face to the same candidate for the reviewer to compare.
    helped = await client.post(
        f"/api/import-warnings/{warnings[0]['id']}/verify",
        json={"outcome": "helped", "note": "家属看照片确认"},
        headers=north,
    )
    assert helped.status_code == 200, helped.text
    path = f"/api/candidates/{helped.json()['candidate_id']}"
    candidate = (await client.get(path, headers=north)).json()["candidate"]
    notice = (await client.get(f"/api/notices/{candidate['notice_id']}", headers=north)).json()
    assert len(notice["photos"]) == 1, notice
    await wait_for_photo(client, north, notice["photos"][0]["id"])
    candidate = (await client.get(path, headers=north)).json()["candidate"]
    assert candidate["case_id"] == case["id"]
    assert "face" in candidate["evidence_kinds"], candidate
    assert candidate["notice_photo_id"] == notice["photos"][0]["id"]

    not_zip = await client.post(
        "/api/import-runs",
        files={
            "file": ("list.csv", csv_bytes(rows[:1], header=header), "text/csv"),
            "photos": ("photos.zip", b"not a zip", "application/zip"),
        },
        data={"list_kind": "police_missing", "list_name": "照片名单"},
        headers=north,
    )
    assert not_zip.status_code == 400


async def test_command_line_import_takes_a_photos_zip(client, tmp_path):
    import sys
    from pathlib import Path

    import anyio

    from rescue.devservices import ROOT

    good = tmp_path / "list.csv"
    good.write_bytes(csv_bytes(["Z-1,某甲,男,,,,,,,,a.jpg"], header=HEADER + ",照片"))
    not_zip = tmp_path / "photos.zip"
    not_zip.write_bytes(b"not a zip")
    rescue = str(Path(sys.executable).with_name("rescue"))
    args = ["--kind", "police_missing", "--name", "CLI", "--station", "north", "--dry-run"]
    refused = await anyio.run_process(
        [rescue, "import", str(good), "--photos", str(not_zip), *args], cwd=ROOT, check=False
    )
    assert refused.returncode == 1
    assert "ZIP" in refused.stderr.decode()
    missing = await anyio.run_process([rescue, "import", str(good), *args], cwd=ROOT, check=False)
    assert missing.returncode == 0
    assert "1 row(s), 0 valid, 1 with problems" in missing.stdout.decode()
