"""In-memory face gallery for 1:N search.

A worker keeps one gallery per side (faces of notices, faces of cases) and
refreshes it incrementally (:meth:`FaceGallery.add` / :meth:`FaceGallery.remove`)
instead of reloading per job. Vectors are held as one contiguous float32 matrix
(N × 128, 512 bytes per face) plus their squared norms, so a search is one
SGEMM: ``d² = |p|² + |g|² − 2 p·gᵀ``. Faces within reach of the threshold are
then re-measured exactly (float64 difference of the stored vectors), so the
accept decision matches ``face_recognition.face_distance`` to ~1e-7.

Capacity grows by 25 % at a time, keeping memory ≤ 1.25 × the raw float32
matrix plus 24 bytes of ids per face (measured in bench/search.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DIM", "FaceGallery", "GalleryHit"]

DIM = 128
_GROWTH = 1.25


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
        self._row_of: dict[int, int] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (not counting the face-id index dict)."""
        return self._vectors.nbytes + self._sqnorms.nbytes + self._ids.nbytes

    @property
    def face_ids(self) -> np.ndarray:
        return self._ids[: self._size, 0]

    @property
    def vectors(self) -> np.ndarray:
        """The live (N, 128) float32 matrix (a view; do not modify)."""
        return self._vectors[: self._size]

    def _reserve(self, extra: int) -> None:
        needed = self._size + extra
        capacity = self._vectors.shape[0]
        if needed <= capacity:
            return
        new_capacity = max(needed, int(capacity * _GROWTH) + 1)
        vectors = np.zeros((new_capacity, DIM), dtype=np.float32)
        vectors[: self._size] = self._vectors[: self._size]
        sqnorms = np.zeros(new_capacity, dtype=np.float32)
        sqnorms[: self._size] = self._sqnorms[: self._size]
        ids = np.zeros((new_capacity, 3), dtype=np.int64)
        ids[: self._size] = self._ids[: self._size]
        self._vectors, self._sqnorms, self._ids = vectors, sqnorms, ids

    def add(
        self,
        face_ids: np.ndarray,
        owner_ids: np.ndarray,
        photo_ids: np.ndarray,
        vectors: np.ndarray,
    ) -> None:
        """Add faces (ids shape (n,), vectors shape (n, 128)); known face ids are skipped."""
        face_ids = np.asarray(face_ids, dtype=np.int64)
        keep = np.array([int(f) not in self._row_of for f in face_ids], dtype=bool)
        if not keep.any():
            return
        face_ids = face_ids[keep]
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, DIM)[keep]
        n = len(face_ids)
        self._reserve(n)
        start, end = self._size, self._size + n
        self._vectors[start:end] = vectors
        self._sqnorms[start:end] = np.einsum("ij,ij->i", vectors, vectors)
        self._ids[start:end, 0] = face_ids
        self._ids[start:end, 1] = np.asarray(owner_ids, dtype=np.int64)[keep]
        self._ids[start:end, 2] = np.asarray(photo_ids, dtype=np.int64)[keep]
        for offset, face_id in enumerate(face_ids):
            self._row_of[int(face_id)] = start + offset
        self._size = end

    def remove(self, face_ids: list[int] | np.ndarray) -> None:
        """Remove faces by id (unknown ids are ignored); the last row fills the gap."""
        for face_id in (int(f) for f in face_ids):
            row = self._row_of.pop(face_id, None)
            if row is None:
                continue
            last = self._size - 1
            if row != last:
                self._vectors[row] = self._vectors[last]
                self._sqnorms[row] = self._sqnorms[last]
                self._ids[row] = self._ids[last]
                self._row_of[int(self._ids[row, 0])] = row
            self._size = last

    def squared_distances(self, probes: np.ndarray) -> np.ndarray:
        """Approximate squared distances, shape (k, N), float32 (one SGEMM)."""
        p = np.asarray(probes, dtype=np.float32).reshape(-1, DIM)
        g = self._vectors[: self._size]
        d2 = g @ p.T  # (N, k): the gallery streams once
        d2 *= -2.0
        d2 += self._sqnorms[: self._size, None]
        d2 += np.einsum("ij,ij->i", p, p)[None, :]
        return d2.T

    def top_k(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest faces per probe: (face ids (q, k), distances (q, k)), best first."""
        d2 = self.squared_distances(probes)
        k = min(k, self._size)
        idx = (
            np.argpartition(d2, k - 1, axis=1)[:, :k] if k < self._size else np.argsort(d2, axis=1)
        )
        part = np.take_along_axis(d2, idx, axis=1)
        order = np.argsort(part, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        exact = self._exact(np.asarray(probes, dtype=np.float64).reshape(-1, DIM), idx)
        return self._ids[idx, 0], exact

    def _exact(self, probes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        diff = self._vectors[rows].astype(np.float64) - probes[:, None, :]
        return np.sqrt(np.einsum("qkd,qkd->qk", diff, diff))

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
        d2 = self.squared_distances(probes)
        # Float32 rounding of d² is far below 1e-3; re-measure anything that close.
        probe_idx, rows = np.nonzero(d2 <= (threshold + 1e-3) ** 2)
        if len(rows) == 0:
            return []
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
