"""FaceGallery: exact answers against brute force, incremental add/remove, memory bound."""

from __future__ import annotations

import numpy as np
import pytest

from rescue.matching.gallery import DIM, FaceGallery
from rescue.matching.scan import decode_rows, encode_rows

pytestmark = pytest.mark.usefixtures("scan_implementation")


def _faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, DIM)) * 0.05 + 0.1).astype(np.float32)


def _held(vectors: np.ndarray) -> np.ndarray:
    """The values a gallery holds for these vectors (fixed point, within ~1e-10)."""
    return decode_rows(*encode_rows(vectors))


def _brute(vectors: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Float64 distances to the vectors as a gallery holds them."""
    gallery = _held(vectors)
    return np.array([np.sqrt(((gallery - p) ** 2).sum(-1)) for p in probes])


def _gallery(vectors: np.ndarray, first_id: int = 1) -> tuple[FaceGallery, np.ndarray]:
    ids = np.arange(first_id, first_id + len(vectors))
    gallery = FaceGallery(capacity=16)
    gallery.add(ids, ids // 3, ids * 10, vectors)
    return gallery, ids


@pytest.mark.parametrize("n", [5, 3000, 40_000])
def test_top_k_equals_float64_brute_force(n):
    vectors = _faces(n)
    gallery, ids = _gallery(vectors)
    rng = np.random.default_rng(1)
    near = vectors[: min(7, n)]
    probes = np.vstack([near + rng.normal(0, 0.01, near.shape), _faces(5, seed=2)])
    got_ids, got_dist = gallery.top_k(probes, 10)
    want = _brute(vectors, probes)
    order = np.argsort(want, axis=1, kind="stable")[:, : min(10, n)]
    assert np.array_equal(got_ids, ids[order])
    np.testing.assert_allclose(got_dist, np.take_along_axis(want, order, axis=1), atol=1e-12)


@pytest.mark.parametrize("picked", [[3], [3, 500], [3, 500, 19_999, 7, 8_192]])
def test_search_returns_every_owner_within_threshold_and_its_best_face(picked):
    # One probe, a multi-face photo, five probes; 20,001 rows: the threads' ranges
    # and the numpy fallback's steps end partial.
    vectors = _faces(20_001)
    gallery, ids = _gallery(vectors)
    probes = vectors[picked].astype(np.float64) + 0.003
    dist = _brute(vectors, probes)
    threshold = float(np.sort(dist[0])[40])  # ~40 faces inside
    hits = gallery.search(probes, threshold)
    inside = dist <= threshold
    want_owners = set((ids[np.nonzero(inside)[1]] // 3).tolist())
    assert {h.owner_id for h in hits} == want_owners
    for hit in hits:
        rows = np.flatnonzero(ids // 3 == hit.owner_id)
        assert hit.distance == pytest.approx(dist[:, rows].min(), abs=1e-12)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_batch_top_k_across_many_blocks_equals_brute_force():
    # 200 probes: blocks of 8192 rows, so 40,000 faces span 5 blocks with pruning
    vectors = _faces(40_000)
    gallery, ids = _gallery(vectors)
    rng = np.random.default_rng(3)
    probes = np.vstack([vectors[::400] + rng.normal(0, 0.01, (100, 128)), _faces(100, seed=4)])
    got_ids, got_dist = gallery.top_k(probes, 10)
    want = _brute(vectors, probes)
    order = np.argsort(want, axis=1, kind="stable")[:, :10]
    assert np.array_equal(got_ids, ids[order])
    np.testing.assert_allclose(got_dist, np.take_along_axis(want, order, axis=1), atol=1e-12)
    hits = gallery.search(probes, 0.3)
    inside = want <= 0.3
    assert {h.owner_id for h in hits} == set((ids[np.nonzero(inside)[1]] // 3).tolist())


def test_add_skips_known_and_repeated_ids():
    vectors = _faces(10)
    gallery, ids = _gallery(vectors)
    gallery.add(np.array([3, 99, 99]), np.array([1, 2, 2]), np.array([1, 2, 2]), _faces(3, 5))
    assert len(gallery) == 11
    assert sorted(gallery.face_ids.tolist()) == [*ids.tolist(), 99]
    np.testing.assert_allclose(gallery.vectors[2], vectors[2], rtol=0, atol=1e-9)  # id 3 kept it


def test_remove_then_search_sees_only_remaining_faces():
    vectors = _faces(5000)
    gallery, ids = _gallery(vectors)
    gone = np.array([1, 2, 2500, 4999, 5000, 123456])  # an unknown id is ignored
    gallery.remove(gone)
    assert len(gallery) == 5000 - 5
    kept = ~np.isin(ids, gone)
    probes = vectors[[0, 10, 2499]].astype(np.float64)
    got_ids, _ = gallery.top_k(probes, 5)
    want = _brute(vectors[kept], probes)
    assert np.array_equal(got_ids, ids[kept][np.argsort(want, axis=1, kind="stable")[:, :5]])
    row_of = {int(f): r for r, f in enumerate(gallery.face_ids)}
    for face_id in (3, 2499, 4998):
        held = gallery.vectors[row_of[face_id]]
        np.testing.assert_array_equal(held, _held(vectors[face_id - 1 : face_id])[0])


def test_memory_stays_within_1_2x_of_raw_matrix_while_growing_one_job_at_a_time():
    gallery = FaceGallery(capacity=50_000)
    vectors = _faces(50_000)
    ids = np.arange(1, 50_001)
    gallery.add(ids, ids, ids, vectors)
    # Each face is its own owner here: 16 bytes of owner count per face on top.
    # 512 bytes of vector, 4 of scale, 4 of squared norm, 24 of ids: 1.0625×.
    assert gallery.nbytes <= 1.07 * len(gallery) * DIM * 4 + 16 * gallery.owner_count
    for start in range(50_001, 60_001, 3):
        new = np.arange(start, start + 3)
        gallery.add(new, new, new, vectors[:3])
        assert gallery.nbytes <= 1.2 * len(gallery) * DIM * 4 + 16 * gallery.owner_count


def test_empty_gallery_answers_nothing():
    gallery = FaceGallery()
    assert gallery.search(_faces(1), 0.6) == []
    ids, dist = gallery.top_k(_faces(2), 3)
    assert ids.shape == (2, 0)
    assert dist.shape == (2, 0)


def test_owner_count_follows_adds_and_removes():
    rng = np.random.default_rng(5)
    gallery = FaceGallery(capacity=4)
    gallery.add(
        np.arange(1, 7), np.array([10, 10, 20, 30, 30, 30]), np.arange(6), rng.normal(size=(6, DIM))
    )
    assert gallery.owner_count == 3
    gallery.add(np.array([7, 8]), np.array([40, 10]), np.array([7, 8]), rng.normal(size=(2, DIM)))
    assert gallery.owner_count == 4
    gallery.remove([3])  # owner 20's only face
    assert gallery.owner_count == 3
    gallery.remove([1, 2])  # owner 10 keeps face 8
    assert gallery.owner_count == 3
    gallery.remove([8, 4, 5, 6, 7])
    assert gallery.owner_count == 0
    assert len(gallery) == 0


def _dlib_like(n: int, seed: int) -> np.ndarray:
    """Encodings shaped like dlib's: per-dimension spread 0.03-0.08, in no
    particular order of dimensions."""
    rng = np.random.default_rng(seed)
    spread = rng.permutation(np.linspace(0.03, 0.08, DIM))
    return rng.standard_normal((n, DIM)) * spread + rng.normal(0, 0.05, DIM)


@pytest.mark.parametrize("threshold", [0.3, 0.45, 0.53, 0.641, 0.8, 1.2])
@pytest.mark.parametrize("probes", [1, 3, 9])
def test_search_prefilter_loses_no_face_within_the_bound(threshold, probes):
    """``search`` scans the rounded high plane and re-measures the rows within the
    bound widened by the rounding: exactly the owners and best faces of a float64
    brute force, also after removals moved rows, for one probe, a 3-face photo and
    nine probes."""
    vectors = _dlib_like(6000, seed=probes)
    centre = vectors.mean(0)
    vectors = np.vstack([vectors, centre + (vectors[:200] - centre) * 0.4])  # near ones
    gallery, ids = _gallery(vectors)
    gone = ids[::7]
    gallery.remove(gone)
    keep = ~np.isin(ids, gone)
    rng = np.random.default_rng(probes)
    p = np.vstack([vectors[keep][:probes] + rng.normal(0, 0.02, (probes, DIM))])
    dist = _brute(vectors[keep], p)
    best: dict[int, tuple[float, int]] = {}
    for q in range(probes):
        for row in np.flatnonzero(dist[q] <= threshold):
            owner, d = int(ids[keep][row] // 3), float(dist[q, row])
            if owner not in best or d < best[owner][0]:
                best[owner] = (d, int(ids[keep][row]))
    hits = gallery.search(p, threshold)
    assert {h.owner_id: h.face_id for h in hits} == {o: f for o, (_d, f) in best.items()}
    for h in hits:
        assert h.distance == pytest.approx(best[h.owner_id][0], abs=1e-12)
    assert len(best) > 0


def test_vectors_come_back_in_their_own_dimension_order_within_1e_10():
    vectors = _dlib_like(50, seed=4)
    gallery, _ids = _gallery(vectors)
    held = gallery.vectors
    np.testing.assert_allclose(held, vectors, rtol=0, atol=1e-10)
    # finer than float32, which the gallery held before
    assert np.abs(held - vectors).max() < np.abs(vectors.astype(np.float32) - vectors).max()
