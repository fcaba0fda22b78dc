"""Test set-up on the real services.

Before any test module imports the app, :func:`pytest_configure`:
- creates a fresh PostgreSQL database for this run and migrates it;
- starts a SeaweedFS S3 server (``weed``, with access keys enforced) on free ports;
- points Dramatiq at the real Redis under a per-run namespace and starts a real
  ``dramatiq`` worker process.
Everything is torn down in :func:`pytest_unconfigure`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest

from tests import preflight

ROOT = Path(__file__).resolve().parents[1]
_state: dict[str, Any] = {}


def _with_db(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(preflight.pg_url())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pytest_configure(config: pytest.Config) -> None:
    issues = preflight.problems()
    if issues:
        raise pytest.UsageError("\n".join(issues))
    run_id = secrets.token_hex(4)
    tmp = Path(tempfile.mkdtemp(prefix=f"rescue-test-{run_id}-"))
    db_name = f"rescue_test_{run_id}"
    asyncio.run(_admin(f'CREATE DATABASE "{db_name}"'))
    _state.update(tmp=tmp, db_name=db_name)

    from media.s3server import EmbeddedS3, free_port

    s3 = EmbeddedS3(
        data_dir=tmp / "s3",
        access_key=f"test-{run_id}",
        secret_key=secrets.token_hex(16),
        s3_port=free_port(),
    )
    s3.start()
    _state["s3"] = s3
    os.environ.update(
        {
            "DATA_DIR": str(tmp / "data"),
            "DATABASE_URL": _with_db(preflight.pg_url(), db_name),
            "S3_ENDPOINT": s3.endpoint,
            "S3_ACCESS_KEY": s3.access_key,
            "S3_SECRET_KEY": s3.secret_key,
            "S3_BUCKET": "rescue-test",
            "REDIS_URL": preflight.redis_url(),
            "BROKER_NAMESPACE": f"rescue-test-{run_id}",
            "INPROCESS_WORKER": "false",
            # The test client runs the app on its own event loop; a pool would be
            # bound to it. The e2e tests run the real server with a pool.
            "DB_POOL_MAX": "0",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "rescue.cli", "migrate"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115 - closed in unconfigure
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dramatiq")),
            "workers.broker",
            "workers.actors",
            "--processes",
            "1",
            "--threads",
            "2",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _state.update(worker=worker, worker_log=log)


def pytest_unconfigure(config: pytest.Config) -> None:
    worker = _state.get("worker")
    if worker is not None:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        _state["worker_log"].close()
    if "s3" in _state:
        _state["s3"].stop()
    if "db_name" in _state:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{_state["db_name"]}" WITH (FORCE)'))
    if "tmp" in _state:
        import shutil

        shutil.rmtree(_state["tmp"], ignore_errors=True)


def worker_log() -> str:
    path = _state["tmp"] / "worker.log"
    return path.read_text(errors="replace")[-5000:] if path.exists() else ""


def worker_alive() -> bool:
    return _state["worker"].poll() is None


@pytest.fixture(autouse=True)
async def clean_tables() -> AsyncIterator[None]:
    """Each test starts with empty tables (ids keep rising across tests)."""
    from rescue.piccolo_app import APP_CONFIG

    names = ", ".join(f'"{t._meta.tablename}"' for t in APP_CONFIG.table_classes)
    await APP_CONFIG.table_classes[0]._meta.db.run_ddl(f"TRUNCATE {names} CASCADE")
    return


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[Any]:
    """An HTTP client on the app (lifespan run: PostgreSQL pool, object store)."""
    from litestar.testing import AsyncTestClient

    from rescue.app import create_app

    async with AsyncTestClient(app=create_app()) as test_client:
        yield test_client


async def make_token(role: str, station: str = "north") -> str:
    from rescue.settings import get_settings
    from rescue.users.services import create_user, issue_token

    user_id = await create_user(
        username=f"{role}-{secrets.token_hex(3)}", role=role, station=station
    )
    return await issue_token(user_id=user_id, ttl_days=get_settings().token_ttl_days)


@pytest.fixture
async def staff() -> dict[str, str]:
    """Authorization header of a station_staff user."""
    return {"Authorization": f"Bearer {await make_token('station_staff')}"}


@pytest.fixture
async def police() -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token('police_liaison')}"}


@pytest.fixture
async def reviewer() -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token('reviewer')}"}


@pytest.fixture
async def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token('admin')}"}


async def wait_for_photo(
    client: Any, headers: dict[str, str], photo_id: int, within: float = 90
) -> dict[str, Any]:
    """Poll GET /api/photos/{id} until it leaves ``pending`` (the real worker processes it)."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/api/photos/{photo_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] != "pending":
            return body
        if time.monotonic() > deadline or not worker_alive():
            raise AssertionError(
                f"photo {photo_id} still pending after {within}s; worker log:\n{worker_log()}"
            )
        await asyncio.sleep(0.25)
