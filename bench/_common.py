"""Shared helpers of the benchmarks: scale, timing, the machine, and the report tables.

Each benchmark prints rows of ``figure | baseline | ratio | target`` and writes
the same table as Markdown to ``bench/out/<name>.md`` (gitignored); ``bench.report``
assembles those fragments into ``docs/performance.md``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
CACHE = ROOT / "var" / "bench-cache"
FACES_DIR = Path(os.environ.get("FACES_DIR") or ROOT.parent / "shared" / "faces")


def scale() -> float:
    """``BENCH_SCALE`` (default 1): multiplies gallery sizes and repeat counts for quick runs."""
    return float(os.environ.get("BENCH_SCALE", "1"))


def labels() -> list[dict[str, str]]:
    with open(FACES_DIR / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def timed(fn: Callable[[], Any], *, repeat: int = 5, min_seconds: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs (after one warm-up)."""
    fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    return statistics.median(times)


@dataclass(frozen=True)
class Paired:
    """Times of a measured path and its baseline taken in alternation, and their ratio."""

    value: float  # median seconds of the measured path
    baseline: float  # median seconds of the baseline
    ratio: float  # median of the per-round ratios value / baseline
    low: float  # smallest per-round ratio
    high: float  # largest per-round ratio
    rounds: int

    def spread(self) -> str:
        return f"{self.low:.2f}–{self.high:.2f} over {self.rounds} alternating pairs"


def paired(fn: Callable[[], Any], baseline: Callable[[], Any], *, rounds: int) -> Paired:
    """Time ``fn`` and ``baseline`` one after the other ``rounds`` times (after one
    warm-up each). On a shared machine the load drifts between two separate series;
    alternating puts each pair under the same load, and the median ratio of the pairs
    is what stays put from run to run."""
    fn()
    baseline()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        baseline()
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        theirs.append(t2 - t1)
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return Paired(
        statistics.median(ours),
        statistics.median(theirs),
        statistics.median(ratios),
        min(ratios),
        max(ratios),
        rounds,
    )


def rss_bytes() -> int:
    """Resident set size of this process (bytes), from /proc/self/status."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def fmt_signed(seconds: float) -> str:
    """A difference of times: ``+1.2 ms`` or ``-124.4 ms``."""
    return ("+" if seconds >= 0 else "") + fmt_seconds(seconds)


def fmt_seconds(seconds: float) -> str:
    if seconds < 0:
        return "-" + fmt_seconds(-seconds)
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory, numpy's BLAS (threadpoolctl), load average."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        blas = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')} kernel, "
            f"{i.get('num_threads')} threads)"
            for i in libs
        )
    except ImportError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "openblas_env": {
            k: v
            for k, v in os.environ.items()
            if k.startswith("OPENBLAS_") or k == "OMP_NUM_THREADS"
        },
        "loadavg": os.getloadavg(),
    }


def others_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` while this process sleeps (other load)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        idle = values[3] + values[4]
        return sum(values) - idle, sum(values)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


@dataclass
class Row:
    what: str
    value: str
    baseline: str
    ratio: str
    target: str = ""
    ok: bool | None = None


@dataclass
class Report:
    """Rows of one benchmark; printed as they come, saved as Markdown at the end."""

    name: str
    title: str
    notes: list[str] = field(default_factory=list)
    sections: list[tuple[str, list[Row]]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: Share of the CPUs other processes kept busy just before this benchmark began.
    others_busy_at_start: float = field(default_factory=others_busy)

    def section(self, heading: str) -> None:
        self.sections.append((heading, []))
        print(f"\n== {self.title}: {heading}", flush=True)

    def row(
        self,
        what: str,
        value: str,
        baseline: str,
        ratio: str,
        target: str = "",
        ok: bool | None = None,
    ) -> None:
        if not self.sections:
            self.section("results")
        self.sections[-1][1].append(Row(what, value, baseline, ratio, target, ok))
        verdict = "" if ok is None else (" ✓" if ok else " ✗ MISSED")
        print(
            f"  {what:<48} {value:>14}  vs {baseline:<30} {ratio:>10}  {target}{verdict}",
            flush=True,
        )

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def markdown(self) -> str:
        lines = [f"## {self.title}", ""]
        for heading, rows in self.sections:
            lines += [f"### {heading}", ""]
            lines += ["| measured | figure | baseline (same run) | ratio | target |"]
            lines += ["|---|---:|---|---:|---|"]
            for r in rows:
                verdict = "" if r.ok is None else (" ✓" if r.ok else " **missed**")
                lines.append(
                    f"| {r.what} | {r.value} | {r.baseline} | {r.ratio} | {r.target}{verdict} |"
                )
            lines.append("")
        if self.notes:
            lines += [f"- {n}" for n in self.notes]
            lines.append("")
        return "\n".join(lines)

    def save(self) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{self.name}.md"
        path.write_text(self.markdown())
        (OUT / f"{self.name}.json").write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "scale": scale(),
                    "others_busy_at_start": self.others_busy_at_start,
                    "data": self.data,
                },
                indent=2,
                default=str,
            )
        )
        print(f"\n(saved {path.relative_to(ROOT)})", flush=True)
        return path


def on_dev_services(run: Callable[[Any], Awaitable[None]]) -> None:
    """Start private services (a fresh PostgreSQL database, weed, Redis namespace;
    rescue.devservices), point this process's settings at them, ``asyncio.run``
    ``run(services)``, and stop them. A connection per query (``DB_POOL_MAX=0``),
    as the CLI does."""
    import asyncio

    from rescue.devservices import DevServices
    from tests import preflight

    services = DevServices(preflight.pg_url(), preflight.redis_url(), prefix="rescue-bench")
    env = services.start(DB_POOL_MAX="0")
    try:
        os.environ.update(env)
        from rescue.settings import get_settings

        get_settings.cache_clear()
        asyncio.run(run(services))  # type: ignore[arg-type]
    finally:
        services.stop()
