"""1:N face search: the service's FaceGallery against face_recognition and a bare scan.

Galleries of 10 k, 100 k and 1 M synthetic faces (× ``BENCH_SCALE``), drawn
like real dlib encodings: per-dimension mean and spread fitted on real
encodings of ``../shared/faces/lfw_subset`` (real encodings have norm ≈ 1.42 ±
0.07 and share a common mean direction, so random vectors of that shape give
realistic distances). Half the probes are noisy copies of gallery faces (a true
match exists), half are new faces.

Measured per gallery size, for one probe and for a batch of 100 probes:
- ``FaceGallery.top_k`` (k = 10) and ``FaceGallery.search`` (threshold 0.6);
- baseline: ``face_recognition.face_distance`` over the same gallery (float64,
  as a list of encodings becomes), one call per probe, then ``argpartition``;
- floor: one bare pass over the same float32 matrix (``matrix.sum()``), and for
  the batch the bare SGEMM ``matrix @ probes.T`` (a batch is compute-bound);
- the top-k face ids must equal the exact float64 answer for every probe;
- memory: RSS growth of the process while the gallery is built, against the raw
  float32 matrix (N × 512 bytes).

Also per size: the float16-storage variant (:class:`Float16Gallery`, answers
asserted identical to float64 exact) and FAISS ``IndexFlatL2`` (when faiss-cpu is
installed; as shipped and with BLAS for every query count, same threads), each
against the service's ``FaceGallery.top_k`` timed in alternation; memory per
million faces.

Run: ``.venv/bin/python -m bench.search`` (``BENCH_SCALE=0.1`` for a quick run;
``--faces 200000 --float16-only`` for one size of the float16/FAISS comparison,
``--faces 1000000 --faces 4000000`` on a quiet machine).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import face_recognition
import numpy as np

from bench._common import (
    CACHE,
    FACES_DIR,
    Report,
    fmt_seconds,
    labels,
    paired,
    rss_bytes,
    scale,
    timed,
)
from rescue.matching.gallery import DIM, FaceGallery

K = 10
BATCH = 100
THRESHOLD = 0.6


def encoding_shape() -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of real dlib encodings (cached)."""
    path = CACHE / "encoding-shape.npz"
    if path.exists():
        data = np.load(path)
        return data["mean"], data["std"]
    rows = [r for r in labels() if r["set"] == "lfw_subset"][:80]
    found = []
    for row in rows:
        image = face_recognition.load_image_file(FACES_DIR / row["path"])
        encodings = face_recognition.face_encodings(image)
        if encodings:
            found.append(encodings[0])
    real = np.array(found)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, mean=real.mean(0), std=real.std(0))
    return real.mean(0), real.std(0)


def synthetic(n: int, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 128) float32 encodings shaped like real ones, generated in chunks."""
    out = np.empty((n, DIM), dtype=np.float32)
    step = 65536
    for start in range(0, n, step):
        end = min(n, start + step)
        chunk = rng.standard_normal((end - start, DIM), dtype=np.float32)
        chunk *= std.astype(np.float32)
        chunk += mean.astype(np.float32)
        out[start:end] = chunk
    return out


def exact_top_k(matrix: np.ndarray, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k rows per probe: float64 throughout, candidates re-measured by difference."""
    p64 = probes.astype(np.float64)
    pn = np.einsum("ij,ij->i", p64, p64)
    keep = k + 32
    best_rows: list[np.ndarray] = []
    best_d2: list[np.ndarray] = []
    step = 65536
    for start in range(0, len(matrix), step):
        g = matrix[start : start + step].astype(np.float64)
        d2 = np.einsum("ij,ij->i", g, g)[None, :] - 2.0 * (p64 @ g.T) + pn[:, None]
        m = min(keep, d2.shape[1])
        idx = np.argpartition(d2, m - 1, axis=1)[:, :m]
        best_rows.append(idx + start)
        best_d2.append(np.take_along_axis(d2, idx, axis=1))
    rows = np.concatenate(best_rows, axis=1)
    d2 = np.concatenate(best_d2, axis=1)
    idx = np.argpartition(d2, keep - 1, axis=1)[:, :keep] if d2.shape[1] > keep else None
    if idx is not None:
        rows = np.take_along_axis(rows, idx, axis=1)
    diff = matrix[rows].astype(np.float64) - p64[:, None, :]
    dist = np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(dist, order, axis=1)


def face_distance_top_k(gallery64: np.ndarray, probes: np.ndarray, k: int) -> np.ndarray:
    """The naive baseline: face_recognition.face_distance per probe, then argpartition."""
    out = []
    for probe in probes:
        dist = face_recognition.face_distance(gallery64, probe)
        idx = np.argpartition(dist, k - 1)[:k]
        out.append(idx[np.argsort(dist[idx])])
    return np.array(out)


def naive_times(
    matrix: np.ndarray, probes: np.ndarray, want_rows: np.ndarray, fd_probes: int
) -> tuple[float, float]:
    """face_distance times: one probe, and a batch of 100 (extrapolated from ``fd_probes``)."""
    gallery64 = matrix.astype(np.float64)
    assert np.array_equal(face_distance_top_k(gallery64, probes[:3], K), want_rows[:3])
    one = timed(lambda: face_distance_top_k(gallery64, probes[:1], K), repeat=3)
    batch = timed(lambda: face_distance_top_k(gallery64, probes[:fd_probes], K), repeat=1)
    return one, batch * BATCH / fd_probes


def bench_size(report: Report, n: int, mean: np.ndarray, std: np.ndarray) -> None:
    rng = np.random.default_rng(n)
    matrix = synthetic(n, mean, std, rng)
    ids = np.arange(1, n + 1, dtype=np.int64)
    near = matrix[rng.integers(0, n, BATCH // 2)] + rng.normal(0, 0.02, (BATCH // 2, DIM))
    probes = np.vstack([near, synthetic(BATCH - BATCH // 2, mean, std, rng)]).astype(np.float64)
    raw = matrix.nbytes

    gc.collect()
    before = rss_bytes()
    gallery = FaceGallery()
    gallery.reserve(n)  # a worker's first load: the exact size is known from the database
    gallery.add(ids, ids // 3, ids, matrix)
    gc.collect()
    rss_growth = rss_bytes() - before
    report.section(f"{n:,} faces")
    report.row(
        "worker memory for the gallery (RSS growth)",
        f"{rss_growth / 2**20:.0f} MiB",
        f"raw float32 matrix {raw / 2**20:.0f} MiB",
        f"{rss_growth / raw:.2f}×",
        "≤ 1.2×" if raw >= 32 * 2**20 else "(too small for RSS to resolve)",
        rss_growth / raw <= 1.2 if raw >= 32 * 2**20 else None,
    )
    report.row(
        "gallery arrays (nbytes)",
        f"{gallery.nbytes / 2**20:.0f} MiB",
        f"raw float32 matrix {raw / 2**20:.0f} MiB",
        f"{gallery.nbytes / raw:.2f}×",
        "≤ 1.2×",
        gallery.nbytes / raw <= 1.2,
    )
    # Incremental growth after the bulk load: add 1 % more, one job at a time (3 faces each).
    extra = synthetic(max(3, n // 100), mean, std, rng)
    for start in range(0, len(extra), 3):
        chunk = extra[start : start + 3]
        new_ids = np.arange(n + 1 + start, n + 1 + start + len(chunk))
        gallery.add(new_ids, new_ids // 3, new_ids, chunk)
    report.row(
        "gallery arrays after +1 % added one job at a time",
        f"{gallery.nbytes / 2**20:.0f} MiB",
        f"raw float32 matrix {len(gallery) * DIM * 4 / 2**20:.0f} MiB",
        f"{gallery.nbytes / (len(gallery) * DIM * 4):.2f}×",
        "≤ 1.2×",
        gallery.nbytes / (len(gallery) * DIM * 4) <= 1.2,
    )
    gallery.remove(new_ids_all := np.arange(n + 1, n + 1 + len(extra)))
    assert len(gallery) == n
    assert not np.isin(new_ids_all, gallery.face_ids).any()

    # Exactness: the gallery's answer against float64 brute force, every probe.
    want_rows, want_dist = exact_top_k(matrix, probes, K)
    got_ids, got_dist = gallery.top_k(probes, K)
    same = np.array_equal(got_ids, ids[want_rows])
    max_err = float(np.abs(got_dist - want_dist).max())
    report.row(
        f"top-{K} ids equal to exact float64 answer",
        f"{int((got_ids == ids[want_rows]).all(axis=1).sum())}/{BATCH} probes",
        "float64 brute force",
        f"Δd ≤ {max_err:.1e}",
        "identical",
        same,
    )
    hits = gallery.search(probes[:1], THRESHOLD)
    want_hits = int((want_dist[0] <= THRESHOLD).sum())
    report.data[f"{n}"] = {"rss_growth": rss_growth, "nbytes": gallery.nbytes, "raw": raw}

    p32 = probes.astype(np.float32)
    one = paired(lambda: gallery.top_k(probes[:1], K), lambda: matrix.sum(), rounds=9)
    one_search = paired(
        lambda: gallery.search(probes[:1], THRESHOLD), lambda: matrix.sum(), rounds=9
    )
    batch = paired(lambda: gallery.top_k(probes, K), lambda: matrix @ p32.T, rounds=5)
    matcher_1, scan, search_1 = one.value, one.baseline, one_search.value
    matcher_b, sgemm = batch.value, batch.baseline

    fd_probes = 10 if n > 200_000 else (30 if n > 20_000 else BATCH)
    naive_1, naive_b = naive_times(matrix, probes, want_rows, fd_probes)
    extrapolated = "" if fd_probes == BATCH else f" (from {fd_probes} probes)"

    big = n >= 1_000_000
    report.row(
        "1 probe: FaceGallery.top_k",
        fmt_seconds(matcher_1),
        f"face_distance {fmt_seconds(naive_1)}",
        f"{naive_1 / matcher_1:.0f}× faster",
        "≥ 30×" if big else "",
        naive_1 / matcher_1 >= 30 if big else None,
    )
    report.row(
        "1 probe: ceiling of any speed-up over face_distance (its time over one bare scan)",
        fmt_seconds(naive_1),
        f"bare scan (sum) {fmt_seconds(scan)}",
        f"{naive_1 / scan:.0f}×",
        "",
    )
    report.row(
        "1 probe: FaceGallery.top_k",
        fmt_seconds(matcher_1),
        f"bare scan (sum) {fmt_seconds(scan)}",
        f"{one.ratio:.2f}× the scan",
        "≤ 1.5×" if big else "",
        one.ratio <= 1.5 if big else None,
    )
    report.row(
        f"1 probe: FaceGallery.search (≤ {THRESHOLD}, {len(hits)}/{want_hits} hits)",
        fmt_seconds(search_1),
        f"bare scan (sum) {fmt_seconds(scan)}",
        f"{one_search.ratio:.2f}× the scan",
        "≤ 1.5×" if big else "",
        one_search.ratio <= 1.5 if big else None,
    )
    report.row(
        f"{BATCH} probes: FaceGallery.top_k",
        fmt_seconds(matcher_b),
        f"face_distance {fmt_seconds(naive_b)}{extrapolated}",
        f"{naive_b / matcher_b:.0f}× faster",
        "≥ 30×" if big else "",
        naive_b / matcher_b >= 30 if big else None,
    )
    report.row(
        f"{BATCH} probes: FaceGallery.top_k",
        fmt_seconds(matcher_b),
        f"bare SGEMM {fmt_seconds(sgemm)}, scan {fmt_seconds(scan)}",
        f"{batch.ratio:.2f}× SGEMM",
        "≤ 1.5× SGEMM" if big else "",
        batch.ratio <= 1.5 if big else None,
    )
    report.note(
        f"{n:,} faces, ratios are medians of pairs timed in alternation: 1 probe vs the "
        f"scan {one.spread()}; {BATCH} probes vs SGEMM {batch.spread()}"
    )
    report.data[f"{n}"].update(
        matcher_1=matcher_1,
        search_1=search_1,
        matcher_b=matcher_b,
        scan=scan,
        sgemm=sgemm,
        naive_1=naive_1,
        naive_b=naive_b,
        identical=same,
    )


class Float16Gallery:
    """The float16-storage variant (issue 16): the scan reads a float16 matrix (256
    bytes per face) in blocks converted to float32 in a cache-sized buffer, keeps a
    shortlist wide enough for the float16 rounding, and re-measures the shortlist in
    float64 from the original vectors, which stay on disk (``np.memmap``; in the
    service: the ``faces.encoding`` column), so answers equal the float64 exact ones.

    Shortlist bound: with ``E`` the largest ‖g − g16‖ over the gallery, every true
    distance is within ``E`` of its float16 one, so the true k nearest all have a
    float16 distance ≤ (k-th smallest float16 distance) + 2E; 1e-3 more covers
    float32 rounding of d².
    """

    def __init__(self, matrix: np.ndarray, originals: Path) -> None:
        self.m16 = matrix.astype(np.float16)
        n = len(matrix)
        self.sq = np.empty(n, dtype=np.float32)
        err = 0.0
        step = 65536
        for start in range(0, n, step):
            g = self.m16[start : start + step].astype(np.float32)
            self.sq[start : start + step] = np.einsum("ij,ij->i", g, g)
            d = matrix[start : start + step].astype(np.float64) - g
            err = max(err, float(np.sqrt(np.einsum("ij,ij->i", d, d).max())))
        self.err = err
        np.save(originals, matrix)
        self.originals = np.load(originals, mmap_mode="r")
        self.buf = np.empty((_F16_ROWS, DIM), dtype=np.float32)

    @property
    def nbytes(self) -> int:
        """Resident arrays (as the service would hold them: + 24 bytes of ids per face)."""
        return self.m16.nbytes + self.sq.nbytes + 24 * len(self.m16)

    def top_k(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows (q, k), exact float64 distances (q, k)), best first."""
        p64 = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        q = len(p64)
        p32 = p64.astype(np.float32)
        pn = np.einsum("ij,ij->i", p64, p64)
        minus_2p = p32 * np.float32(-2.0)
        slack = 2 * self.err + 1e-3
        bound = np.full(q, np.inf)  # on s = d16² − |p|²
        pools: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(q)]
        sizes = np.zeros(q, dtype=np.int64)
        n = len(self.m16)
        rows_per = _F16_ROWS if q <= 8 else _F16_ROWS * 8
        buf = self.buf if rows_per == _F16_ROWS else np.empty((rows_per, DIM), np.float32)
        s_buf = np.empty((q, rows_per), dtype=np.float32)

        def widen(vals: np.ndarray, p: int) -> float:
            kth = float(np.partition(vals, k - 1)[k - 1])
            return (np.sqrt(max(kth + pn[p], 0.0)) + slack) ** 2 - pn[p]

        for start in range(0, n, rows_per):
            end = min(n, start + rows_per)
            block = buf[: end - start]
            np.copyto(block, self.m16[start:end], casting="unsafe")
            s = s_buf[:, : end - start]
            if q <= 8:
                for j in range(q):
                    np.matmul(block, minus_2p[j], out=s[j])
            else:
                np.matmul(minus_2p, block.T, out=s)
            s += self.sq[start:end]
            if start == 0:
                for p in range(q):
                    bound[p] = widen(s[p], p)
            for p in np.flatnonzero(s.min(axis=1) <= bound):
                cols = np.flatnonzero(s[p] <= bound[p])
                pools[p].append((cols + start, s[p, cols].copy()))
                sizes[p] += len(cols)
                if sizes[p] > 4 * k + 64:
                    rows = np.concatenate([r for r, _ in pools[p]])
                    vals = np.concatenate([v for _, v in pools[p]])
                    bound[p] = min(bound[p], widen(vals, p))
                    keep = vals <= bound[p]
                    pools[p], sizes[p] = [(rows[keep], vals[keep])], int(keep.sum())
        out_rows = np.empty((q, k), dtype=np.int64)
        out_dist = np.empty((q, k))
        for p in range(q):
            rows = np.concatenate([r for r, _ in pools[p]])
            vals = np.concatenate([v for _, v in pools[p]])
            rows = np.sort(rows[vals <= widen(vals, p)])
            diff = np.asarray(self.originals[rows], dtype=np.float64) - p64[p]
            exact = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            order = np.lexsort((rows, exact))[:k]
            out_rows[p], out_dist[p] = rows[order], exact[order]
        return out_rows, out_dist


#: Rows per float16 block: 2048 × 128 float32 = 1 MiB, converted once and kept in cache.
_F16_ROWS = 2048


def bench_float16(report: Report, n: int, mean: np.ndarray, std: np.ndarray) -> None:
    """float16 storage with an exact re-check, and FAISS IndexFlatL2, against the
    service's FaceGallery measured in the same run on the same data."""
    rng = np.random.default_rng(n + 16)
    matrix = synthetic(n, mean, std, rng)
    ids = np.arange(1, n + 1, dtype=np.int64)
    near = matrix[rng.integers(0, n, BATCH // 2)] + rng.normal(0, 0.02, (BATCH // 2, DIM))
    probes = np.vstack([near, synthetic(BATCH - BATCH // 2, mean, std, rng)]).astype(np.float64)
    gallery = FaceGallery()
    gallery.reserve(n)
    gallery.add(ids, ids // 3, ids, matrix)
    CACHE.mkdir(parents=True, exist_ok=True)
    f16 = Float16Gallery(matrix, CACHE / f"originals-{n}.npy")
    report.section(f"{n:,} faces: float16 storage and FAISS, against the service's gallery")

    want_rows, want_dist = exact_top_k(matrix, probes, K)
    got_rows, got_dist = f16.top_k(probes, K)
    same = int((got_rows == want_rows).all(axis=1).sum())
    multi = probes[:3]
    for one_probe in range(5):  # the single-probe and multi-face paths too
        r1, _ = f16.top_k(probes[one_probe : one_probe + 1], K)
        assert np.array_equal(r1[0], want_rows[one_probe])
    r3, _ = f16.top_k(multi, K)
    assert np.array_equal(r3, want_rows[:3])
    assert same == BATCH, f"float16 variant differs from float64 exact on {BATCH - same} probes"
    report.row(
        f"float16 + exact re-check: top-{K} rows equal to exact float64",
        f"{same}/{BATCH} probes",
        "float64 brute force",
        f"Δd ≤ {float(np.abs(got_dist - want_dist).max()):.1e}",
        "identical",
        same == BATCH,
    )
    per_million = 1_000_000 / n
    report.row(
        "memory per million faces (resident arrays)",
        f"float16 {f16.nbytes * per_million / 2**20:.0f} MiB",
        f"service's gallery {gallery.nbytes * per_million / 2**20:.0f} MiB",
        f"{f16.nbytes / gallery.nbytes:.2f}×",
        "",
    )
    report.note(
        f"float16 quantisation: largest ‖g − g16‖ = {f16.err:.1e} (shortlist widened by "
        f"2× that); the float16 variant re-reads the shortlist's original vectors from "
        f"disk (512 bytes per face on disk, not resident)"
    )
    cases = [
        ("1 probe", probes[:1], 9),
        ("3 probes (a multi-face photo)", multi, 7),
        (f"{BATCH} probes (batch)", probes, 3),
    ]
    data: dict[str, float] = {"f16_nbytes": f16.nbytes, "f32_nbytes": gallery.nbytes}
    for what, pr, rounds in cases:
        timing = paired(
            lambda pr=pr: f16.top_k(pr, K), lambda pr=pr: gallery.top_k(pr, K), rounds=rounds
        )
        report.row(
            f"{what}: float16 top_k",
            fmt_seconds(timing.value),
            f"FaceGallery.top_k {fmt_seconds(timing.baseline)}",
            f"{timing.ratio:.2f}× the time",
            "< 1 to adopt",
            None,
        )
        report.note(f"{n:,} faces, float16 vs float32, {what}: {timing.spread()}")
        data[f"f16_ratio {what}"] = timing.ratio
    try:
        import faiss
    except ImportError:
        report.note("faiss-cpu not installed: no FAISS rows (uv pip install faiss-cpu)")
        report.data[f"f16 {n}"] = data
        return
    threads = _blas_threads()
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatL2(DIM)
    index.add(matrix)
    shipped = faiss.cvar.distance_compute_blas_threshold
    for what, pr, rounds in cases:
        p32 = np.ascontiguousarray(pr, dtype=np.float32)
        best: tuple[float, str, Any] | None = None
        for blas_threshold in sorted({shipped, 1}):  # as shipped; BLAS for every query count
            faiss.cvar.distance_compute_blas_threshold = blas_threshold
            timing = paired(
                lambda p32=p32: index.search(p32, K),
                lambda pr=pr: gallery.top_k(pr, K),
                rounds=rounds,
            )
            label = "as shipped" if blas_threshold == shipped else "BLAS threshold 1"
            if best is None or timing.value < best[0]:
                best = (timing.value, label, timing)
            report.row(
                f"{what}: FAISS IndexFlatL2 ({label})",
                fmt_seconds(timing.value),
                f"FaceGallery.top_k {fmt_seconds(timing.baseline)}",
                f"gallery {timing.ratio:.2f}× as fast",
                "gallery ≥ 1×",
                timing.ratio >= 1,
            )
            data[f"faiss {label} {what}"] = timing.ratio
        faiss.cvar.distance_compute_blas_threshold = shipped
        _d, faiss_rows = index.search(p32, K)
        agree = int((faiss_rows == want_rows[: len(pr)]).all(axis=1).sum())
        report.note(
            f"{n:,} faces, {what}: FAISS ({threads} threads) top-{K} equal to exact float64 for "
            f"{agree}/{len(pr)} probes (float32 distances, no re-check)"
        )
    report.data[f"f16 {n}"] = data


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max((int(i.get("num_threads", 1)) for i in threadpool_info()), default=1)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--faces",
        type=int,
        action="append",
        help="gallery size to run (repeatable); default 10k, 100k, 1M × BENCH_SCALE",
    )
    parser.add_argument(
        "--float16-only",
        action="store_true",
        help="only the float16 / FAISS comparison (with its float32 baseline)",
    )
    args = parser.parse_args(argv)
    report = Report("search", "1:N search")
    mean, std = encoding_shape()
    report.note(
        f"synthetic encodings shaped like real dlib ones: norm {np.linalg.norm(mean):.2f} of "
        f"the mean vector, per-dimension spread {std.mean():.3f}; {BATCH // 2} of the "
        f"{BATCH} probes are noisy copies of gallery faces"
    )
    sizes = args.faces or [max(1000, int(b * scale())) for b in (10_000, 100_000, 1_000_000)]
    for n in sizes:
        if not args.float16_only:
            bench_size(report, n, mean, std)
            gc.collect()
        bench_float16(report, n, mean, std)
        gc.collect()
    report.note(
        f"machine load (others' share of the CPUs at start): {report.others_busy_at_start:.0%}"
    )
    report.note(
        "a single probe is memory-bound (one pass over the matrix), so its floor is the bare "
        "scan; a batch of 100 is compute-bound, so its floor is the bare SGEMM of the same shape"
    )
    report.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
