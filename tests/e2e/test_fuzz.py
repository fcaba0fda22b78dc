"""OpenAPI-driven fuzz run (schemathesis) against a served app on PostgreSQL
(issue 11): no 5xx, and no status code the OpenAPI document does not list.

The app is the real server (``rescue serve``: uvicorn, the PostgreSQL pool, the
tests' S3 and Redis), not the in-process ASGI client, so malformed multipart
bodies, odd headers and raw bytes reach the same HTTP parser as in production.
Each role's token is used for one run, over a few cases, notices and photos
that exist, so the guards, the station scope and the handlers behind them are
reached. The run is bounded (``FUZZ_MAX_EXAMPLES`` examples per operation and
phase, default 3) and reproducible (deterministic generation: no random seed,
no example database).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import BIN, ROOT, serve

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "3"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from media.s3server import free_port

    env = {k: v for k, v in os.environ.items() if k != "DB_POOL_MAX"}
    # Its own bucket: the objects the fuzzer stores (photos, documents,
    # evidence) must not become orphans in later tests' bucket.
    env["S3_BUCKET"] = f"fuzz-{free_port()}"
    logs = tmp_path_factory.mktemp("fuzz")
    with serve(env, logs / "serve.log") as base:
        yield base, logs


async def _seed(base: str, staff: str) -> dict[str, Any]:
    """A case, a notice and a case photo, so ids 1.. name real things."""
    from tests.support import no_face_jpeg

    headers = {"Authorization": f"Bearer {staff}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
        case = (
            await api.post(
                "/api/cases", json={"sex": "male", "estimated_age": 40, "found_place": "G318"}
            )
        ).json()
        notice = (
            await api.post("/api/notices", json={"name": "王五", "sex": "male", "source": "family"})
        ).json()
        photo = await api.post(
            f"/api/cases/{case['id']}/photos", files={"file": ("a.jpg", no_face_jpeg())}
        )
        assert photo.status_code == 202, photo.text
    return {"case": case["id"], "notice": notice["id"]}


#: (role, phases): the admin reaches nearly every route, so its run also takes
#: schemathesis' coverage phase (boundary and invalid values of every parameter);
#: the other roles' runs fuzz what their guards and station scope let through.
RUNS = [
    ("admin", "coverage,fuzzing"),
    ("station_staff", "fuzzing"),
    ("reviewer", "fuzzing"),
    ("police_liaison", "fuzzing"),
]
#: Operations left out: with the run's own token they would revoke it or
#: deactivate its user, and every later request would be 401 (both are covered
#: by tests/integration/test_auth.py and test_hostile_input.py).
EXCLUDED = ("token.revoke", "admin_user.deactivate")


@pytest.mark.parametrize(("role", "phases"), RUNS)
async def test_fuzz_finds_no_5xx_and_no_undocumented_status(served, role, phases):
    from tests.conftest import make_token

    base, logs = served
    token = await make_token(role)
    await _seed(base, await make_token("station_staff"))
    report = logs / f"{role}.txt"
    command = [
        str(BIN / "st"),
        "run",
        f"{base}/schema/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--phases",
        phases,
        *(arg for op in EXCLUDED for arg in ("--exclude-operation-id", op)),
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
        "--output-truncate",
        "true",
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        "Accept-Language: en",
    ]
    returncode = await asyncio.to_thread(_run, command, report)
    text = report.read_text()
    server_log = (logs / "serve.log").read_text()[-6000:]
    assert returncode == 0, f"{text[-12000:]}\n--- server log ---\n{server_log}"
    assert "No issues found" in text or "passed" in text.lower(), text[-4000:]


def _run(command: list[str], report: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    with open(report, "w") as out:
        return subprocess.run(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
