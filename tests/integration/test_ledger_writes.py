"""A search's matches written to the candidate ledger in a few set-based statements
(rescue.matching.ledger.record_face_matches, issue 16): one row per pair, the
smallest distance kept, evidence refreshed, rejected pairs re-proposed only by new
photos, scores equal to a rescore; on PostgreSQL and on SQLite (the embedded default)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.ledger_scenario import scenario
from tests.servers import BIN, ROOT, sqlite_env


async def test_set_based_ledger_write_on_postgresql():
    await scenario()


def test_set_based_ledger_write_on_sqlite(tmp_path: Path):
    env = sqlite_env(tmp_path)
    subprocess.run(
        [str(BIN / "rescue"), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    run = subprocess.run(
        [sys.executable, "-m", "tests.integration.ledger_scenario"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ledger scenario passed" in run.stdout
