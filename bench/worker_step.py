"""The whole worker step at national gallery sizes (issue 16, "Speed at scale").

One run, gallery sizes 1 M then 4 M notice faces (``--faces``, repeatable):

1. The worker step for a one-face case photo, exactly what the ``process_photo``
   actor runs (workers.actors): read the original from the object store, decode,
   detect, encode, store the face, match the case against every open notice
   (deletion log and new faces read, the notices gallery searched, eligibility,
   scoring, the candidate ledger written), mark the photo processed, and the
   duplicate-intake check against the other cases, alongside the match
   (``rescue.matching.services.process_photo_job``). Baseline, alternated with it
   in the same run: the worker's detection + encoding of the same photo alone
   (``rescue.matching.services.detect_faces``: decode, detect, encode, quality).
   Target: ≤ 1.15×. The step's time is split into gallery refresh, search and the
   rest (DB reads, ledger write) by timing wrappers around ``SideGallery.refresh``
   and ``FaceGallery.search``.
2. Search cost: a multi-face photo (3 probes) against one face, ``FaceGallery.search``
   as the worker calls it (target ≤ 1.5×), and ``FaceGallery.top_k`` (k = 10)
   against FAISS ``IndexFlatL2`` on the same matrix and threads, as shipped and
   tuned (BLAS for every query count, cached norms; the fastest is "tuned"), with
   the top-10 ids of both asserted equal to a float64 brute force.
3. Memory: the worker's RSS growth for the gallery, per million faces.

What is real and what is not: PostgreSQL holds every synthetic face as a real
row (COPY: notices of 3 faces each, one photo per notice, 1 KB float64 encoding,
the model in use), so the step's queries run against tables of that size and its
hits are real, open notices that become candidates. The worker's gallery is
filled in memory from the same vectors and ids (a first load of 4 M rows through
Piccolo takes minutes and happens once per worker start, not per job); from
there on its refreshes are the service's own incremental ones. Synthetic
encodings are drawn as bench/search.py draws them. The cases gallery (duplicate
intake) holds only this bench's cases.

Baseline noise: detection alone varies by ±20 % from one call to the next on this
VM, so the step over a separate detection call (the row's median of 21 per-round
ratios) moves by several hundredths between runs. The next row divides each step
by the detection + encoding it ran itself (timed inside the step), which leaves
only the work the service adds around detection in the variation.
``BENCH_AB=1`` alternates rounds, in pairs, between the service as it is and
``rescue.db.concurrently`` replaced by calls one after the other, and prints each
variant's time beyond detection (``BENCH_ROUNDS`` sets the rounds).
``BENCH_SCAN_PATH`` (one of ``rescue.matching.scan.PATHS``, e.g. ``avx2``) makes the
scan kernel take that path, to measure a CPU without the best one.

Run (needs PostgreSQL and Redis as ``make test``; ~15 min, ~8 GB RAM and ~6 GB of
PostgreSQL disk at 4 M; part of ``make bench``): ``.venv/bin/python -m bench.worker_step``
(``--faces N`` repeatable, growing; ``BENCH_PROFILE=1`` prints every SQL
statement of a job by time, as found the per-query connection and pool reset, and
the ~55 statements of the ledger: 101 statements per job before, 34 after, issue 16;
figures in docs/performance.md "Worker step at scale").
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bench._common import FACES_DIR, Report, fmt_seconds, paired, rss_bytes, scale
from bench.search import K, encoding_shape, exact_top_k, synthetic
from tests import preflight

PHOTO = "face_recognition_repo/examples/knn_examples/train/obama/obama.jpg"
PERSON_NOTICE = "face_recognition_repo/examples/knn_examples/train/obama/obama2.jpg"
#: Faces per COPY batch (bounded memory in this process).
_COPY_BATCH = 250_000
#: Rounds of the worker step against detection alone, in alternating order (each
#: round costs ~1 s; 7 rounds left the 4 M median 0.1× apart between runs).
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "21"))


async def copy_notice_faces(database_url: str, matrix: np.ndarray, model: str) -> np.ndarray:
    """Insert ``matrix`` rows as faces of new notices (3 per notice, one photo each).

    Returns (n, 3) int64 ids: face, notice, photo, in row order.
    """
    import asyncpg

    n = len(matrix)
    out = np.empty((n, 3), dtype=np.int64)
    conn = await asyncpg.connect(database_url)
    try:
        for start in range(0, n, _COPY_BATCH):
            end = min(n, start + _COPY_BATCH)
            notices = (end - start + 2) // 3
            async with conn.transaction():
                first_notice = await conn.fetchval(
                    "WITH t AS (INSERT INTO notices (name, source) "
                    "SELECT 'bench ' || g, 'family' FROM generate_series(1, $1) g "
                    "RETURNING id) SELECT min(id) FROM t",
                    notices,
                )
                first_photo = await conn.fetchval(
                    "WITH t AS (INSERT INTO photos (notice, object_key, sha256, "
                    "size_bytes, media_type, width, height, status, encoded_at) "
                    "SELECT id, 'bench/' || id, '', 0, 'image/jpeg', 1, 1, 'processed', now() "
                    "FROM notices WHERE id >= $1 ORDER BY id RETURNING id) SELECT min(id) FROM t",
                    first_notice,
                )
                offsets = np.arange(end - start) // 3
                owners = first_notice + offsets
                photos = first_photo + offsets
                enc = matrix[start:end].astype("<f8")
                records = [
                    (int(photos[i]), int(owners[i]), 0, 1, 1, 0, enc[i].tobytes(), model)
                    for i in range(end - start)
                ]
                await conn.copy_records_to_table(
                    "faces",
                    records=records,
                    columns=[
                        "photo",
                        "notice",
                        "top",
                        "right",
                        "bottom",
                        "left",
                        "encoding",
                        "model",
                    ],
                )
                ids = await conn.fetch(
                    "SELECT id, notice, photo FROM faces WHERE notice >= $1 ORDER BY id",
                    first_notice,
                )
            out[start:end] = np.array([tuple(r) for r in ids], dtype=np.int64)
            # consecutive serial ids assumed by nothing: the ids are read back
        # VACUUM as well: otherwise autovacuum takes up the freshly loaded tables
        # during the measurements and holds one of the two cores for minutes (seen:
        # the worker step's search 2x its time alone, 2026-12-03).
        await conn.execute("VACUUM (ANALYZE) notices, photos, faces")
        await _wait_for_autovacuum(conn)
    finally:
        await conn.close()
    return out


async def _wait_for_autovacuum(conn: Any, *, polls: int = 240) -> None:
    """Wait (at most ``polls`` half-seconds) while autovacuum works in this database."""
    for _ in range(polls):
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'autovacuum:%'"
        )
        if not busy:
            return
        await asyncio.sleep(0.5)


class Timers:
    """Wall time spent in wrapped callables (async or not), summed per name."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)

    def wrap_async(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - t0

        return wrapped

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - t0

        return wrapped


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f}"


async def run(report: Report, sizes: list[int]) -> None:
    from rescue.cases.tables import Case
    from rescue.db import start_pool
    from rescue.matching import gallery as gallery_module
    from rescue.matching import services as matching
    from rescue.matching.embedding import MODEL_NAME
    from rescue.matching.services import GallerySet, SideGallery, detect_faces
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings

    settings = get_settings()
    store = get_store()
    # The pool each worker process opens at boot (workers.lifecycle.DatabasePool).
    pooled = await start_pool(settings.database.worker_pool_max_size, min_size=0)
    report.note(
        f"database: a pool of ≤ {settings.database.worker_pool_max_size} connections, "
        "as a worker process opens it"
        if pooled
        else "database: no pool (WORKER_DB_POOL_MAX=0), a new connection per query"
    )
    galleries = GallerySet()
    data = (FACES_DIR / PHOTO).read_bytes()
    database_url = os.environ["DATABASE_URL"]

    counter = iter(range(1, 10**9))

    async def new_photo(owner: str, owner_id: int, blob: bytes) -> int:
        key = f"bench/step-{next(counter)}.jpg"
        await store.aput(key, blob, "image/jpeg")
        rows = await Photo.insert(
            Photo(
                **{owner: owner_id},
                object_key=key,
                sha256="0" * 64,
                size_bytes=len(blob),
                media_type="image/jpeg",
                width=1,
                height=1,
                status="pending",
            )
        ).returning(Photo.id)
        return int(rows[0]["id"])

    async def new_case() -> int:
        ref = f"B-{next(counter)}"
        rows = await Case.insert(
            Case(
                reference=ref,
                placeholder_name=f"无名氏-{ref}",
                station="bench",
                admitted_at=datetime.now(UTC),
            )
        ).returning(Case.id)
        return int(rows[0]["id"])

    async def worker_step(photo_id: int) -> None:
        """What the ``process_photo`` actor runs (workers.actors)."""
        await matching.process_photo_job(
            photo_id=photo_id, store=store, settings=settings, galleries=galleries
        )

    # The notice of the person in the case photo (a real face, a real candidate).
    from rescue.notices.tables import Notice

    rows = await Notice.insert(Notice(name="李四", source="family")).returning(Notice.id)
    person_notice = int(rows[0]["id"])
    person_data = (FACES_DIR / PERSON_NOTICE).read_bytes()
    person_photo = await new_photo("notice", person_notice, person_data)
    await worker_step(person_photo)

    mean, std = encoding_shape()
    rng = np.random.default_rng(4)
    matrix = np.zeros((0, 128), dtype=np.float32)
    ids = np.zeros((0, 3), dtype=np.int64)
    # The worker's notices gallery, from the database (the real notice's face).
    side: SideGallery = galleries.notices
    await side.refresh()
    real = side_rows_real(side)
    gallery_base_rss = 0
    for n in sizes:
        extra = n - len(matrix)
        assert extra > 0, "--faces must grow"
        t0 = time.perf_counter()
        more = synthetic(extra, mean, std, rng)
        more_ids = await copy_notice_faces(database_url, more, MODEL_NAME)
        copy_s = time.perf_counter() - t0
        matrix = np.concatenate([matrix, more]) if len(matrix) else more
        ids = np.concatenate([ids, more_ids])
        del more
        gc.collect()
        # The gallery a worker holds after loading the side: same ids and vectors.
        side.gallery = gallery_module.FaceGallery()  # replaced: drop the old one first
        gc.collect()
        before = rss_bytes()
        gallery = gallery_module.FaceGallery()
        gallery.reserve(n + 1)
        gallery.add(*real)
        gallery.add(ids[:, 0], ids[:, 1], ids[:, 2], matrix)
        gc.collect()
        growth = rss_bytes() - before
        side.gallery = gallery
        side.last_face_id = int(max(ids[:, 0].max(), side.last_face_id))
        gallery_base_rss = growth
        report.section(f"{n:,} notice faces ({n // 3:,} notices) — {load_text()}")
        report.note(
            f"{n:,} faces: {extra:,} rows COPied into PostgreSQL in {copy_s:.0f} s; "
            f"{load_text()} at the start of the measurements"
        )
        await side.refresh()  # steady state: incremental from here on
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            import asyncpg

            spent: dict[str, list[float]] = defaultdict(list)
            timeline: list[tuple[float, float, str]] = []
            originals = {m: getattr(asyncpg.Connection, m) for m in ("fetch", "execute")}

            def timed_sql(
                method: Callable[..., Any],
                spent: dict[str, list[float]] = spent,
                timeline: list[tuple[float, float, str]] = timeline,
            ) -> Callable[..., Any]:
                async def wrapped(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                    t0 = time.perf_counter()
                    try:
                        return await method(self, query, *args, **kwargs)
                    finally:
                        t1 = time.perf_counter()
                        spent[" ".join(query.split())[:150]].append(t1 - t0)
                        timeline.append((t0, t1, " ".join(query.split())[:90]))

                return wrapped

            traced = {
                "search": (gallery_module.FaceGallery, "search"),
                "detect": (matching, "detect_faces"),
            }
            untraced = {k: getattr(o, a) for k, (o, a) in traced.items()}

            def traced_call(
                name: str,
                fn: Callable[..., Any],
                timeline: list[tuple[float, float, str]] = timeline,
            ) -> Callable[..., Any]:
                def wrapped(*args: Any, **kwargs: Any) -> Any:
                    t0 = time.perf_counter()
                    try:
                        return fn(*args, **kwargs)
                    finally:
                        timeline.append((t0, time.perf_counter(), f"[{name}]"))

                return wrapped

            for _ in range(3):
                spent.clear()
                timeline.clear()
                for m, fn in originals.items():
                    setattr(asyncpg.Connection, m, timed_sql(fn))
                for k, (o, a) in traced.items():
                    setattr(o, a, traced_call(k, untraced[k]))
                case_id = await new_case()
                photo_id = await new_photo("case", case_id, data)
                prof = cProfile.Profile()
                prof.enable()
                job_t0 = time.perf_counter()
                await worker_step(photo_id)
                job_t1 = time.perf_counter()
                prof.disable()
                for m, fn in originals.items():
                    setattr(asyncpg.Connection, m, fn)
                for k, (o, a) in traced.items():
                    setattr(o, a, untraced[k])
            order = os.environ.get("BENCH_PROFILE_SORT", "cumulative")
            pstats.Stats(prof).sort_stats(order).print_stats(40)
            total = sum(sum(v) for v in spent.values())
            print(f"SQL: {sum(len(v) for v in spent.values())} statements, {total * 1e3:.1f} ms")
            for sql, times in sorted(spent.items(), key=lambda kv: -sum(kv[1])):
                print(f"{sum(times) * 1e3:8.1f} ms {len(times):3d}x  {sql}")
            print(f"timeline of the last job ({(job_t1 - job_t0) * 1e3:.1f} ms; start-end ms):")
            for t0, t1, what in sorted(timeline):
                print(f"{(t0 - job_t0) * 1e3:7.1f} {(t1 - job_t0) * 1e3:7.1f}  {what}")

        # 1. the whole worker step against detection + encoding alone.
        timers = Timers()
        orig_refresh = SideGallery.refresh
        orig_search = gallery_module.FaceGallery.search
        orig_detect = matching.detect_faces
        SideGallery.refresh = timers.wrap_async("refresh", orig_refresh)  # type: ignore[method-assign]
        # The match's search of the notices only: the duplicate check's search of
        # the cases runs alongside it (and waits for the scan's threads), so
        # summing both counted the same milliseconds twice.
        timed_search = timers.wrap("search", orig_search)

        def search(
            gallery: Any,
            *args: Any,
            timed: Callable[..., Any] = timed_search,
            untimed: Callable[..., Any] = orig_search,
        ) -> Any:
            return (timed if gallery is galleries.notices.gallery else untimed)(gallery, *args)

        gallery_module.FaceGallery.search = search  # type: ignore[method-assign]
        matching.detect_faces = timers.wrap("detect", orig_detect)  # type: ignore[assignment]
        ab = os.environ.get("BENCH_AB")
        orig_concurrently = matching.concurrently

        async def sequentially(*calls: Any) -> list[Any]:
            return [await c() for c in calls]

        # Per round: the step's time beyond the detection it ran itself, by variant
        # (BENCH_AB: rounds alternate between rescue.db.concurrently and calls one
        # after the other, in pairs), and the step over its own detection.
        ab_over: dict[bool, list[float]] = {True: [], False: []}
        own_ratios: list[float] = []
        steps: list[float] = []
        detects: list[float] = []
        parts: dict[str, list[float]] = defaultdict(list)
        candidates_found = 0
        try:
            for round_ in range(ROUNDS + 1):
                case_id = await new_case()
                photo_id = await new_photo("case", case_id, data)
                before = dict(timers.spent)
                variant = bool(round_ // 2 % 2) if ab else True
                matching.concurrently = orig_concurrently if variant else sequentially  # type: ignore[assignment]
                # Alternate which goes first, so that neither gets the other's caches.
                if round_ % 2:
                    t0 = time.perf_counter()
                    detect_faces(data, settings)
                    t1 = time.perf_counter()
                    await worker_step(photo_id)
                    t2 = time.perf_counter()
                    step_s, detect_s = t2 - t1, t1 - t0
                else:
                    t0 = time.perf_counter()
                    await worker_step(photo_id)
                    t1 = time.perf_counter()
                    detect_faces(data, settings)
                    t2 = time.perf_counter()
                    step_s, detect_s = t1 - t0, t2 - t1
                if round_ == 0:
                    continue  # warm-up
                steps.append(step_s)
                detects.append(detect_s)
                in_step = timers.spent["detect"] - before.get("detect", 0.0)
                ab_over[variant].append(step_s - in_step)
                own_ratios.append(step_s / in_step)
                spent = {k: timers.spent[k] - before.get(k, 0.0) for k in ("refresh", "search")}
                for k, v in spent.items():
                    parts[k].append(v)
                parts["rest"].append(step_s - in_step - sum(spent.values()))
                status = await Photo.select(Photo.status).where(Photo.id == photo_id).first()
                assert status is not None
                assert status["status"] == "processed", status
                from rescue.matching.tables import Candidate

                found = await Candidate.select(Candidate.notice).where(Candidate.case == case_id)
                assert person_notice in {int(r["notice"]) for r in found}, found
                candidates_found = len(found)
        finally:
            SideGallery.refresh = orig_refresh  # type: ignore[method-assign]
            gallery_module.FaceGallery.search = orig_search  # type: ignore[method-assign]
            matching.detect_faces = orig_detect  # type: ignore[assignment]
            matching.concurrently = orig_concurrently  # type: ignore[assignment]
        ratios = sorted(s / d for s, d in zip(steps, detects, strict=True))
        ratio = float(np.median(ratios))
        step, detect = float(np.median(steps)), float(np.median(detects))
        report.row(
            "worker step, one-face case photo (process_photo actor)",
            fmt_seconds(step),
            f"detection + encoding alone {fmt_seconds(detect)}",
            f"{ratio:.2f}×",
            "≤ 1.15×",
            ratio <= 1.15,
        )
        own = float(np.median(own_ratios))
        beyond = float(np.median([o for xs in ab_over.values() for o in xs]))
        report.row(
            "the same steps ÷ the detection + encoding each ran itself (paired, same call)",
            fmt_seconds(beyond),
            "beyond the step's own detection (median)",
            f"{own:.2f}×",
            "≤ 1.15×",
            own <= 1.15,
        )
        report.note(
            f"{n:,} faces, worker step / its own detection per round: "
            + ", ".join(f"{r:.2f}" for r in sorted(own_ratios))
        )
        if ab:
            for v, xs in ab_over.items():
                report.note(
                    f"BENCH_AB: {'rescue.db.concurrently' if v else 'one after the other'}: "
                    f"step beyond its own detection, median {np.median(xs) * 1e3:.1f} ms "
                    f"over {len(xs)} rounds: " + ", ".join(f"{x * 1e3:.0f}" for x in sorted(xs))
                )
        # Each part's median over the rounds (the rest: step − detection − both,
        # round by round), so that one slow round moves none of them.
        per = {k: float(np.median(v)) for k, v in parts.items()}
        rest = per.get("rest", 0.0)
        report.row(
            "of which: gallery refreshes (both sides)",
            fmt_seconds(per.get("refresh", 0)),
            f"detection + encoding {fmt_seconds(detect)}",
            f"{per.get('refresh', 0) / detect:.3f}×",
        )
        report.row(
            "of which: the match's gallery search (notices N)",
            fmt_seconds(per.get("search", 0)),
            f"detection + encoding {fmt_seconds(detect)}",
            f"{per.get('search', 0) / detect:.3f}×",
        )
        report.row(
            "of which: the rest (object store, DB reads and ledger writes; median of "
            "step − its own detection − refreshes − the match's search per round)",
            fmt_seconds(rest),
            f"detection + encoding {fmt_seconds(detect)}",
            f"{rest / detect:.3f}×",
        )
        report.note(
            f"{n:,} faces, worker step / detection+encoding per round: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"; {candidates_found} candidate(s) per case (the person's notice among them)"
        )

        # 2. search cost: multi-face vs one face; top_k vs FAISS.
        srng = np.random.default_rng(n)
        near = matrix[srng.integers(0, n, 2)] + srng.normal(0, 0.02, (2, 128))
        probes = np.vstack([near, synthetic(1, mean, std, srng)]).astype(np.float64)
        bound = settings.matching.threshold
        one, three = probes[:1], probes[:3]
        multi = paired(
            lambda g=gallery, p=three, b=bound: g.search(p, b),
            lambda g=gallery, p=one, b=bound: g.search(p, b),
            rounds=9,
        )
        report.row(
            "FaceGallery.search, 3-face photo",
            fmt_seconds(multi.value),
            f"one face {fmt_seconds(multi.baseline)}",
            f"{multi.ratio:.2f}×",
            "≤ 1.5×",
            multi.ratio <= 1.5,
        )
        report.note(f"{n:,} faces, 3 faces vs 1 face: {multi.spread()}")
        floor = paired(
            lambda g=gallery, p=one, b=bound: g.search(p, b),
            lambda m=matrix: m.sum(),
            rounds=9,
        )
        report.row(
            "FaceGallery.search, one face: floor of any exact scan",
            fmt_seconds(floor.value),
            f"one bare pass over the matrix (sum) {fmt_seconds(floor.baseline)}",
            f"{floor.ratio:.2f}×",
            "",
        )
        report.note(f"{n:,} faces, one-face search vs a bare pass: {floor.spread()}")
        compare_faiss(report, n, gallery, matrix, ids[:, 0], probes)

        # 3. memory.
        report.row(
            "worker memory for the gallery per million faces (RSS growth)",
            f"{gallery_base_rss / n * 1e6 / 2**20:.0f} MiB",
            f"raw float32 matrix {512 * 1e6 / 2**20:.0f} MiB",
            f"{gallery_base_rss / (n * 512):.2f}×",
            "",
        )
        report.row(
            "gallery arrays per million faces (nbytes)",
            f"{gallery.nbytes / n * 1e6 / 2**20:.0f} MiB",
            f"raw float32 matrix {512 * 1e6 / 2**20:.0f} MiB",
            f"{gallery.nbytes / (n * 512):.2f}×",
            "",
        )
        report.data[str(n)] = {
            "step": step,
            "detect": detect,
            "ratio": ratio,
            "parts": per,
            "multi": multi.ratio,
            "rss_growth": gallery_base_rss,
            "nbytes": gallery.nbytes,
            "loadavg": os.getloadavg(),
        }


def side_rows_real(side: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The faces the side held from the database before the synthetic ones."""
    g = side.gallery
    size = len(g)
    return (
        g._ids[:size, 0].copy(),
        g._ids[:size, 1].copy(),
        g._ids[:size, 2].copy(),
        g.vectors.copy(),
    )


def compare_faiss(
    report: Report,
    n: int,
    gallery: Any,
    matrix: np.ndarray,
    face_ids: np.ndarray,
    probes: np.ndarray,
) -> None:
    """FaceGallery.top_k against FAISS IndexFlatL2, as shipped and tuned, same threads."""
    import faiss
    from threadpoolctl import threadpool_info

    threads = max((int(i.get("num_threads", 1)) for i in threadpool_info()), default=1)
    faiss.omp_set_num_threads(threads)
    want_rows, _ = exact_top_k(matrix, probes, K)
    want = face_ids[want_rows]
    got, _ = gallery.top_k(probes, K)
    assert np.array_equal(got, want), "FaceGallery.top_k differs from float64 exact"
    index = faiss.IndexFlatL2(128)
    index.add(matrix)
    shipped = faiss.cvar.distance_compute_blas_threshold
    settings = {
        "as shipped": (shipped, False),
        "BLAS for every query": (1, False),
        "BLAS + cached norms": (1, True),
    }
    for what, pr, rounds in (("1 probe", probes[:1], 9), ("3 probes", probes[:3], 7)):
        p32 = np.ascontiguousarray(pr, dtype=np.float32)
        times: dict[str, Any] = {}
        for label, (threshold, norms) in settings.items():
            faiss.cvar.distance_compute_blas_threshold = threshold
            if norms:
                index.sync_l2norms()
            else:
                index.clear_l2norms()
            _d, rows = index.search(p32, K)
            assert np.array_equal(face_ids[rows], want[: len(pr)]), f"FAISS {label} differs"
            times[label] = paired(
                lambda p32=p32: index.search(p32, K),
                lambda pr=pr: gallery.top_k(pr, K),
                rounds=rounds,
            )
        faiss.cvar.distance_compute_blas_threshold = shipped
        index.clear_l2norms()
        tuned = min(times, key=lambda label: times[label].value)
        for label, timing in times.items():
            is_tuned = label == tuned
            report.row(
                f"{what}: FaceGallery.top_k vs FAISS IndexFlatL2 "
                f"{label}{' (tuned: fastest)' if is_tuned else ''}",
                fmt_seconds(timing.baseline),
                f"FAISS {fmt_seconds(timing.value)}",
                f"{1 / timing.ratio:.2f}× FAISS's time",
                "≤ 1× tuned" if is_tuned else "",
                1 / timing.ratio <= 1 if is_tuned else None,
            )
        report.note(
            f"{n:,} faces, {what}: FAISS/gallery time ratios, tuned ({tuned}) "
            f"{times[tuned].spread()}; top-{K} ids of FaceGallery and of every FAISS "
            f"setting equal to float64 exact ({threads} threads each)"
        )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--faces",
        type=int,
        action="append",
        help="gallery sizes (repeatable); default 1M and 4M × BENCH_SCALE",
    )
    args = parser.parse_args(argv)
    sizes = sorted(args.faces or [int(b * scale()) for b in (1_000_000, 4_000_000)])
    issues = preflight.problems()
    if issues:
        print("\n".join(issues), file=sys.stderr)
        return 1
    from rescue.devservices import DevServices

    services = DevServices(
        pg_admin_url=preflight.pg_url(), redis_url=preflight.redis_url(), prefix="rescue-bench"
    )
    os.environ.update(services.start())
    try:
        report = Report("worker_step", "Worker step at scale")
        report.note(f"{load_text()} when the run began")
        from rescue.matching import scan

        scan.force_path(os.environ.get("BENCH_SCAN_PATH", "best"))
        report.note(f"gallery scan: {scan.path() or 'numpy'} path, {scan.THREADS} thread(s)")
        asyncio.run(run(report, sizes))
        report.note(f"{load_text()} when the run ended")
        report.save()
    finally:
        services.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
