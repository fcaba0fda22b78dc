"""Import of an external list (比对预警): throughput and memory against the list's size.

On the real services, started like the test suite does (``rescue.devservices``): a
fresh PostgreSQL database and a SeaweedFS S3 server. In this process, the same
calls as ``rescue import`` (``create_run``: the dry run; ``execute_run``: the run,
which streams the file from the object store and commits a batch of 100 rows at a
time, comparing each row with the people in care and the open notices).

A police list of 100 k rows (GBK CSV, Chinese names from a pool of 2,000, ages,
places; every 100th row agrees with a notice and raises a warning) is measured
against a 10 k-row list of the same shape, imported in the same run, against a
gallery of 2,000 open notices, after a small warm-up import (first-use costs):

- rows/s of the run (and of the dry run), 100 k vs 10 k: the cost per row should
  not grow with the list (ratio ≈ 1);
- memory: the growth of the process's peak resident set (VmHWM, reset through
  /proc/self/clear_refs before each phase) over its size before the phase. The
  run streams, so its growth should not follow the number of rows (ratio ≈ 1, a
  few MB apart); so does the dry run's: it reads the list from an open file (the
  API passes the multipart parser's spooled temporary file), keeps the
  外部编号/身份证号 seen so far in a temporary SQLite file, and copies the file to
  the object store part by part. The upload holds one part (up to 5 MiB, S3's
  smallest multipart part) in memory, so a list under 5 MiB costs less than one
  over it; a third, dry-run-only list of 3 × the large one (300 k rows) shows the
  growth no longer follows the file.

Photos (a 照片 column, the dry run's photo check, the run on Dramatiq workers):
bench/import_photos.py.

No timed assertion: figures and ratios are printed and saved (bench/out/imports.md).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import Report, on_dev_services, scale

HEADER = "外部编号,姓名,性别,出生日期,年龄,身份证号,户籍地,地点,日期,备注"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志红玉梅文"
GALLERY = 2000


def _names(n: int, rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        names.add(rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))))
    return sorted(names)


def list_file(path: Path, rows: int, names: list[str], prefix: str) -> int:
    """Write a GBK CSV of ``rows`` rows to ``path`` line by line; every 100th row is
    a 70-year-old woman last seen at 城北汽车站, like the gallery's notices (a
    warning), the others are 40. Returns the file's size in bytes."""
    with path.open("w", encoding="gbk", newline="") as fh:
        fh.write(HEADER + "\r\n")
        for i in range(rows):
            name = names[i % len(names)]
            if i % 100 == 0:
                fh.write(f"{prefix}-{i},{name},女,,70,,,城北汽车站,,\r\n")
            else:
                fh.write(f"{prefix}-{i},{name},男,,40,,四川成都,成都东站,2026-10-01,\r\n")
    return path.stat().st_size


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> int:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); returns the RSS in KiB."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status_kb("VmRSS")


async def gallery(names: list[str]) -> None:
    """One open notice per name (bulk insert: the gallery is set-up, not measured)."""
    from rescue.notices.tables import Notice

    rows = [
        Notice(
            name=name,
            sex="female",
            age_when_missing=70,
            last_seen_place="城北汽车站",
            source="family",
        )
        for name in names
    ]
    for i in range(0, len(rows), 500):
        await Notice.insert(*rows[i : i + 500])


async def import_once(
    rows: int, names: list[str], prefix: str, *, dry_only: bool = False
) -> dict[str, Any]:
    """Dry run then run (``dry_only``: the dry run alone) of a ``rows``-row list;
    times (s) and memory growth (KiB)."""
    from rescue.imports.services import create_run, execute_run
    from rescue.imports.tables import ImportRun
    from rescue.imports.templates import ListKind
    from rescue.runtime import get_store

    store = get_store()
    with tempfile.TemporaryDirectory(prefix="rescue-bench-list-") as tmp:
        path = Path(tmp) / "list.csv"
        size = list_file(path, rows, names, prefix)
        with path.open("rb") as fh:  # streamed, as the API's spooled upload
            before = reset_peak()
            t0 = time.perf_counter()
            checked = await create_run(
                kind=ListKind.police_missing,
                list_name=f"bench {prefix}",
                filename="list.csv",
                data=fh,
                station="north",
                by=None,
                store=store,
                max_bytes=size + 1,
            )
            dry_seconds = time.perf_counter() - t0
            dry_growth = _status_kb("VmHWM") - before
    if dry_only:
        return {
            "rows": rows,
            "file_bytes": size,
            "dry_seconds": dry_seconds,
            "dry_growth_kib": dry_growth,
        }
    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == checked.id)
    before = reset_peak()
    t0 = time.perf_counter()
    done = await execute_run(run_id=checked.id, store=store)
    run_seconds = time.perf_counter() - t0
    run_growth = _status_kb("VmHWM") - before
    if done.status.value != "done" or done.rows_done != rows:
        raise RuntimeError(f"the import did not finish: {done}")
    return {
        "rows": rows,
        "file_bytes": size,
        "dry_seconds": dry_seconds,
        "dry_growth_kib": dry_growth,
        "run_seconds": run_seconds,
        "run_growth_kib": run_growth,
        "warnings": done.warnings_raised,
    }


async def measure(report: Report, small: int, large: int) -> None:
    rng = random.Random(13)
    names = _names(GALLERY, rng)
    t0 = time.perf_counter()
    await gallery(names)
    report.note(f"gallery: {GALLERY:,} open notices in {time.perf_counter() - t0:.1f} s")
    await import_once(max(200, small // 10), names, "W")  # warm-up: first-use costs
    base = await import_once(small, names, "S")
    big = await import_once(large, names, "L")
    huge = await import_once(3 * large, names, "H", dry_only=True)
    report.data.update({"baseline": base, "measured": big, "dry_run_3x": huge})

    def rate(r: dict[str, Any], key: str) -> float:
        return float(r["rows"]) / float(r[key])

    report.section(f"{large:,}-row list vs {small:,}-row list, same run")
    for label, key in (("run", "run_seconds"), ("dry run", "dry_seconds")):
        ours, theirs = rate(big, key), rate(base, key)
        report.row(
            f"{label}: rows/s",
            f"{ours:,.0f}",
            f"{theirs:,.0f} ({small:,} rows)",
            f"{ours / theirs:.2f}×",
            "≈ 1× (cost per row flat)",
        )
    ours_mb, theirs_mb = big["run_growth_kib"] / 1024, base["run_growth_kib"] / 1024
    report.row(
        "run: peak memory growth",
        f"{ours_mb:.1f} MiB",
        f"{theirs_mb:.1f} MiB ({small:,} rows)",
        f"{(ours_mb / theirs_mb) if theirs_mb > 0 else float('nan'):.2f}×",
        f"≪ {large // small}× (streamed)",
        ok=ours_mb <= max(2 * theirs_mb, theirs_mb + 4),
    )
    ours_mb, theirs_mb = big["dry_growth_kib"] / 1024, base["dry_growth_kib"] / 1024
    report.row(
        "dry run: peak memory growth",
        f"{ours_mb:.1f} MiB",
        f"{theirs_mb:.1f} MiB ({small:,} rows)",
        f"{(ours_mb / theirs_mb) if theirs_mb > 0 else float('nan'):.2f}×",
        f"≪ {large // small}× (file {big['file_bytes'] / 2**20:.1f} MiB vs "
        f"{base['file_bytes'] / 2**20:.1f} MiB; upload part ≤ 5 MiB)",
    )
    huge_mb = huge["dry_growth_kib"] / 1024
    report.row(
        f"dry run: peak memory growth, {3 * large:,} rows",
        f"{huge_mb:.1f} MiB",
        f"{ours_mb:.1f} MiB ({large:,} rows)",
        f"{(huge_mb / ours_mb) if ours_mb > 0 else float('nan'):.2f}×",
        f"≈ 1× (streamed; file {huge['file_bytes'] / 2**20:.1f} MiB)",
        ok=huge_mb <= max(1.5 * ours_mb, ours_mb + 4),
    )
    report.row(
        f"dry run: rows/s, {3 * large:,} rows",
        f"{huge['rows'] / huge['dry_seconds']:,.0f}",
        f"{big['rows'] / big['dry_seconds']:,.0f} ({large:,} rows)",
        f"{(huge['rows'] / huge['dry_seconds']) / (big['rows'] / big['dry_seconds']):.2f}×",
        "≈ 1× (cost per row flat)",
    )
    report.row(
        f"run: time for {large:,} rows",
        f"{big['run_seconds']:.1f} s",
        f"{base['run_seconds']:.1f} s ({small:,} rows)",
        f"{big['run_seconds'] / base['run_seconds']:.2f}×",
        f"≈ {large // small}× (linear)",
    )
    report.note(
        f"warnings raised: {big['warnings']:,} ({large:,} rows), {base['warnings']:,} "
        f"({small:,} rows); one worker, batches of 100 rows per transaction"
    )


def main() -> int:
    report = Report("imports", "Import of an external list")
    large = max(10_000, int(100_000 * scale()))
    small = max(1_000, large // 10)
    on_dev_services(lambda _services: measure(report, small, large))
    report.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
