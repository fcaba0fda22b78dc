"""A worker process's private temporary copies of an import run's list file and
photos ZIP (rescue.imports.services._RunFiles; docs/privacy.md "Retention"):
never removed while a chunk uses them; otherwise gone once unused for
IMPORT_TEMP_IDLE_SECONDS (a failed run's), and at the next sweep once the run
is done elsewhere or purged by the retention run. Each worker process sweeps
its own copies periodically (workers.lifecycle.TempCopySweep).

The sweep is called here in the test process, which runs the chunks itself
(as a worker process does), on the frozen clock (rescue.clock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rescue import clock
from tests.integration.test_imports import HEADER, csv_bytes, dry_run, headers_of
from tests.support import OBAMA_B, photo

DAY = 24 * 3600.0
IDLE = 3600  # IMPORT_TEMP_IDLE_SECONDS in these tests (the default)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Settings for the test (``env(IMPORT_CHUNK_ROWS="4")``); the copies this
    process held before the test (earlier tests' runs) are let go first."""
    from rescue.imports.services import _RunFiles
    from rescue.settings import get_settings

    _RunFiles._evict()
    names: list[str] = []

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
            names.append(name)
        get_settings.cache_clear()

    set_env(IMPORT_TEMP_IDLE_SECONDS=str(IDLE))
    yield set_env
    for name in names:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


def filler(count: int, *, photo_column: bool = False) -> list[str]:
    return [f"F-{i},某{i},男,,40,,,,,{',' if photo_column else ''}" for i in range(count)]


async def _run(client: Any, rows: list[str], *, with_photo: bool = False) -> tuple[int, str]:
    """A checked run of ``rows``, set running (as start does); (id, object key)."""
    from rescue.imports.tables import ImportRun

    north = await headers_of("north")
    if with_photo:
        response = await dry_run(
            client,
            north,
            csv_bytes(rows, header=HEADER + ",照片"),
            photos={"奥巴马.jpg": photo(OBAMA_B)},
            list_name="临时副本",
        )
    else:
        response = await dry_run(client, north, csv_bytes(rows))
    assert response.status_code == 201, response.text
    run_id = int(response.json()["id"])
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run_id)
    row = await ImportRun.select(ImportRun.object_key).where(ImportRun.id == run_id).first()
    assert row is not None
    return run_id, str(row["object_key"])


def _copies(object_key: str) -> list[Path]:
    """This process's copies of the run's files (list, and ZIP if any); [] if none."""
    from rescue.imports.services import _RunFiles

    held = _RunFiles._files.get(object_key)
    return [p for p in held if p is not None] if held else []


async def _status(run_id: int) -> str:
    from rescue.imports.services import get_run

    return (await get_run(run_id=run_id)).status.value


async def test_a_failed_runs_copies_go_once_unused_for_the_idle_time(client, env):
    """A run fails in its chunk: its list and ZIP copies stay (it may be resumed)
    until IMPORT_TEMP_IDLE_SECONDS after their last use pass on the clock, then
    the next sweep removes them from disk. Resumed later, the run fetches them
    again and finishes."""
    from rescue.imports.services import InjectedFailure, execute_run, sweep_temp_copies
    from rescue.runtime import get_store

    store = get_store()
    run_id, key = await _run(
        client, [*filler(6, photo_column=True), "Z-1,某甲,男,,,,,,,,奥巴马.jpg"], with_photo=True
    )
    with clock.frozen(clock.now()):
        with pytest.raises(InjectedFailure):
            await execute_run(run_id=run_id, store=store, batch_size=4, fail_after_batches=1)
        assert await _status(run_id) == "failed"
        copies = _copies(key)
        assert [p.suffix for p in copies] == [".list", ".zip"]
        assert all(p.exists() for p in copies)

        await sweep_temp_copies()  # just used
        clock.advance(IDLE - 1)
        await sweep_temp_copies()  # a second short of the idle time
        assert _copies(key) == copies
        assert all(p.exists() for p in copies)

        clock.advance(1)
        assert await sweep_temp_copies() == 1
        assert _copies(key) == []
        assert not any(p.exists() for p in copies)

        done = await execute_run(run_id=run_id, store=store)  # resumed: fetched again
        assert (done.status.value, done.rows_done) == ("done", 7)
        assert _copies(key) == []  # and released when done


async def test_copies_a_chunk_is_using_are_never_removed(client, env):
    """In the middle of a chunk (after its first committed batch) the clock moves
    well past the idle time and the run is even marked purged: the sweep
    leaves the copies the chunk reads. The chunk finishes, and the run's
    copies go when it is done."""
    from rescue.imports.services import _RunFiles, execute_run, sweep_temp_copies
    from rescue.imports.tables import ImportRun
    from rescue.runtime import get_store

    env(IMPORT_TEMP_IDLE_SECONDS="0")
    run_id, key = await _run(client, filler(9))
    seen: list[list[Path]] = []

    async def mid_chunk() -> None:
        copies = _copies(key)
        assert copies
        assert _RunFiles._users[key] == 1
        clock.advance(10 * DAY)
        await ImportRun.update({ImportRun.purged_at: clock.now()}).where(ImportRun.id == run_id)
        assert await sweep_temp_copies() == 0
        assert _copies(key) == copies
        assert all(p.exists() for p in copies)
        await ImportRun.update({ImportRun.purged_at: None}).where(ImportRun.id == run_id)
        seen.append(copies)

    with clock.frozen(clock.now()):
        done = await execute_run(
            run_id=run_id, store=get_store(), batch_size=4, after_batch=mid_chunk
        )
    assert (done.status.value, done.rows_done) == ("done", 9)
    assert len(seen) == 2  # after each of the two full batches
    assert _copies(key) == []
    assert not any(p.exists() for p in seen[0])


async def test_a_purged_runs_copies_go_at_the_next_sweep(client, env):
    """A run of two chunks: this process did chunk 0 and keeps the copies for the
    next chunk (a long idle time here, 90 days). Nobody does chunk 1; the
    retention run purges the run after IMPORT_RETENTION_DAYS, deleting its
    objects but not the worker's copies; the next sweep removes those."""
    from rescue.imports.services import execute_run, sweep_temp_copies
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings

    env(IMPORT_CHUNK_ROWS="4", IMPORT_TEMP_IDLE_SECONDS=str(int(90 * DAY)))
    store = get_store()
    run_id, key = await _run(client, filler(8))
    with clock.frozen(clock.now()):
        await execute_run(run_id=run_id, store=store, chunk_no=0)
        assert await _status(run_id) == "running"
        copies = _copies(key)
        assert len(copies) == 1
        assert copies[0].exists()
        await sweep_temp_copies()
        assert _copies(key) == copies  # the run goes on: kept for its next chunk

        clock.advance(31 * DAY)
        report = await run_retention(settings=RetentionSettings(import_days=30), store=store)
        assert report.import_runs == [run_id]
        assert not await store.aexists(key)
        assert copies[0].exists()  # the retention run cannot reach the worker's disk

        assert await sweep_temp_copies() == 1
        assert _copies(key) == []
        assert not copies[0].exists()


async def test_copies_of_a_run_done_by_another_process_go_at_the_next_sweep(client, env):
    """This process did chunk 0; another process did the last chunk and finished
    the run (its own copies released there). This process's copies go at its
    next sweep, long before the idle time."""
    from rescue.imports.services import execute_run, sweep_temp_copies
    from rescue.imports.tables import ImportRun
    from rescue.runtime import get_store

    env(IMPORT_CHUNK_ROWS="4")
    run_id, key = await _run(client, filler(8))
    with clock.frozen(clock.now()):
        await execute_run(run_id=run_id, store=get_store(), chunk_no=0)
        copies = _copies(key)
        assert copies
        assert copies[0].exists()
        await sweep_temp_copies()
        assert _copies(key) == copies
        # The other process's job, as far as this process can tell: the run is done.
        await ImportRun.update({ImportRun.status: "done"}).where(ImportRun.id == run_id)
        assert await sweep_temp_copies() == 1
        assert _copies(key) == []
        assert not copies[0].exists()


async def test_each_worker_process_sweeps_its_copies_periodically(client, env):
    """The middleware of the workers' broker: a worker (here on an in-memory
    broker in this process, with the AsyncIO middleware as the workers have)
    sweeps every ``every`` seconds on its event loop, so the copies of a run
    done elsewhere go without any job being sent. The wait below is a
    generous bound against a sweep that never comes, not a timing assumption."""
    from dramatiq import Worker
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import AsyncIO

    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRun
    from rescue.runtime import get_store
    from workers.broker import broker as workers_broker
    from workers.lifecycle import TempCopySweep

    assert any(isinstance(m, TempCopySweep) for m in workers_broker.middleware)

    env(IMPORT_CHUNK_ROWS="4")
    run_id, key = await _run(client, filler(8))
    await execute_run(run_id=run_id, store=get_store(), chunk_no=0)
    copies = _copies(key)
    assert copies
    assert copies[0].exists()
    await ImportRun.update({ImportRun.status: "done"}).where(ImportRun.id == run_id)

    broker = StubBroker()
    broker.add_middleware(AsyncIO())
    broker.add_middleware(TempCopySweep(every=0.05))
    worker = Worker(broker, worker_threads=1)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while _copies(key):
            assert time.monotonic() < deadline, "the worker never swept its copies"
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        broker.close()
    assert not copies[0].exists()


async def test_a_sweep_without_the_database_still_removes_idle_copies(client, env, monkeypatch):
    """The database does not answer the sweep's question about run states (here:
    its query raises as a refused connection would): copies unused for the
    idle time still go, others stay until a sweep can ask; nothing is raised."""
    from rescue.imports.services import InjectedFailure, execute_run, sweep_temp_copies
    from rescue.imports.tables import ImportRun
    from rescue.runtime import get_store

    run_id, key = await _run(client, filler(8))
    with clock.frozen(clock.now()):
        with pytest.raises(InjectedFailure):
            await execute_run(run_id=run_id, store=get_store(), batch_size=4, fail_after_batches=1)
        copies = _copies(key)
        assert copies

        def refused(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionRefusedError("database down")

        await ImportRun.update({ImportRun.status: "done"}).where(ImportRun.id == run_id)
        monkeypatch.setattr(ImportRun, "select", refused)
        assert await sweep_temp_copies() == 0  # done, but the sweep cannot tell
        assert _copies(key) == copies
        clock.advance(IDLE)
        assert await sweep_temp_copies() == 1
        assert _copies(key) == []
        assert not copies[0].exists()


async def test_folders_left_by_ended_worker_processes_go_at_the_next_sweep(tmp_path, monkeypatch):
    """A worker process killed mid-chunk cannot clean up; its folder, named with its
    pid, goes at the next sweep of any process once no process has that pid. A
    live process's folder, and folders not named so, stay."""
    import os
    import sys
    import tempfile

    from rescue.imports import services

    # The folders a worker process makes are named so (the sweep can tell).
    assert services._RunFiles.folder().name.startswith(f"rescue-import-{os.getpid()}-")
    ended = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await ended.wait()  # reaped: no process has this pid now
    gone = tmp_path / f"rescue-import-{ended.pid}-x1y2"
    alive = tmp_path / f"rescue-import-{os.getpid()}-a9b8"
    unnamed = tmp_path / "rescue-import-k3j4h5"  # no pid in the name: not ours to judge
    for folder in (gone, alive, unnamed):
        folder.mkdir()
        (folder / "0123.list").write_bytes(b"name,id\n")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    assert await services.sweep_temp_copies() == 0  # no copies of this process's runs
    assert not gone.exists()
    assert (alive / "0123.list").exists()
    assert unnamed.exists()
