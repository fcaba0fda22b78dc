"""rescue.matching.scan: the fixed-point rows give the values back within their
bound; the native kernel (its AVX2 and portable paths) and the numpy fallback give
the same values, and a bound's scan returns exactly the rows within it, also when
its output buffer fills and the scan resumes."""

from __future__ import annotations

import numpy as np
import pytest

from rescue.matching import scan


def _planes(n: int, dims: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows shaped like dlib encodings: (values, high plane, scale)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, dims)) * 0.09
    high, _mid, _low, scale = scan.encode_rows(values)
    return values, high, scale


def test_fixed_point_rows_give_the_values_back_within_their_bound():
    rng = np.random.default_rng(0)
    values = np.vstack(
        [
            rng.standard_normal((1000, 128)) * 0.09,
            np.zeros((1, 128)),  # a zero row: any scale
            np.full((1, 128), -0.5),  # every value at the largest magnitude
            rng.standard_normal((1, 128)) * 1e-6,  # tiny values
        ]
    )
    high, mid, low, scale = scan.encode_rows(values)
    assert high.dtype == np.int8
    assert np.abs(high.astype(int)).max() <= scan.HIGH_MAX
    back = scan.decode_rows(high, mid, low, scale)
    step = scale.astype(np.float64)[:, None]
    assert np.all(np.abs(back - values) <= step / 2**25 + 1e-18)
    # the high byte alone: the value rounded to a step of its row's scale
    assert np.all(np.abs(scan.rounded(high, scale) - values) <= step / 2 * (1 + 1e-6))
    # the scale is the row's largest magnitude / 127
    top = np.abs(values).max(axis=1)
    np.testing.assert_allclose(scale[top > 0], top[top > 0] / 127, rtol=1e-7)


def test_the_kernel_is_built():
    assert scan.native(), "rescue/matching/_scan.so is missing: run make install"
    assert scan.LIBRARY.stat().st_mtime >= scan.LIBRARY.with_suffix(".c").stat().st_mtime, (
        "the kernel is older than its source: run make install"
    )


def test_the_kernel_names_the_path_it_takes():
    """What rescue doctor prints: the CPU's best path, or the one forced."""
    import platform
    from pathlib import Path

    best = scan.path()
    if platform.machine() in {"x86_64", "AMD64"} and " avx2" in Path("/proc/cpuinfo").read_text():
        assert best in {"avx2", "avx512vnni", "avxvnni"}  # every x86-64 server CPU since 2013
    try:
        for name in ("portable", "avx2", "avx512vnni", "avxvnni"):
            scan.force_path(name)
            taken = scan.path()
            # a path the CPU lacks falls back to the next best, never to a better one
            assert taken == name or scan.PATHS[taken] < scan.PATHS[name], (name, taken)
        scan.force_path("portable")
        assert scan.path() == "portable"
    finally:
        scan.force_path("best")
    assert scan.path() == best


def _expected(high, scale, probes):
    """(sq float32, what the kernel computes in float64: its integer dot products
    with the int16 probes, and the bound of the probes' rounding per probe)."""
    x = scan.rounded(high, scale)
    sq = (x * x).sum(1).astype(np.float32)
    ph, c = scan._quantized(probes)
    q = len(probes)
    dots = ph[:q].astype(np.float64) @ high.astype(np.float64).T
    kernel = sq[None, :] + c[:q, None].astype(np.float64) * (scale[None, :] * dots)
    exact = sq[None, :] - 2 * (np.asarray(probes, np.float64) @ x.T)
    rounding = scan.probe_steps(probes) * np.abs(x).sum(1).max()
    assert np.all(np.abs(kernel - exact) <= rounding[:, None] + 1e-6)  # the stated bound
    return sq, kernel, exact, rounding


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


# 128: the gallery's vectors (the AVX2 paths, with and without VNNI, their own code
# per group of 1-4 probes, at most 64 probes; a path the CPU lacks falls back to the
# next lower one); 96 and 12 the portable loop whatever the path asked for.
_DENSE = [
    *(("best", dims, q) for dims in (128, 96) for q in (1, 2, 3, 4, 5, 6, 9)),
    *(("best", 12, q) for q in (1, 3, 9)),
    *((path, 128, q) for path in ("avx2", "avx512vnni", "avxvnni") for q in (1, 2, 3, 4, 7, 64)),
    ("avx2", 128, 65),  # more probes than one kernel call takes: groups of 64
    ("best", 128, 130),
    *(("portable", 128, q) for q in (1, 3, 6)),
    ("numpy", 128, 3),
    ("numpy", 128, 1),
]


@pytest.mark.parametrize(("kernel_path", "dims", "q"), _DENSE, indirect=["kernel_path"], ids=str)
def test_dense_scan_equals_float64_on_the_rounded_vectors(kernel_path, dims, q):
    """Every value: the kernel's integer products to float32 rounding; the numpy
    fallback's (float probes) and the kernel's both within the probes' rounding of
    the exact value. Rows 17..n−5 of 20,011: threads' ranges and tiles end partial."""
    n = 20_011
    _values, high, scale = _planes(n, dims, 1)
    rng = np.random.default_rng(2)
    probes = rng.standard_normal((q, dims)) * 0.09
    sq, kernel, exact, rounding = _expected(high, scale, probes)
    got = scan.scan_dense(high, sq, scale, probes, 17, n - 5)
    assert got.shape == (q, n - 22)
    if kernel_path != "numpy":
        np.testing.assert_allclose(got, kernel[:, 17 : n - 5], atol=2e-6)
    assert np.all(np.abs(got - exact[:, 17 : n - 5]) <= rounding[:, None] + 2e-6)


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
        ("avx2", 2, 0.3),
        ("best", 70, 0.3),  # two kernel calls (64 + 6 probes), merged by row
        ("avx512vnni", 3, 1.0),
        ("avxvnni", 1, 0.02),
        ("avxvnni", 3, 1.0),
        ("portable", 1, 0.02),
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
    _values, high, scale = _planes(n, 128, 3)
    rng = np.random.default_rng(4)
    probes = rng.standard_normal((q, 128)) * 0.09
    sq, kernel, exact, _rounding = _expected(high, scale, probes)
    want = exact if kernel_path == "numpy" else kernel
    limit = np.quantile(want, passing, axis=1).astype(np.float32) + 1e-3
    probe, rows, s = scan.scan_within(high, sq, scale, probes, limit, 100, n)
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
