"""Import of an external list with photos: dry run, comparison cost against the
gallery, and the whole list on real Dramatiq workers (one and two processes).

On the real services, started like the test suite does (``rescue.devservices``):
a fresh PostgreSQL database, a SeaweedFS S3 server, Redis (per-run namespace) and
``dramatiq workers.broker workers.actors`` worker processes, which run the import
as production does (``POST /api/import-runs/{id}/start`` → ``run_import`` →
``rescue.imports.services.execute_run``: each row stored and compared, each
row's photo read from the list's ZIP, checked, its faces encoded and searched in
the matcher's galleries).

The list (default: 100,000 rows, 20,000 of them with a photo; ``--photos N`` or
``BENCH_SCALE`` scales both, rows = 5 × photos) is a GBK CSV like bench/imports.py's
with a 照片 column. The photos are the LFW thumbnails of ../shared/faces
(``lfw_subset``, 1,892 photos, 150×150 JPEG), read in place: the ZIP (a temporary
file) holds each once, and the 照片 column names them in turn, so 20,000 rows
reuse each photo ~11 times (every row's photo is still read, checked and encoded:
nothing is cached between rows). The same photos are also put in the object store
and named by ``s3://`` URLs for the dry run's second photo path.

Printed, each next to a baseline of the same run:

1. Dry run (``create_run``, in this process, streamed from a file): rows/s and
   photos/s with the ZIP and with URLs into the object store, against the same
   list without photos; the photo check's cost per photo; peak memory growth.
2. Comparison cost per record against the gallery: in this process, runs of
   ``execute_run`` over 1,000 rows without photos and 100 rows with photos, at
   1,000, 10,000 and 100,000 open notices (one synthetic face each, bulk
   inserted; names from the list's pool of 2,000, so a row's name is shared by
   gallery/2,000 notices that are compared in full). Rates come from the run's
   progress callbacks (first to last batch); the run's set-up (building the
   notices index, loading the face gallery) is timed apart.
3. ONE list against 10,000 open notices (WORKER_GALLERY; the 100,000 step
   of 2 says what a larger gallery adds per row), cut into chunks
   (IMPORT_CHUNK_ROWS, scaled with the list so that a 1/N run has about as many
   chunks as a full-size list), on one worker process (1 thread), then a copy of
   it (other external ids) on two: the chunks are shared by the processes.
   Wall time from the start to the run done, records/s, photos/s, the rates of
   the first and second half of the rows (a steady rate is what makes the
   extrapolation honest), each process's peak RSS and chunks done.
4. The time of a full-size list (100,000 records, 20,000 photos) with one and
   two worker processes: measured when BENCH_SCALE=1, otherwise extrapolated
   from the measured rates and labelled so.

Needs PostgreSQL and Redis as ``make test`` does. No timed assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import FACES_DIR, Report, labels, on_dev_services, scale
from bench.imports import HEADER, _names, _status_kb, reset_peak
from media.s3server import free_port
from rescue.devservices import DevServices, stop_process

NAMES = 2000
GALLERIES = (1_000, 10_000, 100_000)
#: Worker process counts of section 3 (``--processes``): 1 and 2 by default; a
#: full-size run of two processes only (``--processes 2``) takes ~40 min less.
PROCESSES: tuple[int, ...] = (1, 2)
#: Open notices while the whole list runs on the workers (section 3).
WORKER_GALLERY = 10_000
PHOTO_EVERY = 5  # one row in five has a photo (100 k rows, 20 k photos)


def lfw_photos() -> list[Path]:
    """The LFW thumbnails of ../shared/faces (read in place)."""
    return [FACES_DIR / r["path"] for r in labels() if r["set"] == "lfw_subset"]


def write_zip(path: Path, photos: list[Path]) -> list[str]:
    """A ZIP holding each photo once as ``p<i>.jpg`` (stored: JPEGs do not deflate);
    returns the names in order."""
    names = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for i, src in enumerate(photos):
            name = f"p{i}.jpg"
            z.write(src, name)
            names.append(name)
    return names


def write_list(
    path: Path,
    rows: int,
    names: list[str],
    prefix: str,
    photo: Callable[[int], str] | None,
    *,
    photo_every: int = PHOTO_EVERY,
    start: int = 0,
) -> int:
    """A GBK CSV like bench/imports.py's plus a 照片 column: every ``photo_every``-th
    row names ``photo(k)`` (the k-th photo row); written line by line. Returns the
    number of rows with a photo."""
    with_photo = 0
    with path.open("w", encoding="gbk", newline="") as fh:
        fh.write(HEADER + ",照片\r\n")
        for i in range(start, start + rows):
            name = names[i % len(names)]
            cell = ""
            if photo is not None and i % photo_every == 0:
                cell = photo(i // photo_every)
                with_photo += 1
            if i % 100 == 1:
                fh.write(f"{prefix}-{i},{name},女,,70,,,城北汽车站,,,{cell}\r\n")
            else:
                fh.write(f"{prefix}-{i},{name},男,,40,,四川成都,成都东站,2026-10-01,,{cell}\r\n")
    return with_photo


async def add_notices(database_url: str, count: int, names: list[str], seed: int) -> None:
    """``count`` more open notices (names from ``names``, 70-year-old women last
    seen at 城北汽车站 like the list's every 100th row), one synthetic face each
    (bench.search.synthetic: shaped like real dlib encodings), bulk-inserted."""
    import asyncpg

    from bench.search import encoding_shape, synthetic

    mean, std = encoding_shape()
    vectors = synthetic(count, mean, std, np.random.default_rng(seed)).astype("<f8")
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            before = await conn.fetchval("SELECT coalesce(max(id), 0) FROM notices")
            await conn.copy_records_to_table(
                "notices",
                records=[
                    (names[(seed + i) % len(names)], "family", "female", 70, "城北汽车站")
                    for i in range(count)
                ],
                columns=["name", "source", "sex", "age_when_missing", "last_seen_place"],
            )
            await conn.execute(
                "INSERT INTO photos (notice, object_key, sha256, size_bytes, media_type, "
                "width, height, status) SELECT id, 'bench/' || id, '', 0, 'image/jpeg', 1, 1, "
                "'processed' FROM notices WHERE id > $1",
                before,
            )
            pairs = await conn.fetch(
                "SELECT notice, id FROM photos WHERE notice > $1 ORDER BY notice", before
            )
            await conn.copy_records_to_table(
                "faces",
                records=[
                    (r["id"], r["notice"], 0, 1, 1, 0, vectors[i].tobytes(), "bench-synthetic")
                    for i, r in enumerate(pairs)
                ],
                columns=["photo", "notice", "top", "right", "bottom", "left", "encoding", "model"],
            )
    finally:
        await conn.close()


async def dry_run(path: Path, zipped: Path | None, label: str) -> tuple[int, float, float, Any]:
    """``create_run`` of the list at ``path`` (and its ZIP), streamed from the open
    files: (run id, seconds, peak memory growth in MiB, the run)."""
    from rescue.imports.services import create_run
    from rescue.imports.templates import ListKind
    from rescue.runtime import get_store

    big = 1 << 40  # the bench's files may exceed UPLOAD_MAX_BYTES (see the notes)
    with path.open("rb") as fh:
        zf = zipped.open("rb") if zipped is not None else None
        try:
            before = reset_peak()
            t0 = time.perf_counter()
            run = await create_run(
                kind=ListKind.police_missing,
                list_name=f"bench {label}",
                filename=path.name,
                data=fh,
                station="north",
                by=None,
                store=get_store(),
                max_bytes=big,
                photos=zf,
            )
            seconds = time.perf_counter() - t0
            growth = (_status_kb("VmHWM") - before) / 1024
        finally:
            if zf is not None:
                zf.close()
    if run.error_rows:
        raise RuntimeError(f"{label}: {run.error_rows} problem rows: {run.errors[:3]}")
    return run.id, seconds, growth, run


async def run_here(run_id: int) -> tuple[float, float, int]:
    """``execute_run`` in this process: (set-up seconds: the time to the first
    batch less one batch's share of the rate; seconds per row from the first to
    the last batch; rows in that span)."""
    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRun
    from rescue.runtime import get_store

    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run_id)
    marks: dict[int, float] = {}

    def mark(rows: int, _total: int) -> None:
        marks.setdefault(rows, time.perf_counter())

    t0 = time.perf_counter()
    done = await execute_run(run_id=run_id, store=get_store(), on_progress=mark)
    if done.status.value != "done":
        raise RuntimeError(f"run {run_id} did not finish: {done}")
    (r_first, t_first), (r_last, t_last) = min(marks.items()), max(marks.items())
    if r_last == r_first:
        raise RuntimeError("a rate needs at least two batches (rows > 100)")
    per_row = (t_last - t_first) / (r_last - r_first)
    return (t_first - t0) - per_row * r_first, per_row, r_last - r_first


async def measure(report: Report, services: DevServices, photos_n: int) -> None:
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    rows_n = photos_n * PHOTO_EVERY
    rng = random.Random(13)
    names = _names(NAMES, rng)
    photos = lfw_photos()
    tmp = Path(tempfile.mkdtemp(prefix="rescue-bench-photos-", dir=services.tmp))
    zipped = tmp / "photos.zip"
    zip_names = write_zip(zipped, photos)
    store = get_store()
    bucket = get_settings().storage.bucket
    for i, src in enumerate(photos):
        await store.aput(f"bench-photos/p{i}.jpg", src.read_bytes(), "image/jpeg")
    by_zip = lambda k: zip_names[k % len(zip_names)]  # noqa: E731
    by_url = lambda k: f"s3://{bucket}/bench-photos/p{k % len(photos)}.jpg"  # noqa: E731
    report.note(
        f"photos: {len(photos):,} LFW thumbnails (150×150 JPEG) from ../shared/faces, read in "
        f"place; ZIP {zipped.stat().st_size / 2**20:.1f} MiB holding each once, the 照片 "
        f"column names them in turn (each photo used ~{photos_n / len(photos):.1f}×)"
    )

    # -- 1. dry run -------------------------------------------------------------------
    await add_notices(services.env["DATABASE_URL"], GALLERIES[0], names, seed=0)
    gallery = GALLERIES[0]
    warm = tmp / "warm.csv"
    write_list(warm, 500, names, "W", by_zip)
    await dry_run(warm, zipped, "warm-up")
    plain, with_zip, with_url = tmp / "plain.csv", tmp / "zip.csv", tmp / "url.csv"
    write_list(plain, rows_n, names, "N", None)
    write_list(with_zip, rows_n, names, "Z", by_zip)
    write_list(with_url, rows_n, names, "U", by_url)
    _, t_plain, m_plain, _ = await dry_run(plain, None, "plain")
    zip_run, t_zip, m_zip, _ = await dry_run(with_zip, zipped, "zip")
    _, t_url, m_url, _ = await dry_run(with_url, None, "url")
    report.section(f"dry run: {rows_n:,} rows, {photos_n:,} with a photo (streamed from a file)")
    report.row(
        "rows/s, photos in the ZIP",
        f"{rows_n / t_zip:,.0f}",
        f"{rows_n / t_plain:,.0f} (same list, no photos)",
        f"{t_zip / t_plain:.2f}× the time",
        f"{t_zip:.1f} s",
    )
    report.row(
        "rows/s, photos by s3:// URL (read from the store)",
        f"{rows_n / t_url:,.0f}",
        f"{rows_n / t_plain:,.0f} (same list, no photos)",
        f"{t_url / t_plain:.2f}× the time",
        f"{t_url:.1f} s",
    )
    per_zip = (t_zip - t_plain) / photos_n
    per_url = (t_url - t_plain) / photos_n
    report.row(
        "photo check, per photo (ZIP)",
        f"{per_zip * 1e3:.2f} ms",
        f"{t_plain / rows_n * 1e3:.2f} ms per row without photo",
        f"{photos_n / max(1e-9, t_zip - t_plain):,.0f} photos/s",
    )
    report.row(
        "photo check, per photo (URL)",
        f"{per_url * 1e3:.2f} ms",
        f"{t_plain / rows_n * 1e3:.2f} ms per row without photo",
        f"{photos_n / max(1e-9, t_url - t_plain):,.0f} photos/s",
    )
    for label, mib in (("ZIP", m_zip), ("URL", m_url)):
        report.row(
            f"peak memory growth, photos by {label}",
            f"{mib:.1f} MiB",
            f"{m_plain:.1f} MiB (no photos)",
            f"{mib - m_plain:+.1f} MiB",
            "bounded (one photo at a time)",
        )
    report.data["dry_run"] = {
        "rows": rows_n,
        "photos": photos_n,
        "seconds": {"plain": t_plain, "zip": t_zip, "url": t_url},
        "growth_mib": {"plain": m_plain, "zip": m_zip, "url": m_url},
    }

    # -- 2. comparison cost per record against the gallery (and 3. at WORKER_GALLERY) --
    costs: dict[int, dict[str, float]] = {}
    attr_rows, photo_rows = 1_000, 200
    workers: dict[str, Any] = {}
    for i, size in enumerate(GALLERIES):
        if size > gallery:
            await add_notices(services.env["DATABASE_URL"], size - gallery, names, seed=gallery)
            gallery = size
        index_s, gallery_s = await setup_costs()
        a_path, p_path = tmp / f"a{size}.csv", tmp / f"p{size}.csv"
        write_list(a_path, attr_rows, names, f"A{size}", None)
        write_list(p_path, photo_rows, names, f"P{size}", by_zip, photo_every=1, start=i * 1000)
        a_id, *_ = await dry_run(a_path, None, f"attributes {size}")
        p_id, *_ = await dry_run(p_path, zipped, f"photos {size}")
        _, a_row, _ = await run_here(a_id)
        _, p_row, _ = await run_here(p_id)
        costs[size] = {"attr": a_row, "photo": p_row, "index_s": index_s, "gallery_s": gallery_s}
        if size == WORKER_GALLERY:
            workers = await on_workers(services, tmp, names, zipped, by_zip, zip_run, rows_n)
    report.section("comparison cost per record against the gallery (open notices, 1 face each)")
    base = costs[GALLERIES[0]]
    for size in GALLERIES:
        c = costs[size]
        report.row(
            f"{size:,} notices: per row, attributes only",
            f"{c['attr'] * 1e3:.2f} ms",
            f"{base['attr'] * 1e3:.2f} ms ({GALLERIES[0]:,} notices)",
            f"{c['attr'] / base['attr']:.2f}×",
            f"~{size // NAMES} same-name notices compared per row"
            if size >= NAMES
            else "≤ 1 same-name notice per row",
        )
        report.row(
            f"{size:,} notices: per row with a photo (+ encode, face search)",
            f"{c['photo'] * 1e3:.1f} ms",
            f"{base['photo'] * 1e3:.1f} ms ({GALLERIES[0]:,} notices)",
            f"{c['photo'] / base['photo']:.2f}×",
        )
        report.row(
            f"{size:,} notices: run set-up, notices index / face gallery load",
            f"{c['index_s']:.2f} s / {c['gallery_s']:.2f} s",
            f"{base['index_s']:.2f} s / {base['gallery_s']:.2f} s",
            f"{(c['index_s'] + c['gallery_s']) / (base['index_s'] + base['gallery_s']):.1f}×",
            "once per run",
        )
    report.data["comparison"] = costs

    walls, halves, peaks = workers["walls"], workers["halves"], workers["peaks"]
    one = walls.get(1)  # the baseline: one worker process, this run (None if not run)

    def vs_one(text: str) -> str:
        return f"{text} (1 worker process)" if one else "1 worker process: not run (--processes)"

    def ratio(processes: int) -> str:
        return f"{one / walls[processes]:.2f}×" if one else "—"

    chunk_rows = get_settings().upload.import_chunk_rows
    report.section(
        f"ONE list on Dramatiq workers: {rows_n:,} rows, {photos_n:,} photos, "
        f"{WORKER_GALLERY:,} open notices, chunks of {chunk_rows:,} rows"
    )
    for processes in sorted(walls):
        who = f"{processes} worker process{'es' if processes > 1 else ''}"
        report.row(
            f"{who}: wall time",
            f"{walls[processes]:,.0f} s",
            vs_one(f"{one:,.0f} s" if one else ""),
            f"{ratio(processes)} as fast",
            "≤ 2× on 2 cores" if processes == 2 else "",
        )
        report.row(
            f"{who}: records/s",
            f"{rows_n / walls[processes]:,.1f}/s",
            vs_one(f"{rows_n / one:,.1f}/s" if one else ""),
            ratio(processes),
        )
        report.row(
            f"{who}: photos/s",
            f"{photos_n / walls[processes]:,.2f}/s",
            vs_one(f"{photos_n / one:,.2f}/s" if one else ""),
            ratio(processes),
        )
        first, second = halves[processes]
        report.row(
            f"{who}: records/s, first / second half of the rows",
            f"{rows_n / 2 / first:,.1f}/s / {rows_n / 2 / second:,.1f}/s",
            f"{rows_n / walls[processes]:,.1f}/s (whole run)",
            f"{first / second:.2f} (second half / first half rate)",
            "steady: the extrapolation holds" if 0.8 <= first / second <= 1.25 else "NOT steady",
        )
        report.row(
            f"{who}: peak RSS per worker process",
            " / ".join(f"{m:.0f} MiB" for m in peaks[processes]),
            "",
            "",
            "chunks done per process: "
            + ", ".join(str(n) for n in sorted(workers["chunks"][processes].values())),
        )
    report.data["workers"] = workers
    full_rows, full_photos = 100_000, 20_000
    factor = full_rows / rows_n
    label = (
        "measured"
        if rows_n == full_rows
        else f"extrapolated from a 1/{factor:g} run (rate of this run × {factor:g})"
    )
    report.section(f"a full-size list ({full_rows:,} records, {full_photos:,} photos)")
    for processes in sorted(walls):
        report.row(
            f"{processes} worker process{'es' if processes > 1 else ''}: time for the list",
            f"{walls[processes] * factor / 60:,.0f} min",
            vs_one(f"{one * factor / 60:,.0f} min" if one else ""),
            f"{ratio(processes)} as fast",
            label,
        )
    report.note(
        "a run is cut into chunks of IMPORT_CHUNK_ROWS rows, one Dramatiq message each; "
        "the imports queue is consumed one message at a time per worker process "
        "(workers.broker.LONG_JOB_QUEUES), so the processes share one list. The bench "
        f"scales the chunk with the list (IMPORT_CHUNK_ROWS={chunk_rows:,} here) so a "
        "1/N run has about as many chunks as a full-size list has with the default"
    )
    report.note(
        "the bench passes max_bytes beyond UPLOAD_MAX_BYTES (20 MiB): a ZIP of 20,000 real "
        "photos is uploaded under IMPORT_MAX_BYTES (default 4 GiB), spooled to disk"
    )


async def setup_costs() -> tuple[float, float]:
    """Seconds to build a run's notices index and to load a fresh face gallery (both
    sides), as ``execute_run`` does once per run."""
    from rescue.imports.compare import TargetIndex
    from rescue.matching.services import GallerySet

    t0 = time.perf_counter()
    await TargetIndex.build()
    t1 = time.perf_counter()
    galleries = GallerySet()
    await galleries.notices.refresh()
    await galleries.cases.refresh()
    return t1 - t0, time.perf_counter() - t1


async def on_workers(
    services: DevServices,
    tmp: Path,
    names: list[str],
    zipped: Path,
    by_zip: Callable[[int], str],
    whole_run: int,
    rows_n: int,
) -> dict[str, Any]:
    """ONE list on one worker process, then the same list (a copy with other
    external ids, checked again) on two: each run's chunks are shared by the
    processes. Wall times (s), the rates of the first and second half of the
    rows (is the rate steady?), each worker process's peak RSS (MiB) and which
    process did how many chunks."""
    import workers.actors as actors
    from rescue.imports.services import start_run

    async def enqueue(run_id: int, chunk_no: int | None) -> None:
        actors.run_import.send(run_id, chunk_no)

    copy = tmp / "whole-2.csv"
    write_list(copy, rows_n, names, "Y", by_zip)
    second_run = (await dry_run(copy, zipped, "whole list, second copy"))[0]
    out: dict[str, Any] = {"walls": {}, "halves": {}, "peaks": {}, "chunks": {}}
    for processes, run_id in ((1, whole_run), (2, second_run)):
        if processes not in PROCESSES:
            continue
        worker = services.start_worker(
            processes,
            1,
            log_name=f"import-worker-{processes}.log",
            # Its own metrics port: another worker on this machine may hold the default.
            extra_env={"WORKER_METRICS_PORT": str(free_port())},
        )
        try:
            await asyncio.sleep(3)  # the processes boot (imports, broker) before the clock starts
            t0 = time.perf_counter()
            await start_run(run_id=run_id, enqueue=enqueue)
            t_half, t_end, peaks = await until_done(run_id, worker, limit_s=6 * 3600)
            out["walls"][processes] = t_end - t0
            out["halves"][processes] = (t_half - t0, t_end - t_half)
            out["peaks"][processes] = peaks
            out["chunks"][processes] = await chunks_by_process(run_id)
        except Exception:
            print(services.log(f"import-worker-{processes}.log"))
            raise
        finally:
            stop_process(worker)
    print(f"  (workers: {out['walls']})", flush=True)
    return out


async def until_done(run_id: int, master: Any, limit_s: float) -> tuple[float, float, list[float]]:
    """Poll the run (its rows done summed over its chunks) until it is done: the
    times half its rows and all were done, and the worker processes' peak RSS."""
    from rescue.imports.services import get_run

    deadline = time.monotonic() + limit_s
    t_half = None
    peaks: dict[str, float] = {}
    while True:
        run = await get_run(run_id=run_id)
        peaks.update(worker_peaks_mib(master))
        if run.status.value == "failed":
            raise RuntimeError(f"the run failed: {run.failure_reason}")
        now = time.perf_counter()
        if t_half is None and run.rows_done * 2 >= run.total_rows:
            t_half = now
        if run.status.value == "done":
            assert t_half is not None
            return t_half, now, sorted(peaks.values())
        if time.monotonic() > deadline:
            raise RuntimeError(f"run not done after {limit_s:.0f} s: {run}")
        await asyncio.sleep(0.5)


async def chunks_by_process(run_id: int) -> dict[str, int]:
    """How many of the run's chunks each worker process did."""
    from rescue.imports.tables import ImportChunk

    done: dict[str, int] = {}
    for r in await ImportChunk.select(ImportChunk.worked_by).where(ImportChunk.run == run_id):
        done[r["worked_by"]] = done.get(r["worked_by"], 0) + 1
    return done


def worker_peaks_mib(master: Any) -> dict[str, float]:
    """Peak resident set (VmHWM, MiB) of each worker process under the dramatiq master."""
    children: list[str] = []
    for task in Path(f"/proc/{master.pid}/task").iterdir():
        try:
            children += (task / "children").read_text().split()
        except OSError:  # a kernel without CONFIG_PROC_CHILDREN
            continue
    peaks = {}
    for child in children:
        try:
            text = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peaks[child] = int(line.split()[1]) / 1024
    return peaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--photos",
        type=int,
        default=None,
        help="photos in the list (rows = 5 × photos); default 20,000 × BENCH_SCALE",
    )
    parser.add_argument(
        "--processes",
        default="1,2",
        help="worker process counts of the whole-list runs (default 1,2)",
    )
    args = parser.parse_args(argv)
    global PROCESSES
    PROCESSES = tuple(int(n) for n in args.processes.split(","))
    photos_n = args.photos or max(200, int(20_000 * scale()))
    if args.photos:  # recorded as the run's scale: bench.report keeps quick runs apart
        os.environ["BENCH_SCALE"] = f"{photos_n / 20_000:g}"
    # Chunks scaled with the list: a 1/N run has about as many chunks as a
    # full-size list with the default (IMPORT_CHUNK_ROWS), at least one batch each.
    os.environ.setdefault("IMPORT_CHUNK_ROWS", str(max(100, int(1000 * photos_n / 20_000 + 0.5))))
    report = Report("import_photos", "Import of a list with photos")
    on_dev_services(lambda services: measure(report, services, photos_n))
    report.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
