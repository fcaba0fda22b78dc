"""`rescue calibrate`: bands measured on one labelled set hold on a disjoint one."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import anyio
import pytest

from rescue.devservices import ROOT
from rescue.matching.calibration import Calibration, calibration_for
from rescue.matching.embedding import MODEL_NAME
from rescue.matching.tables import MatchCalibration
from tests.support import FACES_DIR as FACES

RESCUE = str(Path(sys.executable).with_name("rescue"))


def _labelled_folder(folder: Path, identities: list[str], rows: list[dict[str, str]]) -> Path:
    """A folder in the labels.csv layout, its photos symlinked from ../shared/faces."""
    folder.mkdir()
    wanted = set(identities)
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "identity", "set", "faces"])
        writer.writeheader()
        for row in rows:
            if row["identity"] in wanted:
                target = folder / row["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(FACES / row["path"])
                writer.writerow(row)
    return folder


async def _calibrate(folder: Path, *extra: str) -> tuple[Calibration, str]:
    out = folder.with_suffix(".json")
    result = await anyio.run_process(
        [RESCUE, "calibrate", str(folder), "--json", str(out), *extra], cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return Calibration.from_dict(json.loads(out.read_text())), result.stdout.decode()


async def test_calibration_on_one_set_states_rates_that_hold_on_a_disjoint_set(tmp_path):
    with (FACES / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"].startswith("lfw_subset/gallery_probe/")]
    # 100 people, alternately to the calibration set and to the check set (about
    # 200 photos and 20,000 different-person pairs each).
    people = sorted({r["identity"] for r in rows})[:100]
    first = _labelled_folder(tmp_path / "first", people[0::2], rows)
    second = _labelled_folder(tmp_path / "second", people[1::2], rows)

    try:
        stated, report = await _calibrate(first)
        assert "strong (≤ 1 %)" in report
        assert "stored as calibration" in report
        stored = await calibration_for(MODEL_NAME)
        assert stored is not None
        assert stored.source == stated.source  # the service now uses it
        assert stored.loose_bound == stated.loose_bound
    finally:  # other tests use the shipped default
        await MatchCalibration.delete(force=True)

    measured, _ = await _calibrate(second, "--dry-run")
    assert measured.impostor_pairs > 15_000
    for rate in (0.01, 0.05):
        distance = stated.cutoff(rate, 1)
        assert 0.5 <= measured.pair_rate(distance) / rate <= 2.0, (rate, distance)
    # The loose bound keeps about as many true pairs on the other set.
    bound = stated.loose_bound
    assert measured.genuine_share(bound) == pytest.approx(stated.genuine_share(bound), abs=0.05)
    assert stated.genuine_share(bound) >= 0.98


async def test_calibrate_refuses_a_folder_without_labels(tmp_path):
    result = await anyio.run_process([RESCUE, "calibrate", str(tmp_path)], cwd=ROOT, check=False)
    assert result.returncode == 1
    assert b"labels.csv" in result.stderr


async def test_calibration_in_force_is_cached_and_follows_a_row_written_elsewhere():
    """The worker parses the calibration once per model, and still takes up a
    calibration another process (`rescue calibrate`) writes, or its removal."""
    import dataclasses

    default = await calibration_for(MODEL_NAME)
    assert default is not None
    assert "LFW" in default.source
    assert await calibration_for(MODEL_NAME) is default  # not read and parsed again
    station = dataclasses.replace(default, source="a station's labelled set", loose_bound=0.5)
    # A plain insert, as another process's save_calibration is to this one.
    await MatchCalibration.insert(
        MatchCalibration(model=MODEL_NAME, source=station.source, data=station.to_dict())
    )
    try:
        in_force = await calibration_for(MODEL_NAME)
        assert in_force == station
        assert await calibration_for(MODEL_NAME) is in_force
    finally:
        await MatchCalibration.delete(force=True)
    assert await calibration_for(MODEL_NAME) is default
