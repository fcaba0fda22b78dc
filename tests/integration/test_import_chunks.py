"""One import run cut into chunks: shared by worker processes, resumed after a
crash in a chunk without duplicates, progress summed over the chunks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.test_imports import (
    ROWS,
    csv_bytes,
    dry_run,
    headers_of,
    people,
    run_to_end,
)


@pytest.fixture
def chunk_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """IMPORT_CHUNK_ROWS set for the test (the dry run cuts the chunks)."""
    from rescue.settings import get_settings

    def set_rows(rows: int) -> None:
        monkeypatch.setenv("IMPORT_CHUNK_ROWS", str(rows))
        get_settings.cache_clear()

    yield set_rows
    monkeypatch.delenv("IMPORT_CHUNK_ROWS", raising=False)
    get_settings.cache_clear()


def filler(start: int, count: int) -> list[str]:
    return [f"F-{i},某{i},男,,40,,,,," for i in range(start, start + count)]


async def chunks_of(run_id: int) -> list[dict[str, Any]]:
    from rescue.imports.tables import ImportChunk

    return list(
        await ImportChunk.select().where(ImportChunk.run == run_id).order_by(ImportChunk.chunk_no)
    )


async def _wait_for(
    condition: Any, what: str, within: float = 180, log: Callable[[], str] | None = None
) -> Any:
    """Poll ``condition()`` (async) until it returns something true. ``within``
    (seconds) is a generous bound against a worker that hangs or never takes
    the job, not a timing assumption: the test fails only when the condition
    never comes. ``log``: the worker's log shown then (default the suite's)."""
    import time

    from tests.conftest import worker_log

    deadline = time.monotonic() + within
    while not (found := await condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}; worker log:\n{(log or worker_log)()}")
        await asyncio.sleep(0.2)
    return found


async def test_a_list_in_chunks_is_shared_by_two_worker_processes(client, chunk_rows):
    """27 rows in chunks of 4 (7 chunks, a byte offset each; a photo in each
    chunk), run by a worker with two processes of its own (its own broker
    namespace, so the suite's worker takes none): both processes take chunks
    (one at a time each), and the run ends done with every valid row stored
    once, the problem rows of the dry run left out, and one warning per hit.

    Whatever the machine's speed: the test holds chunk 0's row locked (as a
    slow first chunk would), so the process that takes chunk 0 waits on it
    while the other chunks can only be done by the other process; chunk 0 is
    let go once they are. With one process taking chunks (one process, or a
    process that took several messages at once), the other chunks are never
    done while chunk 0 is held, and the test fails."""
    import dataclasses

    import anyio.to_thread

    from media.s3server import free_port
    from rescue.devservices import stop_process
    from rescue.imports.services import get_run, start_run
    from rescue.imports.tables import ImportChunk, ImportRecord, ImportWarning
    from rescue.settings import get_settings
    from tests.conftest import _state
    from tests.integration.test_imports import HEADER
    from tests.support import OBAMA_B, photo
    from workers.actors import run_import
    from workers.broker import redis_broker

    chunk_rows(4)
    north = await headers_of("north")
    await people(client, north)
    # The hits (ROWS[0], ROWS[1]) fall in the first and the sixth chunk; ROWS[3:]
    # are problem rows (bad date, a duplicate of row 1's id, bad ID number).
    lines = [ROWS[0], *filler(0, 20), ROWS[2], ROWS[1], *ROWS[3:], "F-99,某99,男,,40,,,,,"]
    lines = [line + (",a.jpg" if i % 4 == 1 else ",") for i, line in enumerate(lines)]
    created = await dry_run(
        client,
        north,
        csv_bytes(lines, encoding="gbk", header=HEADER + ",照片"),
        photos={"a.jpg": photo(OBAMA_B)},
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["total_rows"], run["valid_rows"], run["error_rows"]) == (27, 24, 3)
    chunks = await chunks_of(run["id"])
    assert [(c["first_row"], c["last_row"]) for c in chunks] == [
        (1, 4),
        (5, 8),
        (9, 12),
        (13, 16),
        (17, 20),
        (21, 24),
        (25, None),
    ]
    assert all(c["byte_offset"] is not None for c in chunks[1:])  # CSV: seek, not re-read

    namespace = f"{get_settings().broker_namespace}-chunks"
    broker = redis_broker(dataclasses.replace(get_settings(), broker_namespace=namespace))

    async def enqueue(run_id: int, chunk_no: int | None) -> None:
        await anyio.to_thread.run_sync(broker.enqueue, run_import.message(run_id, chunk_no))

    services = _state["services"]
    worker = services.start_worker(
        processes=2,
        threads=1,
        log_name="worker-chunks.log",
        extra_env={
            "BROKER_NAMESPACE": namespace,
            "WORKER_METRICS_PORT": str(free_port()),
            "dramatiq_worker_timeout": "100",  # an idle process polls every 0.1 s
        },
    )
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_chunk_0() -> None:
        """Chunk 0's row locked in a transaction of this task's own until ``release``:
        a job's claim of chunk 0 (an UPDATE of the row) waits for it."""
        async with ImportChunk._meta.db.transaction():
            await (
                ImportChunk.select(ImportChunk.id)
                .where(ImportChunk.chunk_key == f"{run['id']}:0")
                .lock_rows("UPDATE")
            )
            holding.set()
            await release.wait()

    async def others_done() -> bool:
        return all(c["status"] == "done" for c in (await chunks_of(run["id"]))[1:])

    async def run_ended() -> Any:
        out = await get_run(run_id=run["id"])
        return out if out.status.value in {"done", "failed"} else None

    def log() -> str:
        return str(services.log("worker-chunks.log"))

    holder = asyncio.create_task(hold_chunk_0())
    try:
        await holding.wait()
        await start_run(run_id=run["id"], enqueue=enqueue)
        await _wait_for(others_done, "chunks 1-6 done while chunk 0 is held", log=log)
        assert (await chunks_of(run["id"]))[0]["status"] == "pending"  # its job waits
        release.set()
        await holder
        out = await _wait_for(run_ended, "the run done", log=log)
    finally:
        release.set()
        await holder
        stop_process(worker)
        broker.close()
    assert (out.status.value, out.rows_done, out.total_rows) == ("done", 27, 27), out
    chunks = await chunks_of(run["id"])
    assert {c["status"] for c in chunks} == {"done"}
    assert sum(c["rows_done"] for c in chunks) == 27
    # Both processes of the worker took chunks: one list, two processes.
    assert len({c["worked_by"] for c in chunks}) == 2, [c["worked_by"] for c in chunks]
    records = await ImportRecord.select(ImportRecord.row_key, ImportRecord.external_id)
    assert len({r["row_key"] for r in records}) == len(records) == 24
    assert sorted(r["external_id"] for r in records if not r["external_id"].startswith("F-")) == [
        "P-1",
        "P-2",
        "P-3",
    ]
    warnings = await ImportWarning.select(ImportWarning.external_id, ImportWarning.case)
    assert sorted((w["external_id"], w["case"] is not None) for w in warnings) == [
        ("P-1", True),
        ("P-2", False),
    ]
    assert out.warnings_raised == 2


async def test_a_crash_in_a_chunk_then_resume_duplicates_nothing(client, chunk_rows):
    """Chunks of 10 rows: chunk 1 crashes after its first committed batch of 4
    rows, chunk 0 is done meanwhile; the run stays failed (a chunk failed), its
    progress is the sum (10 + 4). Resumed: only the unfinished chunks are queued
    again, and rows whose work was done but whose progress was lost are not
    stored or warned twice."""
    from rescue.imports.services import InjectedFailure, execute_run, get_run
    from rescue.imports.tables import ImportChunk, ImportRecord, ImportRun, ImportWarning
    from rescue.runtime import get_store

    chunk_rows(10)
    north = await headers_of("north")
    await people(client, north)
    # Hits: row 13 (chunk 1, in its first batch) and row 30 (chunk 2).
    rows = [*filler(0, 12), ROWS[0], *filler(12, 16), ROWS[1]]
    run = (await dry_run(client, north, csv_bytes(rows))).json()
    assert len(await chunks_of(run["id"])) == 3
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run["id"])
    with pytest.raises(InjectedFailure):
        await execute_run(
            run_id=run["id"], store=get_store(), chunk_no=1, batch_size=4, fail_after_batches=1
        )
    await execute_run(run_id=run["id"], store=get_store(), chunk_no=0)
    crashed = await get_run(run_id=run["id"])
    assert (crashed.status.value, crashed.rows_done, crashed.warnings_raised) == ("failed", 14, 1)
    assert "chunk 1" in (crashed.failure_reason or "")
    chunks = await chunks_of(run["id"])
    assert [(c["status"], c["row_done"]) for c in chunks] == [
        ("done", 10),
        ("failed", 14),
        ("pending", 20),
    ]
    assert await ImportRecord.count() == 14
    # The crash came before the chunk's last batch was saved: its progress says
    # row 12, though rows 13-14 are stored and row 13's warning raised.
    await ImportChunk.update({ImportChunk.row_done: 12, ImportChunk.rows_done: 2}).where(
        (ImportChunk.run == run["id"]) & (ImportChunk.chunk_no == 1)
    )
    finished_0 = chunks[0]["finished_at"]

    done = await run_to_end(client, north, run["id"])
    assert (done["status"], done["rows_done"], done["warnings_raised"]) == ("done", 30, 2)
    chunks = await chunks_of(run["id"])
    assert {c["status"] for c in chunks} == {"done"}
    assert chunks[0]["finished_at"] == finished_0  # the done chunk was not sent again
    keys = [r["row_key"] for r in await ImportRecord.select(ImportRecord.row_key)]
    assert len(keys) == len(set(keys)) == 30
    # Row 13's warning was raised before the crash (counted then): not again.
    assert await ImportWarning.count() == 2


async def test_two_runs_raising_the_same_pairs_at_once_do_not_fail(client, chunk_rows):
    """The same list checked twice and both runs' chunks done at the same time:
    each pair's warning is made once (ON CONFLICT), neither run fails."""
    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRun, ImportWarning
    from rescue.runtime import get_store

    chunk_rows(3)
    north = await headers_of("north")
    await people(client, north)
    data = csv_bytes([ROWS[0], ROWS[1], *filler(0, 4)])
    ids = [(await dry_run(client, north, data)).json()["id"] for _ in range(2)]
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id.is_in(ids))
    await asyncio.gather(
        *[execute_run(run_id=i, store=get_store(), chunk_no=no) for i in ids for no in (0, 1)]
    )
    runs = await ImportRun.select(ImportRun.status, ImportRun.warnings_raised).where(
        ImportRun.id.is_in(ids)
    )
    assert [r["status"] for r in runs] == ["done", "done"]
    assert await ImportWarning.count() == 2
    # Each pair raised once, by whichever run came first.
    assert sum(r["warnings_raised"] for r in runs) == 2


def test_the_imports_queue_is_consumed_one_message_at_a_time():
    """A worker process takes one import chunk at a time, so the chunks of one
    list go to all the processes (Dramatiq's default prefetch is 2 × threads)."""
    from workers.broker import broker

    imports = broker.consume("imports", prefetch=8, timeout=100)
    photos = broker.consume("photos", prefetch=8, timeout=100)
    try:
        assert getattr(imports, "prefetch", 1) == 1
        assert getattr(photos, "prefetch", 8) == 8
    finally:
        imports.close()
        photos.close()


async def test_excel_and_old_mac_csv_chunks_read_past_the_rows_before_them(
    client, chunk_rows, monkeypatch
):
    """An Excel list has no byte offsets: a chunk reads past the rows before it,
    so an Excel list has at most XLSX_MAX_CHUNKS (larger) chunks.
    A CSV whose lines end in a lone CR is cut differently by a byte-line reader:
    no offsets are kept and its chunks read past the rows too. Either way every
    row is stored once (the command line's way: the chunks in order, here)."""
    import io

    from openpyxl import Workbook

    from rescue.imports import services
    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRecord, ImportRun
    from rescue.runtime import get_store
    from tests.integration.test_imports import HEADER

    chunk_rows(3)
    monkeypatch.setattr(services, "XLSX_MAX_CHUNKS", 2)
    north = await headers_of("north")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    for line in filler(0, 8):
        sheet.append(line.split(","))
    buf = io.BytesIO()
    book.save(buf)
    old_mac = ("\r".join([HEADER, *filler(100, 8)]) + "\r").encode()
    runs = [
        (await dry_run(client, north, buf.getvalue(), name="list.xlsx")).json(),
        (await dry_run(client, north, old_mac)).json(),
    ]
    for run, firsts in zip(runs, ([1, 7], [1, 4, 7]), strict=True):
        assert run["valid_rows"] == 8, run
        chunks = await chunks_of(run["id"])
        assert [c["first_row"] for c in chunks] == firsts
        assert all(c["byte_offset"] is None for c in chunks)
        await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run["id"])
        done = await execute_run(run_id=run["id"], store=get_store(), batch_size=2)
        assert (done.status.value, done.rows_done) == ("done", 8)
        records = await ImportRecord.select(ImportRecord.row_number).where(
            ImportRecord.run == run["id"]
        )
        assert sorted(r["row_number"] for r in records) == list(range(1, 9))


async def test_start_on_a_running_run_queues_only_the_chunks_nobody_works_on(client, chunk_rows):
    """A job is in the middle of chunk 0 (its claim's lease live); start is clicked
    again: only the chunks no job works on are queued (the suite's real worker
    does them), chunk 0 is not queued, and its job's claim and progress are
    untouched; clicked again, nothing is queued. Once the lease ran out (the
    job's worker was killed), start queues chunk 0 again and the worker goes on
    after its last committed row: every row stored once."""
    import os
    import socket
    from datetime import timedelta

    from rescue import clock
    from rescue.imports.services import execute_run, get_run, start_run
    from rescue.imports.tables import ImportRecord, ImportRun, ImportWarning
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from workers.actors import send_import

    chunk_rows(4)
    north = await headers_of("north")
    await people(client, north)
    # 12 rows in chunks of 4; hits on row 1 (chunk 0) and row 8 (chunk 1).
    rows = [ROWS[0], *filler(0, 6), ROWS[1], *filler(6, 4)]
    run = (await dry_run(client, north, csv_bytes(rows))).json()
    run_id = run["id"]
    assert len(await chunks_of(run_id)) == 3
    sent: list[int | None] = []

    async def enqueue(run_id: int, chunk_no: int | None) -> None:
        sent.append(chunk_no)
        await send_import(run_id, chunk_no)

    lease = timedelta(seconds=get_settings().upload.import_lease_seconds)
    t0 = clock.now()
    with clock.frozen(t0):
        # A job (this process) has done 2 rows of chunk 0 and is still at it.
        await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run_id)
        await execute_run(run_id=run_id, store=get_store(), chunk_no=0, stop_after=2)
    held = (await chunks_of(run_id))[0]
    assert (held["status"], held["row_done"]) == ("running", 2)
    assert held["claim"]
    assert held["lease_until"] == t0 + lease
    assert held["worked_by"] == f"{socket.gethostname()}:{os.getpid()}"

    with clock.frozen(t0 + lease - timedelta(seconds=1)):  # the lease still holds
        await start_run(run_id=run_id, enqueue=enqueue)
        assert sent == [1, 2]

        async def others_done() -> bool:
            chunks = await chunks_of(run_id)
            return all(c["status"] == "done" for c in chunks[1:])

        await _wait_for(others_done, "chunks 1 and 2 done by the worker")
        chunks = await chunks_of(run_id)
        for name in ("status", "claim", "lease_until", "row_done", "rows_done", "worked_by"):
            assert chunks[0][name] == held[name], name
        assert (await get_run(run_id=run_id)).status.value == "running"
        sent.clear()
        await start_run(run_id=run_id, enqueue=enqueue)  # clicked again
        assert sent == []

    with clock.frozen(t0 + lease + timedelta(seconds=1)):  # the job is gone
        await start_run(run_id=run_id, enqueue=enqueue)
        assert sent == [0]

        async def finished() -> Any:
            out = await get_run(run_id=run_id)
            return out if out.status.value in {"done", "failed"} else None

        out = await _wait_for(finished, "the run done")
    assert (out.status.value, out.rows_done, out.warnings_raised) == ("done", 12, 2)
    chunks = await chunks_of(run_id)
    assert chunks[0]["worked_by"] != held["worked_by"]  # the worker took it over
    assert (chunks[0]["claim"], chunks[0]["lease_until"]) == ("", None)
    keys = [r["row_key"] for r in await ImportRecord.select(ImportRecord.row_key)]
    assert len(keys) == len(set(keys)) == 12
    assert await ImportWarning.count() == 2


async def test_a_job_whose_chunk_was_taken_over_commits_nothing_more(client, chunk_rows):
    """Job A's lease runs out in the middle of a chunk (its worker stalled) and a
    resumed run gives the chunk to job B, which does the rest. When A wakes up
    its next commit is refused (the claim is B's): its batch is rolled back and
    it leaves the chunk, so the chunk's progress is B's and no batch after the
    takeover is done twice."""
    from datetime import timedelta

    from rescue import clock
    from rescue.imports.services import execute_run, start_run
    from rescue.imports.tables import ImportRecord, ImportRun
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    chunk_rows(10)
    north = await headers_of("north")
    run_id = (await dry_run(client, north, csv_bytes(filler(0, 6)))).json()["id"]
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run_id)
    lease = timedelta(seconds=get_settings().upload.import_lease_seconds)
    sent: list[int | None] = []
    batches: dict[str, int] = {"A": 0, "B": 0}

    async def enqueue(run_id: int, chunk_no: int | None) -> None:
        sent.append(chunk_no)  # not queued: job B is run right here

    async def b_committed() -> None:
        batches["B"] += 1

    async def a_committed() -> None:
        batches["A"] += 1
        if batches["A"] != 1:
            return
        # A stalls after its first batch (rows 1-2): its lease runs out, and a
        # resumed run gives the chunk to B, which does the rest.
        with clock.frozen(t0 + lease + timedelta(seconds=1)):
            await start_run(run_id=run_id, enqueue=enqueue)
            assert sent == [0]
            await execute_run(
                run_id=run_id, store=get_store(), chunk_no=0, batch_size=2, after_batch=b_committed
            )

    t0 = clock.now()
    with clock.frozen(t0):
        out = await execute_run(
            run_id=run_id, store=get_store(), chunk_no=0, batch_size=2, after_batch=a_committed
        )
    # A's commits after the takeover were refused; B went on after A's row 2.
    assert batches == {"A": 1, "B": 2}
    assert (out.status.value, out.rows_done) == ("done", 6)
    (chunk,) = await chunks_of(run_id)
    assert (chunk["status"], chunk["row_done"], chunk["rows_done"]) == ("done", 6, 6)
    assert await ImportRecord.count() == 6


async def test_a_chunk_queued_twice_is_done_by_one_job(client, chunk_rows):
    """Two jobs given the same chunk at once (start clicked twice before a worker
    took it, a message delivered again): one claims it and does it, the other
    ends at once without touching it."""
    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRecord, ImportRun
    from rescue.runtime import get_store

    chunk_rows(10)
    north = await headers_of("north")
    run_id = (await dry_run(client, north, csv_bytes(filler(0, 6)))).json()["id"]
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run_id)
    batches = {"first": 0, "second": 0}

    def counter(job: str) -> Any:
        async def committed() -> None:
            batches[job] += 1

        return committed

    await asyncio.gather(
        *[
            execute_run(
                run_id=run_id,
                store=get_store(),
                chunk_no=0,
                batch_size=2,
                after_batch=counter(job),
            )
            for job in batches
        ]
    )
    assert sorted(batches.values()) == [0, 3], batches
    (chunk,) = await chunks_of(run_id)
    assert (chunk["status"], chunk["rows_done"]) == ("done", 6)
    assert await ImportRecord.count() == 6
