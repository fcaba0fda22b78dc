"""Loading a station's backlog of long-term residents (在站人员历史补录, issue 12
item 6): template, dry run with per-row errors, the run with history and photos,
progress, resume and re-run without duplicates, GBK files."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import wait_for_photo, worker_log
from tests.support import BIDEN, OBAMA_A, photo

HEADER = (
    "编号,姓名,性别,出生年份,年龄,发现日期,发现地点,入站日期,当前状态,状态日期,"
    "当前安置类型,当前安置机构,安置开始日期,历史安置,体貌特征,方言,照片"
)
SETTLED = (
    "DA-031,,男,1961,,2014-03-01,城北汽车站,2014-03-02,落户安置,2015-09-01,福利院,"
    "市社会福利院,2015-06-01,医院|市第一人民医院|2014-05-10|2014-06-20;"
    "精神病院|市精神卫生中心|2015-01-05|2015-03-01,左眉有痣,四川话,a.jpg"
)
STRANDED = "DA-032,王某,女,,60,,,2016-07-01,滞留,2016-08-01,,,,,,,b.jpg"
BAD = [
    "DA-033,,男,,,,,2014-13-01,滞留,2015-01-01,,,,,,,",  # bad admission date
    "DA-034,,男,,,,,2014-03-02,滞留,2014-03-05,,,,,,,",  # stranded before 10 days
    "DA-035,,男,,,,,2014-03-02,落户安置,2015-09-01,,,,,,,",  # settled without a welfare home
    "DA-036,,男,,,,,2014-03-02,滞留,2015-01-01,,,,医院|x|2014,,,",  # bad history entry
    "DA-037,,男,,,,,2014-03-02,滞留,2015-01-01,,,,,,,c.jpg",  # photo not in the ZIP
    "DA-031,,男,,,,,2014-03-02,滞留,2015-01-01,,,,,,,",  # the same 编号 as row 1
]


#: Rows without photos (the last column emptied).
PLAIN = [
    SETTLED.rsplit(",", 1)[0] + ",",
    STRANDED.rsplit(",", 1)[0] + ",",
    "DA-038,,女,,70,,,2017-02-01,滞留,2017-03-01,,,,,,,",
]


def lease() -> timedelta:
    from rescue.settings import get_settings

    return timedelta(seconds=get_settings().upload.import_lease_seconds)


def table(rows: list[str], encoding: str = "utf-8-sig") -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode(encoding)


def photos_zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(f"照片/{name}", data)
    return buf.getvalue()


async def dry_run(
    client: Any, headers: dict[str, str], data: bytes, archive: bytes | None, **extra: str
) -> Any:
    files = {"file": ("backlog.csv", data, "text/csv")}
    if archive is not None:
        files["photos"] = ("photos.zip", archive, "application/zip")
    return await client.post("/api/backlog-runs", files=files, headers={**headers, **extra})


async def run_to_end(client: Any, headers: dict[str, str], run_id: int) -> dict[str, Any]:
    started = await client.post(f"/api/backlog-runs/{run_id}/start", headers=headers)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 120
    while True:
        body = (await client.get(f"/api/backlog-runs/{run_id}", headers=headers)).json()
        assert 0 <= body["rows_done"] <= body["total_rows"]
        if body["status"] in {"done", "failed"}:
            return dict(body)
        if time.monotonic() > deadline:
            raise AssertionError(f"run still {body['status']}; worker log:\n{worker_log()}")
        await asyncio.sleep(0.25)


async def test_template_names_the_columns(client, staff):
    response = await client.get("/api/backlog-template", headers=staff)
    assert response.status_code == 200
    assert response.content.decode("utf-8-sig").strip() == HEADER


async def test_dry_run_shows_per_row_errors_and_creates_nothing(client, staff):
    from rescue.cases.tables import Case

    response = await dry_run(
        client, staff, table([SETTLED, STRANDED, *BAD]), photos_zip(**{"a.jpg": photo(OBAMA_A)})
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["status"], run["total_rows"], run["valid_rows"], run["error_rows"]) == (
        "checked",
        8,
        1,
        7,
    )
    errors = {(e["row"], e["column"]) for e in run["errors"]}
    assert (2, "照片") in errors  # b.jpg is not in the ZIP
    assert (3, "入站日期") in errors
    assert (4, "状态日期") in errors
    assert (5, "当前安置类型") in errors
    assert (6, "历史安置") in errors
    assert (7, "照片") in errors
    assert (8, "编号") in errors
    assert run["would_create"] == {
        "cases": 1,
        "placements": 3,
        "status_changes": 3,
        "photos": 1,
        "already_loaded": 0,
    }
    assert await Case.count() == 0
    # In Chinese for a Chinese reader.
    zh = await dry_run(client, staff, table(BAD[:1]), None, **{"Accept-Language": "zh-CN"})
    assert zh.status_code == 201
    [error] = zh.json()["errors"]
    assert error["column"] == "入站日期"
    assert "不是" in error["reason"], error


async def test_unreadable_files_refused_whole(client, staff):
    bad_header = await dry_run(client, staff, "姓名,颜色\r\n张三,红\r\n".encode(), None)
    assert bad_header.status_code == 400
    assert "颜色" in bad_header.json()["detail"]
    bad_zip = await dry_run(client, staff, table([STRANDED]), b"not a zip")
    assert bad_zip.status_code == 400
    assert "ZIP" in bad_zip.json()["detail"]


async def test_run_creates_cases_with_history_and_photos_once(client, staff):
    from rescue.cases.tables import Case
    from rescue.photos.tables import Photo

    archive = photos_zip(**{"a.jpg": photo(OBAMA_A), "b.jpg": photo(BIDEN)})
    data = table([SETTLED, STRANDED], encoding="gbk")
    checked = (await dry_run(client, staff, data, archive)).json()
    assert checked["encoding"] == "gbk"
    assert checked["valid_rows"] == 2
    done = await run_to_end(client, staff, checked["id"])
    assert done["status"] == "done", done["failure_reason"]
    assert done["rows_done"] == done["total_rows"] == 2
    assert done["errors"] == []
    cases = {c["backlog_key"]: c for c in await Case.select()}
    assert set(cases) == {"north:DA-031", "north:DA-032"}
    settled = cases["north:DA-031"]
    assert settled["status"] == "settled"
    assert settled["reference"].startswith("2014-")
    detail = (await client.get(f"/api/cases/{settled['id']}", headers=staff)).json()
    assert detail["entered_later"] is True
    assert detail["current_placement"]["kind"] == "welfare_home"
    assert detail["sex"] == "male"
    assert detail["dialect"] == "四川话"
    placements = (await client.get(f"/api/cases/{settled['id']}/placements", headers=staff)).json()
    assert [p["kind"] for p in placements["items"]] == [
        "in_station",
        "general_hospital",
        "in_station",
        "psychiatric_hospital",
        "in_station",
        "welfare_home",
    ]
    assert all(p["entered_later"] for p in placements["items"])
    events = (await client.get(f"/api/cases/{settled['id']}/timeline", headers=staff)).json()
    changes = [
        (e["to_status"], e["occurred_at"][:10]) for e in events if e["kind"] == "status_changed"
    ]
    assert changes == [
        ("stranded", "2015-09-01"),
        ("settlement_pending", "2015-09-01"),
        ("settled", "2015-09-01"),
    ]
    [case_photo] = detail["photos"]
    processed = await wait_for_photo(client, staff, case_photo["id"])
    assert processed["status"] == "processed"
    assert cases["north:DA-032"]["status"] == "stranded"

    # The same file again: every row is already loaded; nothing is duplicated.
    again = (await dry_run(client, staff, data, archive)).json()
    assert again["would_create"]["cases"] == 0
    assert again["would_create"]["already_loaded"] == 2
    assert (await run_to_end(client, staff, again["id"]))["status"] == "done"
    assert await Case.count() == 2
    assert await Photo.count() == 2


async def test_a_stopped_run_resumes_without_duplicates(client, staff):
    from rescue import clock
    from rescue.backlog.services import execute_run
    from rescue.cases.tables import Case
    from rescue.imports.tables import ImportRun
    from rescue.runtime import get_store

    checked = (await dry_run(client, staff, table([SETTLED, STRANDED]), None)).json()
    # No ZIP: the photo names are problems, the rows without photos load.
    assert checked["valid_rows"] == 0
    rows = [SETTLED.rsplit(",", 1)[0] + ",", STRANDED.rsplit(",", 1)[0] + ","]
    checked = (await dry_run(client, staff, table(rows), None)).json()
    assert checked["valid_rows"] == 2
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == checked["id"])
    # Its job stopped after row 1 (a worker killed) longer ago than the lease: a
    # start queues it again.
    with clock.frozen(clock.now() - lease() - timedelta(seconds=1)):
        stopped = await execute_run(run_id=checked["id"], store=get_store(), stop_after=1)
    assert (stopped.status.value, stopped.rows_done) == ("running", 1)
    assert await Case.count() == 1
    done = await run_to_end(client, staff, checked["id"])
    assert (done["status"], done["rows_done"]) == ("done", 2)
    assert await Case.count() == 2


async def test_other_stations_and_roles_cannot_use_a_run(client, staff, police):
    from tests.conftest import make_token

    checked = (await dry_run(client, staff, table([STRANDED.rsplit(",", 1)[0] + ","]), None)).json()
    south = {"Authorization": f"Bearer {await make_token('station_staff', station='south')}"}
    assert (
        await client.get(f"/api/backlog-runs/{checked['id']}", headers=south)
    ).status_code == 403
    assert (await dry_run(client, police, table([]), None)).status_code == 403
    # Not through the external lists' route either.
    refused = await client.post(
        "/api/import-runs",
        files={"file": ("x.csv", table([]), "text/csv")},
        data={"list_kind": "backlog", "list_name": "x"},
        headers=staff,
    )
    assert refused.status_code == 400


async def test_command_line_dry_run_then_load_with_progress(tmp_path):
    import sys
    from pathlib import Path

    import anyio

    from rescue.cases.tables import Case
    from rescue.devservices import ROOT
    from rescue.users.services import create_user

    await create_user(username="cli-backlog", role="station_staff", station="north")
    path = tmp_path / "backlog.csv"
    path.write_bytes(table([STRANDED.rsplit(",", 1)[0] + ",", BAD[0]], encoding="gbk"))
    rescue = str(Path(sys.executable).with_name("rescue"))
    checked = await anyio.run_process(
        [rescue, "backlog", str(path), "--user", "cli-backlog", "--dry-run"], cwd=ROOT
    )
    assert b"2 row(s), 1 valid" in checked.stdout
    assert "入站日期".encode() in checked.stderr
    assert await Case.count() == 0
    loaded = await anyio.run_process(
        [rescue, "backlog", str(path), "--user", "cli-backlog"], cwd=ROOT
    )
    assert b"done: 2 row(s), 1 left out" in loaded.stdout, loaded.stderr
    assert b"loading" in loaded.stderr
    assert await Case.count() == 1


async def test_excel_file_with_date_cells_accepted(client, staff):
    from datetime import datetime

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    row: list[object] = [""] * len(HEADER.split(","))
    row[0], row[2], row[3] = "DA-040", "女", 1958
    row[7], row[8], row[9] = datetime(2016, 7, 1), "滞留", datetime(2016, 8, 1)
    sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    response = await client.post(
        "/api/backlog-runs",
        files={"file": ("backlog.xlsx", buf.getvalue(), "application/octet-stream")},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["file_format"], run["valid_rows"], run["errors"]) == ("xlsx", 1, [])


class Recorder:
    """An ``enqueue`` for start_run that only records what it was given (the
    test runs the jobs itself)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int | None]] = []

    async def __call__(self, run_id: int, chunk_no: int | None) -> None:
        self.sent.append((run_id, chunk_no))


async def test_start_while_a_job_loads_the_run_queues_nothing_more(client, staff):
    """Start queues the checked run once; its job is in the middle of it (row 1
    of 3 loaded, its lease live on the clock): start clicked twice more queues
    nothing and answers the run as it is, still running, with the job's claim
    untouched."""
    from rescue import clock
    from rescue.backlog.services import execute_run
    from rescue.cases.tables import Case
    from rescue.imports.services import start_run
    from rescue.imports.tables import ImportChunk
    from rescue.runtime import get_store

    run_id = (await dry_run(client, staff, table(PLAIN), None)).json()["id"]
    enqueue = Recorder()
    t0 = clock.now()
    with clock.frozen(t0):
        started = await start_run(run_id=run_id, enqueue=enqueue)
        assert started.status.value == "running"
        assert enqueue.sent == [(run_id, None)]
        # The job (here) has loaded row 1 and is still at it.
        await execute_run(run_id=run_id, store=get_store(), stop_after=1)
        claims = await ImportChunk.select(ImportChunk.claim).where(ImportChunk.run == run_id)
    with clock.frozen(t0 + lease() - timedelta(seconds=1)):  # the lease still holds
        for _click in range(2):
            again = await start_run(run_id=run_id, enqueue=enqueue)
            assert (again.status.value, again.rows_done) == ("running", 1)
    assert enqueue.sent == [(run_id, None)]
    # The job's claim and lease (from its last row) untouched.
    (chunk,) = await ImportChunk.select().where(ImportChunk.run == run_id)
    assert (chunk["status"], chunk["row_done"], chunk["lease_until"]) == (
        "running",
        1,
        t0 + lease(),
    )
    assert [chunk["claim"]] == [c["claim"] for c in claims]
    assert await Case.count() == 1


async def test_a_run_whose_job_went_silent_is_queued_again_and_the_job_stops(client, staff):
    """Job A loads row 1 and stalls: nothing saved for longer than the lease. A
    start then queues the run again and job B loads rows 2-3 from A's last
    saved row. When A wakes it finds the run is B's and stops without loading
    another row: each case is made once, by one job."""
    from rescue import clock
    from rescue.backlog.services import execute_run
    from rescue.cases.tables import Case
    from rescue.imports.services import start_run
    from rescue.imports.tables import ImportChunk
    from rescue.runtime import get_store

    run_id = (await dry_run(client, staff, table(PLAIN), None)).json()["id"]
    enqueue = Recorder()
    rows: dict[str, list[int]] = {"A": [], "B": []}

    def progress(job: str) -> Callable[[int, int], None]:
        return lambda done, _total: rows[job].append(done)

    async def a_stalls() -> None:
        if rows["A"] != [1]:
            return
        with clock.frozen(t0 + lease() + timedelta(seconds=1)):  # A silent past its lease
            restarted = await start_run(run_id=run_id, enqueue=enqueue)
            assert restarted.status.value == "running"
            assert enqueue.sent == [(run_id, None), (run_id, None)]
            out = await execute_run(run_id=run_id, store=get_store(), on_progress=progress("B"))
            assert out.status.value == "done"

    t0 = clock.now()
    with clock.frozen(t0):
        await start_run(run_id=run_id, enqueue=enqueue)
        out = await execute_run(
            run_id=run_id, store=get_store(), on_progress=progress("A"), after_row=a_stalls
        )
    assert rows == {"A": [1], "B": [2, 3]}
    assert (out.status.value, out.rows_done, out.errors) == ("done", 3, [])
    keys = [c["backlog_key"] for c in await Case.select(Case.backlog_key)]
    assert sorted(keys) == ["north:DA-031", "north:DA-032", "north:DA-038"]
    (chunk,) = await ImportChunk.select().where(ImportChunk.run == run_id)
    assert (chunk["status"], chunk["row_done"], chunk["claim"]) == ("done", 3, "")


async def test_a_failed_run_is_queued_again_and_resumes(client, staff):
    """The list's store fails under the job: the run (and its chunk) fail and let
    go of the claim; start queues it again at once, and it loads every row."""
    from rescue.backlog.services import execute_run
    from rescue.cases.tables import Case
    from rescue.imports.services import start_run
    from rescue.imports.tables import ImportChunk
    from rescue.runtime import get_store

    class Broken:
        async def aget(self, key: str) -> bytes:
            raise RuntimeError("the object store is gone")

    run_id = (await dry_run(client, staff, table(PLAIN), None)).json()["id"]
    enqueue = Recorder()
    await start_run(run_id=run_id, enqueue=enqueue)
    with pytest.raises(RuntimeError):
        await execute_run(run_id=run_id, store=Broken())  # type: ignore[arg-type]
    (chunk,) = await ImportChunk.select().where(ImportChunk.run == run_id)
    assert (chunk["status"], chunk["claim"]) == ("failed", "")
    restarted = await start_run(run_id=run_id, enqueue=enqueue)
    assert restarted.status.value == "running"
    assert enqueue.sent == [(run_id, None), (run_id, None)]
    out = await execute_run(run_id=run_id, store=get_store())
    assert (out.status.value, out.rows_done) == ("done", 3)
    assert await Case.count() == 3


class MeetingStore:
    """The object store, where a photo's write first waits at ``meet``."""

    def __init__(self, store: Any, meet: Callable[[], Awaitable[None]]) -> None:
        self.store, self.meet = store, meet

    async def aput(self, key: str, data: bytes, media_type: str) -> None:
        if key.startswith("photos/"):
            await self.meet()
        await self.store.aput(key, data, media_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.parametrize("where", ["case", "photo"])
async def test_two_jobs_of_one_run_at_once_load_each_row_once(client, staff, monkeypatch, where):
    """Two jobs of the same run at once (a message delivered again while its job
    runs). Each job, when it gets to the row's case (``case``: nothing loaded
    yet) or to its photo (``photo``: the case was loaded before from a file
    without the photo), waits there until the other job is there too or has ended, so both
    would be at the same row at once whatever the machine's speed. One job
    loads the row; the other ends without loading a row. The row's case and
    its photo are made once and the run is done without a problem."""
    from rescue.backlog import services
    from rescue.cases.tables import Case
    from rescue.imports.services import get_run
    from rescue.imports.tables import ImportRun
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store

    checked = (
        await dry_run(client, staff, table([STRANDED]), photos_zip(**{"b.jpg": photo(BIDEN)}))
    ).json()
    run_id = checked["id"]
    assert checked["valid_rows"] == 1
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run_id)
    if where == "photo":  # the row loaded before from a file without its photo
        before = (await dry_run(client, staff, table(PLAIN[1:2]), None)).json()["id"]
        await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == before)
        assert (await services.execute_run(run_id=before, store=get_store())).rows_done == 1
    jobs = {"there": 0, "ended": 0}
    together = asyncio.Event()

    def check() -> None:
        if jobs["there"] + jobs["ended"] >= 2:
            together.set()

    async def meet() -> None:
        jobs["there"] += 1
        check()
        await together.wait()

    if where == "case":
        real = services.create_case

        async def meeting_create_case(**kwargs: Any) -> Any:
            await meet()
            return await real(**kwargs)

        monkeypatch.setattr(services, "create_case", meeting_create_case)
    store = MeetingStore(get_store(), meet) if where == "photo" else get_store()

    async def job() -> Any:
        try:
            return await services.execute_run(run_id=run_id, store=store)  # type: ignore[arg-type]
        finally:
            jobs["ended"] += 1
            check()

    results = await asyncio.gather(job(), job(), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert jobs["there"] == 1  # one job got to the row
    out = await get_run(run_id=run_id)
    assert (out.status.value, out.rows_done, out.valid_rows, out.errors) == ("done", 1, 1, [])
    [case] = await Case.select(Case.id).where(Case.backlog_key == "north:DA-032")
    photos = await Photo.select(Photo.id).where(Photo.case == case["id"])
    assert len(photos) == 1
    assert (await wait_for_photo(client, staff, photos[0]["id"]))["status"] == "processed"


async def test_a_start_during_a_slow_row_neither_waits_for_it_nor_deadlocks(
    client, staff, monkeypatch
):
    """Job A saved row 1 longer than the lease ago but is alive, in the middle of
    row 2 (the row's transaction holds the run's chunk locked). A start as a
    request makes it (one transaction, rescue.audit.unit, that updates the
    run's row first) neither waits for the row nor queues the run again: the
    locked chunk is skipped. Had it waited for the chunk, A's row would then
    wait for the run's row the start holds: a deadlock, which PostgreSQL ends
    by failing one of the two.

    (The request is made here as the middleware makes it: the test client
    would block this event loop, and with it job A, until it answers.)"""
    from rescue import clock
    from rescue.audit import unit
    from rescue.backlog import services
    from rescue.cases.tables import Case
    from rescue.imports.schemas import RunOut
    from rescue.imports.services import start_run
    from rescue.imports.tables import ImportRun
    from rescue.runtime import get_store

    run_id = (await dry_run(client, staff, table(PLAIN), None)).json()["id"]
    enqueue = Recorder()

    async def start_as_a_request() -> RunOut:
        opened = await unit.open_unit(ImportRun._meta.db)
        try:
            out = await start_run(run_id=run_id, enqueue=enqueue)
        except BaseException:
            await opened.rollback()
            await opened.close()
            raise
        await opened.commit()
        await opened.close()
        opened.run_committed()
        return out

    in_row, go_on = asyncio.Event(), asyncio.Event()
    real = services.create_case

    async def slow_create_case(**kwargs: Any) -> Any:
        if kwargs["backlog_key"] == "north:DA-032":  # row 2
            in_row.set()
            await go_on.wait()
        return await real(**kwargs)

    monkeypatch.setattr(services, "create_case", slow_create_case)

    rows = {"done": 0}

    async def after_row() -> None:
        rows["done"] += 1
        if rows["done"] == 1:
            clock.advance(lease().total_seconds() + 1)  # row 2 starts past row 1's lease

    async def someone_waits_for_a_lock() -> bool:
        rows = await ImportRun.raw(
            "SELECT count(*) AS n FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(rows[0]["n"])

    with clock.frozen(clock.now()):
        await start_run(run_id=run_id, enqueue=enqueue)
        job = asyncio.create_task(
            services.execute_run(run_id=run_id, store=get_store(), after_row=after_row)
        )
        await in_row.wait()
        start = asyncio.create_task(start_as_a_request())
        # Until the start has answered, or waits for a lock (then A goes on into it).
        while not start.done() and not await someone_waits_for_a_lock():
            await asyncio.wait({start}, timeout=0.05)
        go_on.set()
        answer = await start
        out = await job
    assert answer.status.value == "running"
    assert enqueue.sent == [(run_id, None)]  # the first start only
    assert (out.status.value, out.rows_done, out.errors) == ("done", 3, [])
    assert await Case.count() == 3
