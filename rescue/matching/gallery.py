"""In-memory face gallery for 1:N search.

A worker keeps one gallery per side (faces of notices, faces of cases) and
refreshes it incrementally (:meth:`FaceGallery.add` / :meth:`FaceGallery.remove`)
instead of reloading per job. Vectors are held as float32 (512 bytes per face), as
two uint16 planes: the high and the low halves of each value, plus the squared
norms.

The high plane alone is bfloat16, the value with its mantissa truncated, so a
scan that reads it reads 256 bytes per face instead of 512 (the native kernel,
rescue.matching.scan). Every face's truncation moves it by at most
:attr:`FaceGallery.truncation` (measured when it is added, ≤ ~0.01 on dlib
encodings), so the distance to the truncated vector is within that of the true
one: bounds are widened by it, and whatever may be within reach is re-measured
exactly (float64 difference of the float32 values the planes give back exactly),
so the accept decision matches ``face_recognition.face_distance`` to ~1e-7 and the
answers equal a float64 brute force.

:meth:`FaceGallery.search` (a bound) and :meth:`FaceGallery.top_k` both read the
high plane once; each row is converted once for every probe, so a photo with
several faces costs little more than one. Measured in bench/worker_step.py
(docs/performance.md "Worker step at scale"). Rejected: a head of the 96
dimensions of largest spread scanned first, its tail read for the faces the head
let through (2026-12-03: at the loose bound 0.64 a real face let ~1.7 % of 4 M
synthetic faces through, and reading their tails, one page each, cost 9-16 ms, more
than the 64 bytes per face the head saved); float16 storage through numpy (its
float16→float32 conversion ran at ~1.7 ns per value, slower than reading the
float32 it saves; bench/search.py ``Float16Gallery``); a PCA-rotated prefilter
(on the bench's synthetic encodings the leading 32 / 64 dimensions hold 37 % /
63 % of the spread, and 97 % / 13 % of random faces survive a 0.6 bound on them).

Memory: 512 bytes of vector + 4 of squared norm + 24 of ids per face (+ 16 per
distinct owner, for :attr:`FaceGallery.owner_count`), and no per-face Python
objects (face ids are looked up in the ids column). A worker's first load
reserves the exact size (:meth:`FaceGallery.reserve`); later growth adds 1/16 of
the capacity at a time (at least 1024 rows), so the arrays stay ≤ 1.13 × the raw
float32 matrix (1.06 × after an exact load). bench/search.py measured 1.04 × RSS
growth at 1 M faces; a 25 % growth step measured up to 1.32 × and missed the
1.2 × target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rescue.matching.scan import scan_dense, scan_within, split_planes, to_float32

__all__ = ["DIM", "FaceGallery", "GalleryHit"]

DIM = 128
#: Growth step: this fraction of the capacity, at least _MIN_STEP rows.
_GROWTH = 1 / 16
_MIN_STEP = 1024
#: d² values per top_k block (q probes × rows): 1 Mi float32 = 4 MiB.
_BLOCK_VALUES = 1 << 20
#: Rows per block at least and at most.
_MIN_ROWS, _MAX_ROWS = 8192, 131072
#: Slack on float32 distances when selecting rows to re-measure exactly (float32
#: rounding of d² is ~1e-6).
_SLACK = 1e-3


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
        # The vectors (N × 128) as the high and low 16 bits of their float32 values.
        self._high = np.zeros((capacity, DIM), dtype=np.uint16)
        self._low = np.zeros((capacity, DIM), dtype=np.uint16)
        # Squared norms of the truncated vectors, |x̃|².
        self._sqnorms = np.zeros(capacity, dtype=np.float32)
        self._ids = np.zeros((capacity, 3), dtype=np.int64)  # face, owner, photo
        self._size = 0
        self._truncation = 0.0
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
            self._high.nbytes
            + self._low.nbytes
            + self._sqnorms.nbytes
            + self._ids.nbytes
            + self._owners.nbytes
            + self._owner_faces.nbytes
        )

    @property
    def truncation(self) -> float:
        """Largest distance (Euclidean, float64) between a face added so far and its
        head truncated to bfloat16: the slack every scan bound is widened by."""
        return self._truncation

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
        """The (N, 128) float32 vectors (a copy)."""
        size = self._size
        return to_float32(self._high[:size], self._low[:size])

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows' vectors, float64 (exact: the stored float32 values)."""
        return to_float32(self._high[rows], self._low[rows]).astype(np.float64)

    def reserve(self, total: int) -> None:
        """Make room for ``total`` faces in all (no-op if there is room already).

        Use before a bulk load whose size is known, so no growth slack is kept.
        """
        if total <= self._high.shape[0]:
            return

        def grown(a: np.ndarray) -> np.ndarray:
            out = np.empty((total, *a.shape[1:]), dtype=a.dtype)
            out[: self._size] = a[: self._size]
            return out

        self._high, self._low = grown(self._high), grown(self._low)
        self._sqnorms = grown(self._sqnorms)
        self._ids = grown(self._ids)

    def _grow_for(self, extra: int) -> None:
        needed = self._size + extra
        capacity = self._high.shape[0]
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
        high, low = split_planes(vectors)
        self._high[start:end], self._low[start:end] = high, low
        truncated = to_float32(high)
        self._sqnorms[start:end] = np.einsum("ij,ij->i", truncated, truncated)
        moved = vectors.astype(np.float64) - truncated
        self._truncation = max(
            self._truncation, float(np.sqrt(np.einsum("ij,ij->i", moved, moved).max()))
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
        for a in (self._high, self._low, self._sqnorms, self._ids):
            a[holes] = a[movers]
        self._size = new_size

    def squared_distances(self, probes: np.ndarray) -> np.ndarray:
        """Squared distances, shape (q, N), float64 (whole matrix; for tests)."""
        p = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        g = self._rows(np.arange(self._size))
        return (
            np.einsum("ij,ij->i", p, p)[:, None]
            + np.einsum("ij,ij->i", g, g)[None, :]
            - 2.0 * (p @ g.T)
        )

    def _blocks(self, q: int) -> Iterator[tuple[int, int]]:
        rows = min(_MAX_ROWS, max(_MIN_ROWS, _BLOCK_VALUES // max(1, q)))
        for start in range(0, self._size, rows):
            yield start, min(self._size, start + rows)

    def _reach(self, s: np.ndarray | np.float32, pn: np.ndarray | float) -> np.ndarray:
        """The ``s`` (d² less |p|², on the truncated vectors) of any face that may be
        as near as one at ``s``: the distance widened by twice the truncation (one
        face may be that much nearer, the other that much farther) and the slack."""
        d = np.sqrt(np.maximum(np.asarray(s, dtype=np.float64) + pn, 0.0))
        return np.asarray((d + 2 * self._truncation + _SLACK) ** 2 - pn, dtype=np.float32)

    def top_k(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest faces per probe: (face ids (q, k), distances (q, k)), best first.

        Exact: the scan (truncated vectors, float32) keeps every row that may
        be as near as each probe's k-th best (see :meth:`_reach`), and those are
        re-measured in float64, so the answer equals a float64 brute force.
        """
        p64 = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        q = len(p64)
        k = min(k, self._size)
        if k == 0 or q == 0:
            return np.zeros((q, 0), dtype=np.int64), np.zeros((q, 0))
        p32 = p64.astype(np.float32)
        pn = np.einsum("ij,ij->i", p32.astype(np.float64), p32.astype(np.float64))
        # Bounds are on s = d² − |p|² of the truncated vectors.
        bound = np.full(q, np.inf, dtype=np.float32)
        pool_rows: list[list[np.ndarray]] = [[] for _ in range(q)]
        pool_s: list[list[np.ndarray]] = [[] for _ in range(q)]
        pool_len = np.zeros(q, dtype=np.int64)
        size = self._size
        for start, end in self._blocks(q):
            s = scan_dense(self._high[:size], self._sqnorms[:size], p32, start, end)
            if start == 0 and s.shape[1] >= k:
                # A first bound from a sample of the first block; pruning tightens it.
                sample = s[:, : max(64 * k, 2048)]
                bound = self._reach(np.partition(sample, k - 1, axis=1)[:, k - 1], pn)
            for p in np.flatnonzero(s.min(axis=1) <= bound):
                c = np.flatnonzero(s[p] <= bound[p])
                pool_rows[p].append(c + start)
                pool_s[p].append(s[p, c])
                pool_len[p] += len(c)
                if pool_len[p] > 4 * k + 64:  # prune: keep what can still make the top k
                    rows, vals = np.concatenate(pool_rows[p]), np.concatenate(pool_s[p])
                    kth = np.partition(vals, k - 1)[k - 1]
                    bound[p] = min(bound[p], self._reach(kth, pn[p]))
                    keep = vals <= bound[p]
                    pool_rows[p], pool_s[p] = [rows[keep]], [vals[keep]]
                    pool_len[p] = int(keep.sum())
        ids = np.empty((q, k), dtype=np.int64)
        dist = np.empty((q, k), dtype=np.float64)
        for p in range(q):
            rows, vals = np.concatenate(pool_rows[p]), np.concatenate(pool_s[p])
            rows = rows[vals <= self._reach(np.partition(vals, k - 1)[k - 1], pn[p])]
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

        Reads the high plane once; the faces whose truncated vector may be within
        ``threshold`` are re-measured exactly (see the module docstring): the same
        hits as an exact scan.
        """
        if self._size == 0:
            return []
        size = self._size
        probes = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        p32 = probes.astype(np.float32)
        # The truncated vector is within `truncation` of the true one: a face whose
        # truncated vector is beyond threshold + truncation (+ slack for float32
        # rounding) is out. Limits are on s = d² − |p|² of the truncated vectors.
        reach = threshold + _SLACK
        pn = np.einsum("ij,ij->i", p32.astype(np.float64), p32.astype(np.float64))
        limit = ((reach + self._truncation) ** 2 - pn).astype(np.float32)
        probe_idx, rows, _s = scan_within(
            self._high[:size], self._sqnorms[:size], p32, limit, 0, size
        )
        if len(rows) == 0:
            return []
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
