"""Scanning a gallery's high plane: the native kernel, or numpy when it is missing.

The gallery (rescue.matching.gallery) keeps each face's vector as 32-bit fixed
point of the face's own scale (:func:`encode_rows`): every value is
``scale × (high + low / 2²⁴)``, ``high`` a signed byte (the value rounded to a
step of ``scale`` = the face's largest magnitude / 127) and ``low`` the 24 bits
below it. A scan reads the high plane alone (1 byte per dimension instead of 4)
and gets, for every row and probe, ``s = |x̃|² − 2 p·x̃`` for the rounded vector
``x̃ = scale × high``, up to the probe's own rounding to int16 (at most
``step × |x̃|₁``, :func:`probe_steps`); the gallery bounds both and re-measures
survivors exactly.

Two implementations, the same values up to that bound:

- the native kernel ``_scan.c`` (built by ``make install`` next to this file;
  loaded with ctypes, which releases the GIL), run on row ranges by
  :data:`THREADS` threads; integer dot products (int8 rows × int16 probes), each
  row widened once for all probes; for a bound, only the rows within it;
- numpy: the block's high plane times its scales in float32, then BLAS. Used when
  the library is missing (no C compiler at install; ``rescue doctor`` says so);
  slower, never different in what the gallery answers.

Measured: docs/performance.md "Worker step at scale" (bench/worker_step.py).
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

__all__ = [
    "THREADS",
    "decode_rows",
    "encode_rows",
    "native",
    "probe_steps",
    "rounded",
    "scan_dense",
    "scan_within",
]

log = logging.getLogger(__name__)

LIBRARY = Path(__file__).with_name("_scan.so")
_VERSION = 9
#: Threads per scan: the CPUs this process may use (as BLAS would), at most 8.
THREADS = max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
#: Rows per numpy step (the fallback) and the least a thread is given.
_TASK_ROWS = 8192
_P = ctypes.c_void_p
_T = TypeVar("_T")


def _load() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(str(LIBRARY))
    except OSError:
        log.warning(
            "%s is missing (run make install with a C compiler); gallery scans use numpy "
            "(same answers, slower)",
            LIBRARY.name,
        )
        return None
    lib.rescue_scan_version.restype = ctypes.c_int
    if lib.rescue_scan_version() != _VERSION:
        log.warning("%s is out of date (run make install); gallery scans use numpy", LIBRARY)
        return None
    sz = ctypes.c_size_t
    lib.rescue_scan_dense.argtypes = [_P, sz, _P, _P, sz, _P, _P, ctypes.c_int, _P, sz]
    lib.rescue_scan_dense.restype = None
    lib.rescue_scan_within.argtypes = [_P, sz, _P, _P, sz, _P, _P, ctypes.c_int, _P, _P, _P, _P]
    lib.rescue_scan_within.argtypes += [ctypes.c_int64, ctypes.POINTER(sz)]
    lib.rescue_scan_within.restype = ctypes.c_int64
    lib.rescue_scan_force_path.argtypes = [ctypes.c_int]
    lib.rescue_scan_force_path.restype = None
    lib.rescue_scan_path.argtypes = []
    lib.rescue_scan_path.restype = ctypes.c_int
    return lib


_LIB = _load()
_POOL: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    """A forked child has none of its parent's threads: it starts its own pool."""
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


def native() -> bool:
    """Whether scans run in the native kernel (False: numpy)."""
    return _LIB is not None


#: The kernel's paths (:func:`force_path`): the best the CPU has, or one of them.
PATHS = {"best": 0, "portable": 1, "avx2": 2, "avx512vnni": 3, "avxvnni": 4}


def force_path(name: str) -> None:
    """Make the kernel take one path (:data:`PATHS`; for tests: every path checked on
    one machine; "best" again afterwards). A path the CPU lacks falls back."""
    if _LIB is not None:
        _LIB.rescue_scan_force_path(PATHS[name])


def path() -> str | None:
    """The kernel's path for a search of the gallery (one of :data:`PATHS` but
    "best": what the CPU, or :func:`force_path`, gives); None on the numpy fallback."""
    if _LIB is None:
        return None
    code = int(_LIB.rescue_scan_path())
    return next(name for name, value in PATHS.items() if value == code)


#: Fixed point: a value is ``scale × (high + low / 2**FRACTION_BITS)``.
FRACTION_BITS = 24
#: The high byte's reach: |high| ≤ 127, so ``scale`` = the row's largest |value| / 127.
HIGH_MAX = 127
#: Probes as int16: |P| ≤ 32767, so a probe's step is its largest |value| / 32767.
PROBE_MAX = 32767
#: Longest rows the kernel takes: MAX_DIM × 32767 × 127 < 2³¹ (its int32 sums).
MAX_DIM = 512
#: Probes per kernel call (its AVX2 paths keep a tile's values for at most 64 on
#: the stack; more are scanned in groups of this many, each group reading the rows).
KERNEL_PROBES = 64


def encode_rows(
    values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n, d) float values → (high int8, mid int8, low uint16, scale float32).

    Each row as 32-bit fixed point of its own scale: ``q = round(x × 2²⁴ / scale)``
    (|q| < 2³¹), ``high = round(q / 2²⁴)``, the 24 bits below it split into ``mid``
    (signed, the upper 8) and ``low`` (16). :func:`decode_rows` gives back every
    value within ``scale / 2²⁵`` (~1e-10 for dlib encodings: finer than float32's
    rounding of any value above ~0.002).
    """
    x = np.asarray(values, dtype=np.float64)
    scale = _steps(x, HIGH_MAX).astype(np.float32)
    q = np.rint(x * (float(1 << FRACTION_BITS) / scale.astype(np.float64))[:, None]).astype(
        np.int64
    )
    high = (q + (1 << (FRACTION_BITS - 1))) >> FRACTION_BITS
    rest = q - (high << FRACTION_BITS)  # −2²³ ≤ rest < 2²³
    return (
        high.astype(np.int8),
        (rest >> 16).astype(np.int8),
        (rest & 0xFFFF).astype(np.uint16),
        scale,
    )


def decode_rows(
    high: np.ndarray, mid: np.ndarray, low: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """The float64 values of rows kept by :func:`encode_rows`."""
    q = (high.astype(np.int64) << FRACTION_BITS) + (mid.astype(np.int64) << 16) + low
    return q * (scale.astype(np.float64) / float(1 << FRACTION_BITS))[:, None]


def rounded(high: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The rounded vectors ``scale × high`` (float64) that a scan measures."""
    return high.astype(np.float64) * scale.astype(np.float64)[:, None]


def probe_steps(probes: np.ndarray) -> np.ndarray:
    """Each probe's int16 step (float64, (q,)): ``s`` from a scan is within
    ``step × |x̃|₁`` (+ float32 rounding) of its value for the unrounded probe."""
    return _steps(np.asarray(probes, dtype=np.float64).reshape(len(probes), -1), PROBE_MAX)


def _steps(rows: np.ndarray, levels: int) -> np.ndarray:
    """Per row, the step that spans its largest |value| in ``levels`` (1 / levels
    for a zero row), float64 (n,)."""
    top = np.abs(rows).max(axis=1) if rows.size else np.zeros(len(rows))
    return np.where(top > 0, top, 1.0) / levels


def _quantized(probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int16 probes, factors c = −2 × step, float32), C order, with zero rows up to
    a multiple of four when there are several (the kernel takes them four at a time)."""
    p = np.asarray(probes, dtype=np.float64)
    if p.shape[1] > MAX_DIM:
        raise ValueError(f"rows of {p.shape[1]} values: the kernel's int32 sums take {MAX_DIM}")
    q = len(p)
    rows = q if q <= 1 else -(-q // 4) * 4
    step = probe_steps(p)
    out = np.zeros((rows, p.shape[1]), dtype=np.int16)
    out[:q] = np.rint(p / step[:, None])
    c = np.zeros(rows, dtype=np.float32)
    c[:q] = -2.0 * step
    return out, c


def _numpy_s(
    high: np.ndarray, sq: np.ndarray, scale: np.ndarray, probes: np.ndarray, a: int, b: int
) -> np.ndarray:
    """The fallback: ``s`` for rows a..b, float32 (q, b − a)."""
    x = high[a:b].astype(np.float32) * scale[a:b, None]
    return sq[a:b] - 2.0 * (np.asarray(probes, dtype=np.float32) @ x.T)


def _ranges(start: int, end: int) -> Iterator[tuple[int, int]]:
    for a in range(start, end, _TASK_ROWS):
        yield a, min(end, a + _TASK_ROWS)


def _shares(start: int, end: int) -> list[tuple[int, int]]:
    """start..end cut into one contiguous range per thread (fewest calls)."""
    parts = max(1, min(THREADS, (end - start) // _TASK_ROWS))
    cuts = [start + (end - start) * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(cuts))


def _parallel(tasks: list[Callable[[], _T]]) -> list[_T]:
    """Run ``tasks`` at once, one per thread (this one runs the first); results in order."""
    global _POOL
    if len(tasks) == 1:
        return [tasks[0]()]
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max(1, THREADS - 1), thread_name_prefix="gallery-scan")
    futures = [_POOL.submit(t) for t in tasks[1:]]
    first = tasks[0]()
    return [first, *(f.result() for f in futures)]


def scan_dense(
    high: np.ndarray,
    sq: np.ndarray,
    scale: np.ndarray,
    probes: np.ndarray,
    start: int,
    end: int,
) -> np.ndarray:
    """``s`` for rows start..end and every probe: float32 (q, end − start).

    Args:
        high: (N, d) int8 high plane; sq: (N,) float32, ``|x̃|²``; scale: (N,) float32.
        probes: (q, d) float.
    """
    q, rows = len(probes), end - start
    if _LIB is not None and q > KERNEL_PROBES:
        return np.vstack(
            [
                scan_dense(high, sq, scale, probes[k : k + KERNEL_PROBES], start, end)
                for k in range(0, q, KERNEL_PROBES)
            ]
        )
    out = np.empty((q, rows), dtype=np.float32)
    if _LIB is None:
        for a, b in _ranges(start, end):
            out[:, a - start : b - start] = _numpy_s(high, sq, scale, probes, a, b)
        return out
    lib, dh = _LIB, high.shape[1]
    ph, c = _quantized(probes)

    def task(a: int, b: int) -> None:
        lib.rescue_scan_dense(
            high[a:].ctypes.data,
            dh,
            sq[a:].ctypes.data,
            scale[a:].ctypes.data,
            b - a,
            ph.ctypes.data,
            c.ctypes.data,
            q,
            out[:, a - start :].ctypes.data,
            rows,
        )

    _parallel([functools.partial(task, a, b) for a, b in _shares(start, end)])
    return out


def scan_within(
    high: np.ndarray,
    sq: np.ndarray,
    scale: np.ndarray,
    probes: np.ndarray,
    limit: np.ndarray,
    start: int,
    end: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of start..end whose ``s`` is at or under each probe's ``limit``:
    (probe index int32, row int64, s float32), by row."""
    q = len(probes)
    lim = np.ascontiguousarray(limit, dtype=np.float32)
    if _LIB is not None and q > KERNEL_PROBES:
        groups = [
            scan_within(
                high,
                sq,
                scale,
                probes[k : k + KERNEL_PROBES],
                lim[k : k + KERNEL_PROBES],
                start,
                end,
            )
            for k in range(0, q, KERNEL_PROBES)
        ]
        starts = range(0, q, KERNEL_PROBES)
        p = np.concatenate([g[0] + k for g, k in zip(groups, starts, strict=True)])
        r = np.concatenate([g[1] for g in groups])
        order = np.lexsort((p, r))
        return p[order], r[order], np.concatenate([g[2] for g in groups])[order]
    if _LIB is None:
        found_p, found_r, found_s = [], [], []
        for a, b in _ranges(start, end):
            s = _numpy_s(high, sq, scale, probes, a, b)
            p, c = np.nonzero(s <= lim[:, None])
            order = np.lexsort((p, c))
            found_p.append(p[order].astype(np.int32))
            found_r.append((c[order] + a).astype(np.int64))
            found_s.append(s[p[order], c[order]])
        return _joined(found_p, found_r, found_s)
    lib, dh = _LIB, high.shape[1]
    ph, factors = _quantized(probes)

    def task(a: int, b: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        # Room for 1/256 of the rows' pairs at first (a bound on whole vectors passes
        # few random faces), doubled while it fills: the scan resumes where it stopped.
        cap = max(4 * q, (b - a) * q // 256)
        next_row = ctypes.c_size_t(0)
        out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        while a < b:
            rows = np.empty(cap, dtype=np.int64)
            probes = np.empty(cap, dtype=np.int32)
            vals = np.empty(cap, dtype=np.float32)
            n = lib.rescue_scan_within(
                high[a:].ctypes.data,
                dh,
                sq[a:].ctypes.data,
                scale[a:].ctypes.data,
                b - a,
                ph.ctypes.data,
                factors.ctypes.data,
                q,
                lim.ctypes.data,
                rows.ctypes.data,
                probes.ctypes.data,
                vals.ctypes.data,
                cap,
                ctypes.byref(next_row),
            )
            out[0].append(probes[:n])
            out[1].append(rows[:n] + a)
            out[2].append(vals[:n])
            a += next_row.value
            cap *= 2
        return out

    parts = _parallel([functools.partial(task, a, b) for a, b in _shares(start, end)])
    return _joined(
        [x for part in parts for x in part[0]],
        [x for part in parts for x in part[1]],
        [x for part in parts for x in part[2]],
    )


def _joined(
    p: list[np.ndarray] | tuple[np.ndarray, ...],
    r: list[np.ndarray] | tuple[np.ndarray, ...],
    s: list[np.ndarray] | tuple[np.ndarray, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not p:
        return np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(p), np.concatenate(r), np.concatenate(s)
