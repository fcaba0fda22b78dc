"""rescue.matching.scan: the native kernel (its AVX and portable paths) and the
numpy fallback give the same values, and a bound's scan returns exactly the rows
within it, also when its output buffer fills and the scan resumes."""

from __future__ import annotations

import numpy as np
import pytest

from rescue.matching import scan


def _planes(n: int, dims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((n, dims)) * 0.09).astype(np.float32)
    high, _low = scan.split_planes(values)
    return values, high


def test_planes_give_the_float32_values_back_exactly():
    values, high = _planes(1000, 96, 0)
    _high, low = scan.split_planes(values)
    np.testing.assert_array_equal(scan.to_float32(high, low), values)
    truncated = scan.to_float32(high)
    # bfloat16 truncation: the magnitude shrinks by less than 2^-7 of the value.
    assert np.all(np.abs(truncated) <= np.abs(values))
    assert np.all(np.abs(values - truncated) <= np.abs(values) * 2**-7)


def test_the_kernel_is_built():
    assert scan.native(), "rescue/matching/_bf16scan.so is missing: run make install"
    assert scan.LIBRARY.stat().st_mtime >= scan.LIBRARY.with_suffix(".c").stat().st_mtime, (
        "the kernel is older than its source: run make install"
    )


def test_the_kernel_names_the_path_it_takes():
    """What rescue doctor prints: the CPU's best path, or the one forced."""
    import platform

    best = scan.path()
    if platform.machine() in {"x86_64", "AMD64"}:
        assert best in {"avx2", "fma", "avx"}  # every x86-64 server CPU since 2013
    try:
        for name in ("portable", "avx", "fma", "avx2"):
            scan.force_path(name)
            taken = scan.path()
            # a path the CPU lacks falls back to the next best, never to a better one
            assert taken == name or scan.PATHS[taken] < scan.PATHS[name], (name, taken)
        scan.force_path("portable")
        assert scan.path() == "portable"
    finally:
        scan.force_path("best")
    assert scan.path() == best


def _expected(high, probes):
    x = scan.to_float32(high).astype(np.float64)
    sq = (x * x).sum(1)
    return sq.astype(np.float32), sq[None, :] - 2 * (probes.astype(np.float64) @ x.T)


@pytest.fixture
def kernel_path(request):
    """The kernel's path for one test (``scan.PATHS``, or "numpy": the fallback)."""
    if request.param == "numpy":
        saved, scan._LIB = scan._LIB, None
        yield request.param
        scan._LIB = saved
        return
    scan.force_path(request.param)
    yield request.param
    scan.force_path("best")


# 128: the gallery's vectors (the AVX2 path, its own code per group of 1-4 probes,
# at most 64 probes); 64 and 96 the general AVX one; 12 (not a multiple of 8) the
# portable loop whatever the path asked for.
_DENSE = [
    *(("best", dims, q) for dims in (128, 96, 64) for q in (1, 2, 3, 4, 5, 9)),
    *(("best", 12, q) for q in (1, 3, 9)),
    *(("avx2", 128, q) for q in (1, 2, 3, 4, 7, 64)),
    ("avx2", 128, 65),  # more probes than the AVX2 path takes: the FMA one
    *((path, dims, q) for path in ("fma", "avx") for dims in (128, 64) for q in (1, 3, 6)),
    ("portable", 128, 3),
    ("numpy", 128, 3),
    ("numpy", 128, 1),
]


@pytest.mark.parametrize(("kernel_path", "dims", "q"), _DENSE, indirect=["kernel_path"], ids=str)
def test_dense_scan_equals_float64_on_the_truncated_vectors(kernel_path, dims, q):
    n = 20_011
    _values, high = _planes(n, dims, 1)
    rng = np.random.default_rng(2)
    probes = (rng.standard_normal((q, dims)) * 0.09).astype(np.float32)
    sq, want = _expected(high, probes)
    got = scan.scan_dense(high, sq, probes, 17, n - 5)
    assert got.shape == (q, n - 22)
    np.testing.assert_allclose(got, want[:, 17 : n - 5], atol=2e-6)


@pytest.mark.parametrize(
    ("kernel_path", "q", "passing"),
    [
        ("best", 1, 0.02),
        ("best", 3, 0.02),
        ("best", 3, 1.0),
        ("best", 2, 1.0),
        ("best", 6, 1.0),
        ("avx2", 5, 1.0),
        ("avx2", 1, 0.5),
        ("fma", 1, 0.02),
        ("fma", 3, 1.0),
        ("avx", 3, 1.0),
        ("portable", 3, 1.0),
        ("numpy", 1, 0.02),
        ("numpy", 3, 1.0),
    ],
    indirect=["kernel_path"],
)
def test_bounded_scan_returns_exactly_the_rows_within(kernel_path, q, passing):
    """Everything passing (1.0) overflows the first output buffer (1/256 of the
    rows): the kernel stops at a row, also inside one of its tiles, and the scan
    resumes from it."""
    n = 50_000
    _values, high = _planes(n, 128, 3)
    rng = np.random.default_rng(4)
    probes = (rng.standard_normal((q, 128)) * 0.09).astype(np.float32)
    sq, want = _expected(high, probes)
    limit = np.quantile(want, passing, axis=1).astype(np.float32) + 1e-3
    probe, rows, s = scan.scan_within(high, sq, probes, limit, 100, n)
    # Near the limit float32 rounding may differ from float64: compare away from it.
    inside = want[:, 100:] <= limit[:, None] - 1e-5
    maybe = np.abs(want[:, 100:] - limit[:, None]) < 1e-5
    got = np.zeros_like(inside)
    got[probe, rows - 100] = True
    assert np.all(got[inside])
    assert not np.any(got[~inside & ~maybe])
    assert len(rows) == len(set(zip(probe.tolist(), rows.tolist(), strict=True)))
    assert np.all(np.diff(rows) >= 0)  # by row, whatever the threads
    np.testing.assert_allclose(s, want[probe, rows], atol=2e-6)
