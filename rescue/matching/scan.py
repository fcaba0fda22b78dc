"""Scanning a gallery's high plane: the native kernel, or numpy when it is missing.

The gallery (rescue.matching.gallery) keeps each face's vector as two uint16
planes, the high and low halves of its float32 values. The high plane is
bfloat16: a scan reads it alone (2 bytes per dimension instead of 4) and gets, for
every row and probe, ``s = |x̃|² − 2 p·x̃`` for the truncated vector ``x̃``; the
gallery bounds the truncation's effect and re-measures survivors exactly.

Two implementations, same values up to float32 summation order:

- the native kernel ``_bf16scan.c`` (built by ``make install`` next to this file;
  loaded with ctypes, which releases the GIL), run on row ranges by
  :data:`THREADS` threads; it converts each row once for all probes and, for a
  bound, returns only the rows within it;
- numpy: the block's high plane shifted into float32, then BLAS. Used when the
  library is missing (no C compiler at install; ``rescue doctor`` says so);
  slower (the conversion costs more than the bytes it saves), never different.

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

__all__ = ["THREADS", "native", "scan_dense", "scan_within", "split_planes", "to_float32"]

log = logging.getLogger(__name__)

LIBRARY = Path(__file__).with_name("_bf16scan.so")
_VERSION = 8
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
    lib.rescue_scan_dense.argtypes = [_P, sz, _P, sz, _P, ctypes.c_int, _P, sz]
    lib.rescue_scan_dense.restype = None
    lib.rescue_scan_within.argtypes = [_P, sz, _P, sz, _P, ctypes.c_int, _P, _P, _P, _P]
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
PATHS = {"best": 0, "portable": 1, "avx": 2, "fma": 3, "avx2": 4}


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


def split_planes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 array → (high, low) uint16 planes of the same shape."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return (bits >> 16).astype(np.uint16), (bits & 0xFFFF).astype(np.uint16)


def to_float32(high: np.ndarray, low: np.ndarray | None = None) -> np.ndarray:
    """The float32 values of a high plane (truncated, bfloat16) or, with the low
    plane, the exact ones."""
    bits = high.astype(np.uint32) << 16
    if low is not None:
        bits |= low
    return bits.view(np.float32)


def _padded(probes: np.ndarray) -> np.ndarray:
    """float32 probes, C order, with zero rows up to a multiple of four when there
    are several (the kernel takes them four at a time)."""
    q = len(probes)
    rows = q if q <= 1 else -(-q // 4) * 4
    out = np.zeros((rows, probes.shape[1]), dtype=np.float32)
    out[:q] = probes
    return out


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
    high: np.ndarray, sq: np.ndarray, probes: np.ndarray, start: int, end: int
) -> np.ndarray:
    """``s`` for rows start..end and every probe: float32 (q, end − start).

    Args:
        high: (N, d) uint16 high plane; sq: (N,) float32, ``|x̃|²``.
        probes: (q, d) float32.
    """
    q, rows = len(probes), end - start
    out = np.empty((q, rows), dtype=np.float32)
    ph = _padded(probes)
    if _LIB is None:
        for a, b in _ranges(start, end):
            out[:, a - start : b - start] = sq[a:b] - 2.0 * (ph[:q] @ to_float32(high[a:b]).T)
        return out
    lib, dh = _LIB, high.shape[1]

    def task(a: int, b: int) -> None:
        lib.rescue_scan_dense(
            high[a:].ctypes.data,
            dh,
            sq[a:].ctypes.data,
            b - a,
            ph.ctypes.data,
            q,
            out[:, a - start :].ctypes.data,
            rows,
        )

    _parallel([functools.partial(task, a, b) for a, b in _shares(start, end)])
    return out


def scan_within(
    high: np.ndarray,
    sq: np.ndarray,
    probes: np.ndarray,
    limit: np.ndarray,
    start: int,
    end: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of start..end whose ``s`` is at or under each probe's ``limit``:
    (probe index int32, row int64, s float32), by row."""
    q = len(probes)
    ph = _padded(probes)
    lim = np.ascontiguousarray(limit, dtype=np.float32)
    if _LIB is None:
        found_p, found_r, found_s = [], [], []
        for a, b in _ranges(start, end):
            s = sq[a:b] - 2.0 * (ph[:q] @ to_float32(high[a:b]).T)
            p, c = np.nonzero(s <= lim[:, None])
            order = np.lexsort((p, c))
            found_p.append(p[order].astype(np.int32))
            found_r.append((c[order] + a).astype(np.int64))
            found_s.append(s[p[order], c[order]])
        return _joined(found_p, found_r, found_s)
    lib, dh = _LIB, high.shape[1]

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
                b - a,
                ph.ctypes.data,
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
