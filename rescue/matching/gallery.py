"""In-memory face gallery for 1:N search.

A worker keeps one gallery per side (faces of notices, faces of cases) and
refreshes it incrementally (:meth:`FaceGallery.add` / :meth:`FaceGallery.remove`)
instead of reloading per job. Each face's 128 values are held as 32-bit fixed
point of the face's own scale (512 bytes per face, rescue.matching.scan.encode_rows):
a signed high byte per value (the value rounded to a step of ``scale``, the
face's largest |value| / 127), the 24 bits below it, and the scale. Decoded,
every value is within ``scale / 2²⁵`` (~1e-10) of the encoding the database
holds (float64): closer than float32, which this replaced, kept it.

A scan reads the high plane alone, 128 bytes per face (the native kernel,
rescue.matching.scan, in integers). Every face's rounding moves it by at most
:attr:`FaceGallery.truncation` (measured when it is added, ~0.01 on dlib
encodings), and a probe's rounding to int16 moves ``s`` by at most its step ×
the largest |x̃|₁ held; bounds are widened by both, and whatever may be within
reach is re-measured exactly (float64 difference of the decoded values), so the
accept decision matches ``face_recognition.face_distance`` to ~1e-9 and the
answers equal a float64 brute force.

:meth:`FaceGallery.search` (a bound) and :meth:`FaceGallery.top_k` both read the
high plane once; each row is widened once for every probe, so a photo with
several faces costs little more than one. Measured in bench/worker_step.py
(docs/performance.md "Worker step at scale"). Rejected before this layout: the
high half of each float32 as bfloat16 (256 bytes per face read: at 4 M faces
the scan took 28 of the worker step's 45 ms beyond detection, 2026-12-04); a head
of the 96 dimensions of largest spread scanned first, its tail read for the
faces the head let through (2026-12-03: at the loose bound 0.64 a real face let
~1.7 % of 4 M synthetic faces through, and reading their tails, one page each,
cost 9-16 ms, more than the 64 bytes per face the head saved); float16 storage
through numpy (its float16→float32 conversion ran at ~1.7 ns per value, slower
than reading the float32 it saves; bench/search.py ``Float16Gallery``); a
PCA-rotated prefilter (on the bench's synthetic encodings the leading 32 / 64
dimensions hold 37 % / 63 % of the spread, and 97 % / 13 % of random faces
survive a 0.6 bound on them).

Memory: 512 bytes of vector + 4 of scale + 4 of squared norm + 24 of ids per face
(+ 16 per distinct owner, for :attr:`FaceGallery.owner_count`), and no per-face
Python objects (face ids are looked up in the ids column). A worker's first load
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

from rescue.matching.scan import (
    decode_rows,
    encode_rows,
    probe_steps,
    rounded,
    scan_dense,
    scan_within,
)

__all__ = ["DIM", "FaceGallery", "GalleryHit"]

DIM = 128
#: Growth step: this fraction of the capacity, at least _MIN_STEP rows.
_GROWTH = 1 / 16
_MIN_STEP = 1024
#: Rows encoded at a time by add (its temporaries: ~8 KiB per row).
_ENCODE_ROWS = 16384
#: d² values per top_k block (q probes × rows): 1 Mi float32 = 4 MiB.
_BLOCK_VALUES = 1 << 20
#: Rows per block at least and at most.
_MIN_ROWS, _MAX_ROWS = 8192, 131072
#: Slack on float32 distances when selecting rows to re-measure exactly (float32
#: rounding of d² is ~1e-6).
_SLACK = 1e-3
#: Float32 rounding of a scan's ``s`` (|s| ≲ 4: a few ulps of 4.8e-7), beyond the
#: probe's int16 rounding that :meth:`FaceGallery._scan_error` adds.
_S_ROUNDING = 1e-5


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
        # The vectors (N × 128) as fixed point of each row's scale
        # (rescue.matching.scan.encode_rows): high byte, then the 24 bits below it.
        self._high = np.zeros((capacity, DIM), dtype=np.int8)
        self._mid = np.zeros((capacity, DIM), dtype=np.int8)
        self._low = np.zeros((capacity, DIM), dtype=np.uint16)
        self._scale = np.ones(capacity, dtype=np.float32)
        # Squared norms of the rounded vectors x̃ = scale × high, |x̃|².
        self._sqnorms = np.zeros(capacity, dtype=np.float32)
        self._ids = np.zeros((capacity, 3), dtype=np.int64)  # face, owner, photo
        self._size = 0
        self._truncation = 0.0
        self._l1 = 0.0
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
            + self._mid.nbytes
            + self._low.nbytes
            + self._scale.nbytes
            + self._sqnorms.nbytes
            + self._ids.nbytes
            + self._owners.nbytes
            + self._owner_faces.nbytes
        )

    @property
    def truncation(self) -> float:
        """Largest distance (Euclidean, float64) between a face added so far and its
        rounded vector ``scale × high``: the slack every scan bound is widened by."""
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
        """The (N, 128) vectors, float64 (a copy; each value within ~1e-10 of the one added)."""
        return self._rows(np.arange(self._size))

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows' vectors, float64, as held (rescue.matching.scan.decode_rows)."""
        return decode_rows(self._high[rows], self._mid[rows], self._low[rows], self._scale[rows])

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

        self._high, self._mid, self._low = grown(self._high), grown(self._mid), grown(self._low)
        self._scale, self._sqnorms = grown(self._scale), grown(self._sqnorms)
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
        vectors = np.asarray(vectors).reshape(-1, DIM)
        vectors = vectors if everything else vectors[keep]
        n = len(face_ids)
        self._grow_for(n)
        start, end = self._size, self._size + n
        for a in range(0, n, _ENCODE_ROWS):  # bounded temporaries (8 int64 per value)
            b = min(n, a + _ENCODE_ROWS)
            high, mid, low, scale = encode_rows(vectors[a:b])
            rows = slice(start + a, start + b)
            self._high[rows], self._mid[rows], self._low[rows] = high, mid, low
            self._scale[rows] = scale
            near = rounded(high, scale)
            self._sqnorms[rows] = np.einsum("ij,ij->i", near, near)
            moved = vectors[a:b] - near
            self._truncation = max(
                self._truncation, float(np.sqrt(np.einsum("ij,ij->i", moved, moved).max()))
            )
            self._l1 = max(self._l1, float(np.abs(near).sum(axis=1).max()))
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
        for a in (self._high, self._mid, self._low, self._scale, self._sqnorms, self._ids):
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

    def _scan_error(self, probes: np.ndarray) -> np.ndarray:
        """Per probe, how far a scan's ``s`` may be from |x̃|² − 2 p·x̃: the probe's
        int16 rounding (step × |x̃|₁, the largest held) and float32's."""
        return probe_steps(probes) * self._l1 + _S_ROUNDING

    def _reach(
        self, s: np.ndarray | np.float32, pn: np.ndarray | float, err: np.ndarray | float
    ) -> np.ndarray:
        """The scanned ``s`` (d² less |p|², on the rounded vectors, within ``err``) of
        any face that may be as near as one scanned at ``s``: the distance widened
        by twice the truncation (one face may be that much nearer, the other that
        much farther) and the slack, and both scans' error."""
        d = np.sqrt(np.maximum(np.asarray(s, dtype=np.float64) + err + pn, 0.0))
        return np.asarray((d + 2 * self._truncation + _SLACK) ** 2 - pn + err, dtype=np.float32)

    def top_k(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest faces per probe: (face ids (q, k), distances (q, k)), best first.

        Exact: the scan (rounded vectors, in integers) keeps every row that may
        be as near as each probe's k-th best (see :meth:`_reach`), and those are
        re-measured in float64, so the answer equals a float64 brute force.
        """
        p64 = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        q = len(p64)
        k = min(k, self._size)
        if k == 0 or q == 0:
            return np.zeros((q, 0), dtype=np.int64), np.zeros((q, 0))
        pn = np.einsum("ij,ij->i", p64, p64)
        err = self._scan_error(p64)
        # Bounds are on the scanned s ≈ d² − |p|² of the rounded vectors.
        bound = np.full(q, np.inf, dtype=np.float32)
        pool_rows: list[list[np.ndarray]] = [[] for _ in range(q)]
        pool_s: list[list[np.ndarray]] = [[] for _ in range(q)]
        pool_len = np.zeros(q, dtype=np.int64)
        size = self._size
        for start, end in self._blocks(q):
            s = scan_dense(
                self._high[:size], self._sqnorms[:size], self._scale[:size], p64, start, end
            )
            if start == 0 and s.shape[1] >= k:
                # A first bound from a sample of the first block; pruning tightens it.
                sample = s[:, : max(64 * k, 2048)]
                bound = self._reach(np.partition(sample, k - 1, axis=1)[:, k - 1], pn, err)
            for p in np.flatnonzero(s.min(axis=1) <= bound):
                c = np.flatnonzero(s[p] <= bound[p])
                pool_rows[p].append(c + start)
                pool_s[p].append(s[p, c])
                pool_len[p] += len(c)
                if pool_len[p] > 4 * k + 64:  # prune: keep what can still make the top k
                    rows, vals = np.concatenate(pool_rows[p]), np.concatenate(pool_s[p])
                    kth = np.partition(vals, k - 1)[k - 1]
                    bound[p] = min(bound[p], self._reach(kth, pn[p], err[p]))
                    keep = vals <= bound[p]
                    pool_rows[p], pool_s[p] = [rows[keep]], [vals[keep]]
                    pool_len[p] = int(keep.sum())
        ids = np.empty((q, k), dtype=np.int64)
        dist = np.empty((q, k), dtype=np.float64)
        for p in range(q):
            rows, vals = np.concatenate(pool_rows[p]), np.concatenate(pool_s[p])
            rows = rows[vals <= self._reach(np.partition(vals, k - 1)[k - 1], pn[p], err[p])]
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

        Reads the high plane once; the faces whose rounded vector may be within
        ``threshold`` are re-measured exactly (see the module docstring): the same
        hits as an exact scan.
        """
        if self._size == 0:
            return []
        size = self._size
        probes = np.asarray(probes, dtype=np.float64).reshape(-1, DIM)
        # The rounded vector is within `truncation` of the true one: a face whose
        # rounded vector is beyond threshold + truncation (+ slack for float32
        # rounding) is out. Limits are on the scanned s ≈ d² − |p|² of the rounded
        # vectors, widened by the scan's error.
        reach = threshold + _SLACK
        pn = np.einsum("ij,ij->i", probes, probes)
        limit = ((reach + self._truncation) ** 2 - pn + self._scan_error(probes)).astype(np.float32)
        probe_idx, rows, _s = scan_within(
            self._high[:size], self._sqnorms[:size], self._scale[:size], probes, limit, 0, size
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
