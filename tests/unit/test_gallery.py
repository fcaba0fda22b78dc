"""FaceGallery against face_recognition's own distance, on random and real encodings."""

from __future__ import annotations

import face_recognition
import numpy as np
import pytest

from rescue.matching.gallery import FaceGallery


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(0, 0.09, size=(n, 128))  # dlib encodings: components ~N(0, 0.09)
    return v


def _gallery(vectors: np.ndarray, owners: np.ndarray | None = None) -> FaceGallery:
    g = FaceGallery(capacity=4)
    n = len(vectors)
    ids = np.arange(1, n + 1)
    g.add(ids, owners if owners is not None else ids * 10, ids * 100, vectors)
    return g


def test_top_k_equals_exact_face_distance():
    vectors = _vectors(2000)
    probes = _vectors(5, seed=1)
    g = _gallery(vectors)
    ids, dist = g.top_k(probes, 10)
    for p in range(len(probes)):
        exact = face_recognition.face_distance(vectors, probes[p])
        order = np.argsort(exact)[:10]
        assert list(ids[p]) == list(order + 1)
        np.testing.assert_allclose(dist[p], exact[order], atol=1e-6)


def test_search_returns_best_face_per_owner_within_threshold():
    vectors = _vectors(300)
    owners = np.repeat(np.arange(1, 101), 3)  # 3 faces per owner
    g = _gallery(vectors, owners)
    probe = vectors[7] + 0.01  # near face 8 (owner 3)
    threshold = 0.5
    hits = g.search(probe[None, :], threshold)
    exact = face_recognition.face_distance(vectors, probe)
    expected = {}
    for i, d in enumerate(exact):
        if d <= threshold:
            o = int(owners[i])
            expected[o] = min(expected.get(o, 9.0), d)
    assert {h.owner_id: h.distance for h in hits}.keys() == expected.keys()
    for h in hits:
        assert h.distance == pytest.approx(expected[h.owner_id], abs=1e-6)
    assert hits[0].owner_id == 3
    assert hits[0].face_id == 8
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_threshold_edge_is_exact():
    """A face just inside and one just outside the threshold are told apart."""
    base = np.zeros(128)
    inside = base.copy()
    inside[0] = 0.6 - 1e-7
    outside = base.copy()
    outside[0] = 0.6 + 1e-6
    g = _gallery(np.stack([inside, outside]), np.array([1, 2]))
    hits = g.search(base[None, :], 0.6)
    assert [h.owner_id for h in hits] == [1]


def test_add_is_idempotent_and_remove_keeps_others():
    vectors = _vectors(50)
    g = _gallery(vectors)
    g.add(np.arange(1, 51), np.arange(1, 51) * 10, np.arange(1, 51), vectors)
    assert len(g) == 50
    g.remove([1, 25, 999])
    assert len(g) == 48
    assert set(g.face_ids.tolist()) == set(range(1, 51)) - {1, 25}
    ids, _ = g.top_k(vectors[49][None, :], 1)
    assert ids[0, 0] == 50
    hits = g.search(vectors[0][None, :], 1e-9)
    assert hits == []


def test_empty_gallery_finds_nothing():
    assert FaceGallery().search(_vectors(1), 0.6) == []


def test_memory_stays_near_raw_matrix():
    g = FaceGallery(capacity=1)
    for start in range(0, 10_000, 100):
        ids = np.arange(start + 1, start + 101)
        g.add(ids, ids, ids, _vectors(100, seed=start))
    raw = len(g) * 128 * 4
    assert g.nbytes <= 1.25 * (raw + len(g) * (4 + 24)) + 1024
