"""FaceGallery against face_recognition.face_distance itself (the library the
service's matching must agree with), including the threshold edge."""

from __future__ import annotations

import face_recognition
import numpy as np
import pytest

from rescue.matching.gallery import FaceGallery

pytestmark = pytest.mark.usefixtures("scan_implementation")


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
