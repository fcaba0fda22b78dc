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
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests import preflight

_state: dict[str, Any] = {}


def _xdist_controller(config: pytest.Config) -> bool:
    """True in the process that only hands tests to ``-n`` workers (pytest-xdist):
    each worker starts services of its own; this one starts none."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_controller(config):
        return
    issues = preflight.problems()
    if issues:
        raise pytest.UsageError("\n".join(issues))
    from rescue.devservices import DevServices

    services = DevServices(pg_admin_url=preflight.pg_url(), redis_url=preflight.redis_url())
    _state["services"] = services
    # The test client runs the app on its own event loop; a pool would be bound to
    # it. The e2e tests run the real server with a pool.
    os.environ.update(services.start(DB_POOL_MAX="0"))
    _state["worker"] = services.start_worker(processes=1, threads=2)


def pytest_unconfigure(config: pytest.Config) -> None:
    if "services" in _state:
        _state["services"].stop()


def worker_log() -> str:
    return str(_state["services"].log())


def worker_alive() -> bool:
    return _state["worker"].poll() is None


@pytest.fixture(autouse=True)
async def clean_tables() -> AsyncIterator[None]:
    """Each test starts with empty tables (ids keep rising across tests)."""
    from rescue.piccolo_app import APP_CONFIG

    names = ", ".join(f'"{t._meta.tablename}"' for t in APP_CONFIG.table_classes)
    # The real worker may still be finishing a photo an earlier test uploaded; its
    # row locks can deadlock with TRUNCATE's table locks. PostgreSQL then aborts one
    # side; if that is the TRUNCATE, it is simply run again (the worker's update of a
    # truncated row is harmless).
    from asyncpg.exceptions import DeadlockDetectedError

    for attempt in range(5):
        try:
            await APP_CONFIG.table_classes[0]._meta.db.run_ddl(f"TRUNCATE {names} CASCADE")
            return
        except DeadlockDetectedError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(params=["native", "numpy"])
def scan_implementation(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The gallery's scan on the native kernel, then on the numpy fallback (a test
    module that uses it runs every test on both; rescue.matching.scan)."""
    from rescue.matching import scan

    if request.param == "numpy":
        monkeypatch.setattr(scan, "_LIB", None)
    else:
        assert scan.native(), "the scan kernel is not built: run make install"
    return str(request.param)


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[Any]:
    """An HTTP client on the app (lifespan run: PostgreSQL pool, object store)."""
    from litestar.testing import AsyncTestClient

    from rescue.app import create_app

    async with AsyncTestClient(app=create_app()) as test_client:
        # A machine client that reads English messages; tests of the default
        # (zh_CN) language send their own Accept-Language.
        test_client.headers["Accept-Language"] = "en"
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
    """Poll GET /api/photos/{id} until it leaves ``pending`` (the real worker processes it).
    A photo becomes ``processed`` only after its matching, so its candidates are
    listed by then (rescue.matching.services.process_photo)."""
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
