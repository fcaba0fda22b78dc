"""In-memory face gallery for 1:N search.

A worker keeps one gallery per side (faces of notices, faces of cases) and
refreshes it incrementally (:meth:`FaceGallery.add` / :meth:`FaceGallery.remove`)
instead of reloading per job. Vectors are held as float32 (512 bytes per face),
their dimensions in :data:`DIM_ORDER` and split in two contiguous matrices, the
head (the 96 dimensions of largest spread) and the tail (32), plus squared norms,
so a search is SGEMM/GEMV over blocks of rows: ``d² = |p|² + |g|² − 2 p·gᵀ``.
Faces within reach of the threshold are then re-measured exactly (float64
difference of the stored vectors, in their own order), so the accept decision
matches ``face_recognition.face_distance`` to ~1e-7.

:meth:`FaceGallery.search` (a bound) reads the head only: the squared distance
over the head's dimensions is a lower bound of the whole one, so a face whose
partial distance is beyond the bound is out, and only the few within it are
finished with their tail (issue 16). At 1 M synthetic dlib-shaped faces and the
loose bound 0.64 its answers were identical to the whole-matrix scan and it took
0.76× its time, for one probe and for 3 (medians of 9 alternating runs side by
side in one process, 2026-12-02, load ~3.5; bench/worker_step.py in
docs/performance.md). :meth:`FaceGallery.top_k` (no bound
known in advance) reads both. Rejected, measured the same day: float16 storage
(numpy's float16→float32 conversion ran at ~1.7 ns per value, slower than reading
the float32 it saves; bench/search.py ``Float16Gallery``) and a PCA-rotated
prefilter (on the bench's synthetic encodings the leading 32 / 64 dimensions hold
37 % / 63 % of the spread, and 97 % / 13 % of random faces survive a 0.6 bound;
a rotation also changes the stored float32 values, so the exact re-check would
need a second copy).

Memory: 512 bytes of vector + 8 of squared norms (whole and head) + 24 of ids per
face (+ 16 per distinct owner, for :attr:`FaceGallery.owner_count`), and no
per-face Python objects (face ids are looked up in the ids column). A worker's
first load reserves the exact size (:meth:`FaceGallery.reserve`); later growth
adds 1/16 of the capacity at a time (at least 1024 rows), so the arrays stay
≤ 1.13 × the raw float32 matrix (1.06 × after an exact load). bench/search.py
measured 1.04 × RSS growth at 1 M faces (4 bytes per face fewer then); a 25 %
growth step measured up to 1.32 × and missed the 1.2 × target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["DIM", "FaceGallery", "GalleryHit"]

DIM = 128
#: Growth step: this fraction of the capacity, at least _MIN_STEP rows.
_GROWTH = 1 / 16
_MIN_STEP = 1024
#: d² values per search block (q probes × rows): 1 Mi float32 = 4 MiB stays in cache.
_BLOCK_VALUES = 1 << 20
#: Rows per block at least (fewer makes BLAS thread hand-offs dominate) and at most.
_MIN_ROWS, _MAX_ROWS = 8192, 131072
#: Slack on float32 d² when selecting rows to re-measure exactly (rounding is ~1e-6).
_MARGIN = 1e-3
#: Up to this many probes (a photo with several faces; an owner's faces searched as
#: one identity) are computed as one GEMV per probe over sub-blocks of _SUB_ROWS rows
#: (1 MiB of float32, read from memory once and from cache by the other probes):
#: OpenBLAS's SGEMM with 2-8 rows took 3.4× one probe's GEMV (issue 16). Whole
#: ``search`` at 1 M faces, medians of 9 alternating runs on the shared 2-core VM
#: under load ~15 (absolute times inflated, not yet a bench/search.py row): one
#: probe 236-272 ms; 2 / 3 / 5 probes 791 / 718 / 842 ms before, 290 / 314 / 416 ms
#: with sub-block GEMVs (1.1-1.2× one probe for 2-3, 1.6× for 5).
_GEMV_MAX_PROBES = 8
_SUB_ROWS = 2048
#: Dimensions in the order the matrix stores them: by decreasing standard deviation
#: of real dlib encodings (80 LFW photos, bench/search.py ``encoding_shape``).
#: Any order gives the same distances; this one puts most of a distance in the head.
# fmt: off
DIM_ORDER = np.array([
    85, 41, 7, 28, 48, 109, 111, 116, 83, 74, 71, 18, 4, 96, 5, 81,
    80, 125, 13, 76, 121, 23, 59, 54, 61, 39, 20, 29, 51, 33, 113, 95,
    82, 43, 22, 10, 17, 60, 12, 49, 38, 84, 92, 16, 105, 100, 68, 62,
    78, 63, 101, 89, 122, 67, 15, 55, 6, 31, 42, 64, 73, 123, 58, 124,
    24, 52, 57, 9, 1, 45, 21, 110, 88, 108, 27, 2, 126, 103, 37, 35,
    14, 36, 112, 77, 32, 117, 87, 107, 0, 8, 106, 75, 11, 119, 97, 104,
    40, 70, 114, 79, 19, 46, 127, 47, 90, 102, 91, 65, 3, 50, 99, 120,
    93, 115, 25, 44, 56, 86, 118, 53, 72, 69, 34, 30, 98, 66, 26, 94,
], dtype=np.intp)
# fmt: on
#: Leading dimensions (of DIM_ORDER) held in the head matrix; the other 32 in the tail.
#: ``search`` scans the head only (384 of 512 bytes per face) and finishes the rows
#: whose partial distance, a lower bound of the full one, is within the bound: on
#: encodings shaped like dlib's, 2-3 % of random faces at the loose bound 0.64
#: (bench/worker_step.py's synthetic gallery; 84 % of the variance is in the head).
HEAD = 96


@dataclass(frozen=True)
class GalleryHit:
    """Best face of one owner for one search: Euclidean ``distance`` (unitless, 0..~2)."""

    owner_id: int
    face_id: int
    photo_id: int
    distance: float
    probe_index: int


class FaceGallery:
    """Face vectors with owner ids; search returns the best face per owner."""

    def __init__(self, capacity: int = 1024) -> None:
        # The vectors' columns in DIM_ORDER, split: head (N × HEAD) and tail.
        self._head = np.zeros((capacity, HEAD), dtype=np.float32)
        self._tail = np.zeros((capacity, DIM - HEAD), dtype=np.float32)
        self._sqnorms = np.zeros(capacity, dtype=np.float32)  # |g|²
        self._head_sq = np.zeros(capacity, dtype=np.float32)  # |g_head|²
        self._ids = np.zeros((capacity, 3), dtype=np.int64)  # face, owner, photo
        self._size = 0
        # Distinct owners (sorted) and their face counts: the gallery size in people,
        # kept in step by add/remove (16 bytes per owner, no per-face objects).
        self._owners = np.zeros(0, dtype=np.int64)
        self._owner_faces = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (all of the gallery's memory but a few hundred bytes)."""
        return (
            self._head.nbytes
            + self._tail.nbytes
            + self._sqnorms.nbytes
            + self._head_sq.nbytes
            + self._ids.nbytes
            + self._owners.nbytes
            + self._owner_faces.nbytes
        )

    @property
    def owner_count(self) -> int:
        """People (distinct owners) with at least one face in the gallery."""
        return len(self._owners)

    def _count_owners(self, owner_ids: np.ndarray, sign: int) -> None:
        """Add (``sign`` 1) or take away (−1) one face per entry of ``owner_ids``."""
        owners, counts = np.unique(owner_ids, return_counts=True)
        pos = np.searchsorted(self._owners, owners)
        known = pos < len(self._owners)
        known[known] = self._owners[pos[known]] == owners[known]
        self._owner_faces[pos[known]] += sign * counts[known]
        if sign > 0 and not known.all():
            self._owners = np.insert(self._owners, pos[~known], owners[~known])
            self._owner_faces = np.insert(self._owner_faces, pos[~known], counts[~known])
        elif sign < 0:
            keep = self._owner_faces > 0
            if not keep.all():
                self._owners, self._owner_faces = self._owners[keep], self._owner_faces[keep]

    @property
    def face_ids(self) -> np.ndarray:
        return self._ids[: self._size, 0]

    @property
    def vectors(self) -> np.ndarray:
        """The (N, 128) float32 vectors in their own dimension order (a copy)."""
        return self._rows(np.arange(self._size)).astype(np.float32)

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows' vectors in their own dimension order, float64 (exact: the stored
        float32 values)."""
        out = np.empty((len(rows), DIM), dtype=np.float64)
        out[:, DIM_ORDER[:HEAD]] = self._head[rows]
        out[:, DIM_ORDER[HEAD:]] = self._tail[rows]
        return out

    def reserve(self, total: int) -> None:
        """Make room for ``total`` faces in all (no-op if there is room already).

        Use before a bulk load whose size is known, so no growth slack is kept.
        """
        if total <= self._head.shape[0]:
            return

        def grown(a: np.ndarray) -> np.ndarray:
            out = np.empty((total, *a.shape[1:]), dtype=a.dtype)
            out[: self._size] = a[: self._size]
            return out

        self._head, self._tail = grown(self._head), grown(self._tail)
        self._sqnorms, self._head_sq = grown(self._sqnorms), grown(self._head_sq)
        self._ids = grown(self._ids)

    def _grow_for(self, extra: int) -> None:
        needed = self._size + extra
        capacity = self._head.shape[0]
        if needed > capacity:
            step = max(_MIN_STEP, int(capacity * _GROWTH))
            self.reserve(max(needed, capacity + step))

    def add(
        self,
        face_ids: np.ndarray,
        owner_ids: np.ndarray,
        photo_ids: np.ndarray,
        vectors: np.ndarray,
    ) -> None:
        """Add faces (ids shape (n,), vectors shape (n, 128)); known face ids are skipped."""
        face_ids = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        # New ids only: not already held, and the first of any repeat in this batch.
        _, first = np.unique(face_ids, return_index=True)
        keep = np.zeros(len(face_ids), dtype=bool)
        keep[first] = True
        if self._size:
            keep &= ~np.isin(face_ids, self._ids[: self._size, 0])
        if not keep.any():
            return
        everything = bool(keep.all())
        face_ids = face_ids if everything else face_ids[keep]
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, DIM)
        vectors = vectors if everything else vectors[keep]
        n = len(face_ids)
        self._grow_for(n)
        start, end = self._size, self._size + n
        head, tail = self._head[start:end], self._tail[start:end]
        head[:] = vectors[:, DIM_ORDER[:HEAD]]
        tail[:] = vectors[:, DIM_ORDER[HEAD:]]
        self._head_sq[start:end] = np.einsum("ij,ij->i", head, head)
        self._sqnorms[start:end] = self._head_sq[start:end] + np.einsum("ij,ij->i", tail, tail)
        self._ids[start:end, 0] = face_ids
        self._ids[start:end, 1] = np.asarray(owner_ids, dtype=np.int64).reshape(-1)[keep]
        self._ids[start:end, 2] = np.asarray(photo_ids, dtype=np.int64).reshape(-1)[keep]
        self._size = end
        self._count_owners(self._ids[start:end, 1], 1)

    def remove(self, face_ids: list[int] | np.ndarray) -> None:
        """Remove faces by id (unknown ids are ignored); rows from the end fill the gaps."""
        size = self._size
        gone = np.isin(self._ids[:size, 0], np.asarray(face_ids, dtype=np.int64).reshape(-1))
        count = int(gone.sum())
        if count == 0:
            return
        self._count_owners(self._ids[:size, 1][gone], -1)
        new_size = size - count
        holes = np.flatnonzero(gone[:new_size])
        movers = new_size + np.flatnonzero(~gone[new_size:size])
        for a in (self._head, self._tail, self._sqnorms, self._head_sq):
            a[holes] = a[movers]
        self._ids[holes] = self._ids[movers]
        self._size = new_size

    def squared_distances(self, probes: np.ndarray) -> np.ndarray:
        """Approximate squared distances, shape (q, N), float32 (whole matrix; for tests)."""
        p = np.asarray(probes, dtype=np.float32).reshape(-1, DIM)
        pn = np.einsum("ij,ij->i", p, p)[:, None]
        return np.concatenate([s + pn for _, s in self._chunks(p)], axis=1)

    def _blocks(self, q: int) -> Iterator[tuple[int, int]]:
        rows = min(_MAX_ROWS, max(_MIN_ROWS, _BLOCK_VALUES // max(1, q)))
        for start in range(0, self._size, rows):
            yield start, min(self._size, start + rows)

    @staticmethod
    def _products(matrix: np.ndarray, minus_2p: np.ndarray, start: int, end: int) -> np.ndarray:
        """``−2 p · g`` for rows start..end of ``matrix`` (one of the column parts),
        float32 (q, rows): one SGEMM, or for 2-8 probes one GEMV per probe over
        sub-blocks read from memory once (see _GEMV_MAX_PROBES)."""
        q = len(minus_2p)
        if not 1 < q <= _GEMV_MAX_PROBES:
            return minus_2p @ matrix[start:end].T
        s = np.empty((q, end - start), dtype=np.float32)
        for sub in range(start, end, _SUB_ROWS):
            block = matrix[sub : min(end, sub + _SUB_ROWS)]
            at = sub - start
            for k in range(q):
                np.matmul(block, minus_2p[k], out=s[k, at : at + len(block)])
        return s

    def _chunks(self, probes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, ``s``) per block of gallery rows, where ``s = |g|² − 2 p·g``
        (float32, shape (q, rows)) is the squared distance less the probe's own
        ``|p|²``: a constant per probe, so callers shift their bounds by it instead
        of adding it to every value.

        Blocks keep ``s`` in cache and avoid an (N × q) temporary; each block is one
        SGEMM on ``−2p`` (BLAS threads) plus one in-cache pass. Block sizes measured
        in bench/search.py (8192-row blocks made one probe 3× slower than one pass
        over the matrix: per-call BLAS threading overhead).
        """
        minus_2p = probes[:, DIM_ORDER] * np.float32(-2.0)
        for start, end in self._blocks(len(probes)):
            s = self._products(self._head, minus_2p[:, :HEAD], start, end)
            s += self._products(self._tail, minus_2p[:, HEAD:], start, end)
            s += self._sqnorms[start:end]
            yield start, s

    @staticmethod
    def _within(s: np.ndarray, bound: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(probe, columns) of ``s`` at or under each probe's ``bound``, probes with
        none skipped by a row minimum (one fast pass) instead of a 2-D ``nonzero``
        (3× slower over a block where almost nothing passes)."""
        for p in np.flatnonzero(s.min(axis=1) <= bound):
            yield int(p), np.flatnonzero(s[p] <= bound[p])

    def top_k(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest faces per probe: (face ids (q, k), distances (q, k)), best first.

        Exact: float32 d² selects every row within ``_MARGIN`` of each probe's
        k-th best (float32 rounding of d² is ~1e-6), and those are re-measured in
        float64, so the answer equals a float64 brute force.
        """
        p64 = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        q = len(p64)
        k = min(k, self._size)
        if k == 0 or q == 0:
            return np.zeros((q, 0), dtype=np.int64), np.zeros((q, 0))
        p32 = p64.astype(np.float32)
        # Bounds are on s = d² − |p|² (see _chunks).
        bound = np.full(q, np.inf, dtype=np.float32)
        pool_rows: list[list[np.ndarray]] = [[] for _ in range(q)]
        pool_s: list[list[np.ndarray]] = [[] for _ in range(q)]
        pool_len = np.zeros(q, dtype=np.int64)
        for start, s in self._chunks(p32):
            if start == 0 and s.shape[1] >= k:
                # A first bound from a sample of the first block; pruning tightens it.
                sample = s[:, : max(64 * k, 2048)]
                bound = (np.partition(sample, k - 1, axis=1)[:, k - 1] + _MARGIN).astype(np.float32)
            for p, c in self._within(s, bound):
                pool_rows[p].append(c + start)
                pool_s[p].append(s[p, c])
                pool_len[p] += len(c)
                if pool_len[p] > 4 * k + 64:  # prune: keep what can still make the top k
                    rows, vals = np.concatenate(pool_rows[p]), np.concatenate(pool_s[p])
                    bound[p] = min(bound[p], np.partition(vals, k - 1)[k - 1] + _MARGIN)
                    keep = vals <= bound[p]
                    pool_rows[p], pool_s[p] = [rows[keep]], [vals[keep]]
                    pool_len[p] = int(keep.sum())
        ids = np.empty((q, k), dtype=np.int64)
        dist = np.empty((q, k), dtype=np.float64)
        for p in range(q):
            rows, vals = np.concatenate(pool_rows[p]), np.concatenate(pool_s[p])
            rows = rows[vals <= np.partition(vals, k - 1)[k - 1] + _MARGIN]
            diff = self._rows(rows) - p64[p]
            exact = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            order = np.lexsort((rows, exact))[:k]
            ids[p], dist[p] = self._ids[rows[order], 0], exact[order]
        return ids, dist

    def search(self, probes: np.ndarray, threshold: float) -> list[GalleryHit]:
        """Owners with at least one face within ``threshold`` of any probe.

        Args:
            probes: (k, 128) encodings.
            threshold: largest accepted Euclidean distance.

        Returns:
            One hit per owner (its closest face over all probes), nearest first.

        Reads the head matrix, then the tail of the faces whose partial distance
        is within ``threshold`` (see the module docstring); the same hits as a scan
        of whole vectors.
        """
        if self._size == 0:
            return []
        probes = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        p32 = probes[:, DIM_ORDER].astype(np.float32)
        head_p, tail_p = p32[:, :HEAD], p32[:, HEAD:]
        # Float32 rounding of d² is far below 1e-3; re-measure anything that close.
        # The head's partial d² (over HEAD dimensions) is a lower bound of d²: rows
        # whose partial exceeds the bound are out. The limit is on the partial less
        # the probe's own |p_head|² (see _chunks).
        bound = np.float32((threshold + 1e-3) ** 2)
        limit = bound - np.einsum("ij,ij->i", head_p, head_p)
        minus_2p = head_p * np.float32(-2.0)
        found = []
        for start, end in self._blocks(len(probes)):
            s = self._products(self._head, minus_2p, start, end)
            s += self._head_sq[start:end]
            for p, cols in self._within(s, limit):
                rows = cols + start
                # Finish the survivors: the tail's squared distance, added.
                t = self._tail[rows] - tail_p[p]
                d2 = s[p, cols] + (bound - limit[p]) + np.einsum("ij,ij->i", t, t)
                rows = rows[d2 <= bound]
                if len(rows):
                    found.append((np.full(len(rows), p), rows))
        if not found:
            return []
        probe_idx = np.concatenate([f[0] for f in found])
        rows = np.concatenate([f[1] for f in found])
        diff = self._rows(rows) - probes[probe_idx]
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        best: dict[int, GalleryHit] = {}
        for p, row, d in zip(probe_idx.tolist(), rows.tolist(), dist.tolist(), strict=True):
            if d > threshold:
                continue
            face_id, owner_id, photo_id = (int(v) for v in self._ids[row])
            current = best.get(owner_id)
            if current is None or d < current.distance:
                best[owner_id] = GalleryHit(owner_id, face_id, photo_id, d, p)
        return sorted(best.values(), key=lambda hit: hit.distance)
