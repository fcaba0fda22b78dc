"""In-memory face gallery for 1:N search.

A worker keeps one gallery per side (faces of notices, faces of cases) and
refreshes it incrementally (:meth:`FaceGallery.add` / :meth:`FaceGallery.remove`)
instead of reloading per job. Vectors are held as one contiguous float32 matrix
(N × 128, 512 bytes per face) plus their squared norms, so a search is SGEMM
over blocks of rows: ``d² = |p|² + |g|² − 2 p·gᵀ``. Faces within reach of the threshold are
then re-measured exactly (float64 difference of the stored vectors), so the
accept decision matches ``face_recognition.face_distance`` to ~1e-7.

Memory: 512 bytes of vector + 4 of squared norm + 24 of ids per face (+ 16 per
distinct owner, for :attr:`FaceGallery.owner_count`), and no per-face Python
objects (face ids are looked up in the ids column). A worker's first load
reserves the exact size (:meth:`FaceGallery.reserve`); later growth adds
1/16 of the capacity at a time (at least 1024 rows), so the arrays stay ≤ 1.13 ×
the raw float32 matrix (1.04 × after an exact load). bench/search.py measured
1.04 × RSS growth at 1 M faces; a 25 % growth step measured up to 1.32 × and
missed the 1.2 × target.
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
        self._vectors = np.zeros((capacity, DIM), dtype=np.float32)
        self._sqnorms = np.zeros(capacity, dtype=np.float32)
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
            self._vectors.nbytes
            + self._sqnorms.nbytes
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
        """The live (N, 128) float32 matrix (a view; do not modify)."""
        return self._vectors[: self._size]

    def reserve(self, total: int) -> None:
        """Make room for ``total`` faces in all (no-op if there is room already).

        Use before a bulk load whose size is known, so no growth slack is kept.
        """
        if total <= self._vectors.shape[0]:
            return
        vectors = np.empty((total, DIM), dtype=np.float32)
        vectors[: self._size] = self._vectors[: self._size]
        sqnorms = np.empty(total, dtype=np.float32)
        sqnorms[: self._size] = self._sqnorms[: self._size]
        ids = np.empty((total, 3), dtype=np.int64)
        ids[: self._size] = self._ids[: self._size]
        self._vectors, self._sqnorms, self._ids = vectors, sqnorms, ids

    def _grow_for(self, extra: int) -> None:
        needed = self._size + extra
        capacity = self._vectors.shape[0]
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
        self._vectors[start:end] = vectors
        self._sqnorms[start:end] = np.einsum(
            "ij,ij->i", self._vectors[start:end], self._vectors[start:end]
        )
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
        self._vectors[holes] = self._vectors[movers]
        self._sqnorms[holes] = self._sqnorms[movers]
        self._ids[holes] = self._ids[movers]
        self._size = new_size

    def squared_distances(self, probes: np.ndarray) -> np.ndarray:
        """Approximate squared distances, shape (q, N), float32 (whole matrix; for tests)."""
        p = np.asarray(probes, dtype=np.float32).reshape(-1, DIM)
        pn = np.einsum("ij,ij->i", p, p)[:, None]
        return np.concatenate([s + pn for _, s in self._chunks(p)], axis=1)

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
        minus_2p = probes * np.float32(-2.0)
        q = len(probes)
        rows = min(_MAX_ROWS, max(_MIN_ROWS, _BLOCK_VALUES // max(1, q)))
        few = 1 < q <= _GEMV_MAX_PROBES
        for start in range(0, self._size, rows):
            end = min(self._size, start + rows)
            if few:
                s = np.empty((q, end - start), dtype=np.float32)
                for sub in range(start, end, _SUB_ROWS):
                    block = self._vectors[sub : min(end, sub + _SUB_ROWS)]
                    at = sub - start
                    for k in range(q):
                        np.matmul(block, minus_2p[k], out=s[k, at : at + len(block)])
            else:
                s = minus_2p @ self._vectors[start:end].T
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
            diff = self._vectors[rows].astype(np.float64) - p64[p]
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
        """
        if self._size == 0:
            return []
        probes = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        p32 = probes.astype(np.float32)
        # Float32 rounding of d² is far below 1e-3; re-measure anything that close.
        # The limit is on s = d² − |p|² (see _chunks).
        limit = np.float32((threshold + 1e-3) ** 2) - np.einsum("ij,ij->i", p32, p32)
        found = [
            (np.full(len(cols), p), cols + start)
            for start, s in self._chunks(p32)
            for p, cols in self._within(s, limit)
            if len(cols)
        ]
        if not found:
            return []
        probe_idx = np.concatenate([f[0] for f in found])
        rows = np.concatenate([f[1] for f in found])
        diff = self._vectors[rows].astype(np.float64) - probes[probe_idx]
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
