"""End to end, as a user would: a separately started server, HTTP only.

1. Production shape: uvicorn serving ``rescue.app:create_app`` with a PostgreSQL
   pool, the tests' S3 server, and the real ``dramatiq`` worker; a token from the
   ``rescue users create`` CLI.
2. The embedded default (what ``make run`` starts): ``rescue serve`` with SQLite,
   its own S3 server and the in-process worker; data kept across a restart.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from media.s3server import free_port
from tests.conftest import worker_log
from tests.support import BIDEN, OBAMA_A, OBAMA_B, photo

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _wait_up(base: str, proc: subprocess.Popen[bytes], log: Path, within: float = 90) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server did not come up:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _token(env: dict[str, str], name: str, role: str = "station_staff") -> str:
    out = subprocess.run(
        [str(BIN / "rescue"), "users", "create", name, "--role", role, "--station", "north"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    token = out.stdout.strip()
    assert token, out.stderr
    assert "\n" not in token, out.stdout
    return token


def _chain(base: str, token: str) -> None:
    """Register, upload, wait, and read candidates, the way a station worker would."""
    h = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=h, timeout=30) as api:
        notice = api.post("/api/notices", json={"name": "赵六", "sex": "male", "source": "police"})
        assert notice.status_code == 201, notice.text
        nid = notice.json()["id"]
        other = api.post(
            "/api/notices", json={"name": "钱七", "sex": "male", "source": "family"}
        ).json()
        uploads = [
            api.post(f"/api/notices/{nid}/photos", files={"file": ("a.jpg", photo(OBAMA_B))}),
            api.post(f"/api/notices/{other['id']}/photos", files={"file": ("b.jpg", photo(BIDEN))}),
        ]
        case = api.post(
            "/api/cases", json={"sex": "male", "estimated_age": 55, "brought_by": "交警"}
        )
        assert case.status_code == 201, case.text
        cid = case.json()["id"]
        uploads.append(
            api.post(f"/api/cases/{cid}/photos", files={"file": ("c.jpg", photo(OBAMA_A))})
        )
        assert [u.status_code for u in uploads] == [202, 202, 202]
        deadline = time.monotonic() + 120
        for upload in uploads:
            while (
                status := api.get(f"/api/photos/{upload.json()['id']}").json()["status"]
            ) == "pending":
                assert time.monotonic() < deadline, f"photo not processed in time:\n{worker_log()}"
                time.sleep(0.3)
            assert status == "processed"
        found = api.get(f"/api/cases/{cid}/candidates").json()["items"]
        assert [c["notice_id"] for c in found] == [nid], worker_log()
        detail = api.get(f"/api/photos/{found[0]['case_photo_id']}").json()
        image = httpx.get(detail["url"], timeout=10)
        assert image.status_code == 200
        assert image.content == photo(OBAMA_A)
        assert api.get("/schema/openapi.json").status_code == 200


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    env.pop("DB_POOL_MAX", None)  # production default: a pool
    log = Path(env["DATA_DIR"]) / f"uvicorn-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "uvicorn"), "--factory", "rescue.app:create_app", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_up(base, proc, log)
            yield base, env
        finally:
            _stop(proc)


def test_chain_over_http_against_production_shape(server):
    base, env = server
    _chain(base, _token(env, "e2e-staff"))


def test_embedded_default_runs_the_chain_and_keeps_data(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("S3_", "DATABASE_URL", "REDIS_URL", "INPROCESS_WORKER", "BROKER_", "DB_POOL")
        )
    }
    port = free_port()
    env.update(DATA_DIR=str(tmp_path / "var"), PORT=str(port), S3_EMBEDDED_PORT=str(free_port()))
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"

    def start() -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(BIN / "rescue"), "serve"],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_up(base, proc, log, within=120)
        return proc

    proc = start()
    try:
        printed = log.read_text()
        assert f"{base}/api" in printed
        assert f"{base}/schema" in printed
        assert "rescue users create" in printed
        token = _token(env, "embedded-staff")
        _chain(base, token)
    finally:
        _stop(proc)
    assert (tmp_path / "var" / "rescue.db").exists()
    proc = start()
    try:
        cases = httpx.get(f"{base}/api/cases", headers={"Authorization": f"Bearer {token}"}).json()
        assert cases["total"] == 1
    finally:
        _stop(proc)
