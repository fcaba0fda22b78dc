"""A private copy of the running system for fault injection, started by the tests.

:class:`Stack` runs, on free ports and under one temporary folder:
- its own ``redis-server`` (no persistence: killing it loses every queued message),
- its own PostgreSQL database and SeaweedFS S3 server (``weed``), through
  :class:`rescue.devservices.DevServices`,
- the API under uvicorn (a PostgreSQL pool, as in production), a ``dramatiq``
  worker and the scheduler (``rescue retention schedule``), which sends the
  recovery sweep.

Bounds are set small (:data:`FAULT_ENV`) so that recovery fits the test time;
the tests state the bound they assert. Nothing here is mocked: the faults are
signals to real processes and ``pg_terminate_backend`` on real connections.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from media.s3server import free_port
from rescue.devservices import DevServices

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: Small recovery bounds for the suite (README "What bounds recovery").
FAULT_ENV = {
    "DB_POOL_MAX": "4",
    "READ_CACHE": "false",
    "S3_TIMEOUT_SECONDS": "2",
    "S3_RETRIES": "0",
    "BROKER_TIMEOUT_SECONDS": "1",
    "RECOVERY_SWEEP_SECONDS": "2",
    "PHOTO_REQUEUE_AFTER_SECONDS": "10",
    "ORPHAN_GRACE_SECONDS": "4",
    "PHOTO_MAX_ATTEMPTS": "5",
    "WORKER_HEARTBEAT_TIMEOUT_SECONDS": "5",
    "BROKER_MAINTENANCE_PER_MILLION": "100000",
    "RETRY_AFTER_SECONDS": "3",
    "dramatiq_worker_timeout": "200",
}


def _wait(predicate: Any, within: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not within {within:.0f} s")


@dataclass
class PrivateRedis:
    """A ``redis-server`` without persistence on a free port."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - child keeps it
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
            except redis.RedisError:
                return False

        _wait(up, 30, "redis-server answering")

    def kill(self) -> None:
        """SIGKILL: every queued message is lost (no persistence)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@dataclass
class Stack:
    pg_admin_url: str
    folder: Path = field(init=False)
    redis: PrivateRedis = field(init=False)
    services: DevServices = field(init=False)
    env: dict[str, str] = field(init=False, default_factory=dict)
    api: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    base: str = ""
    token: str = ""

    def start(self) -> None:
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix="rescue-faults-"))
        self.redis = PrivateRedis(self.folder)
        self.redis.start()
        self.services = DevServices(
            pg_admin_url=self.pg_admin_url, redis_url=self.redis.url, prefix="rescue-faults"
        )
        self.env = self.services.start(**FAULT_ENV)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.api = self.services.spawn(
            [
                str(BIN / "uvicorn"),
                "--factory",
                "rescue.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            "api.log",
        )
        self.start_worker()
        self.services.spawn([str(BIN / "rescue"), "retention", "schedule"], "scheduler.log")
        _wait(self._api_up, 90, "the API answering")
        out = subprocess.run(
            [
                str(BIN / "rescue"),
                "users",
                "create",
                "faults-staff",
                "--role",
                "station_staff",
                "--station",
                "north",
            ],
            env={**os.environ, **self.env},
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        self.token = out.stdout.strip().splitlines()[-1]

    def _api_up(self) -> bool:
        assert self.api is not None
        if self.api.poll() is not None:
            raise AssertionError(f"the API exited:\n{self.services.log('api.log')}")
        try:
            return httpx.get(f"{self.base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept-Language": "en"}

    # --- faults -------------------------------------------------------------------
    def start_worker(self) -> None:
        self.worker = self.services.start_worker(processes=1, threads=2)

    def kill_worker(self) -> None:
        """SIGKILL to the worker's process group (the dramatiq parent and its child)."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    @property
    def s3(self) -> Any:
        assert self.services.s3 is not None
        return self.services.s3

    def kill_s3(self) -> None:
        """SIGKILL the S3 server: connections are refused."""
        os.killpg(self.s3.process.pid, signal.SIGKILL)
        self.s3.process.wait()
        self.s3._log.close()
        self.s3._log = None
        self.s3.process = None

    def restart_s3(self) -> None:
        self.s3.start()

    def freeze_s3(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and never answered."""
        os.killpg(self.s3.process.pid, signal.SIGSTOP)

    def thaw_s3(self) -> None:
        os.killpg(self.s3.process.pid, signal.SIGCONT)

    async def terminate_connections(self) -> int:
        """``pg_terminate_backend`` on every connection to this stack's database
        (API pool, worker, scheduler). Returns how many were terminated."""
        import asyncpg

        conn = await asyncpg.connect(self.pg_admin_url)
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.services.db_name,
            )
        finally:
            await conn.close()
        return sum(1 for r in rows if r["ok"])

    # --- what is stored -----------------------------------------------------------
    def objects(self) -> set[str]:
        from minio import Minio

        client = Minio(
            self.s3.endpoint,
            access_key=self.env["S3_ACCESS_KEY"],
            secret_key=self.env["S3_SECRET_KEY"],
            secure=False,
        )
        return {
            str(o.object_name)
            for o in client.list_objects(self.env["S3_BUCKET"], prefix="photos/", recursive=True)
        }

    async def query(self, sql: str, *args: Any) -> list[Any]:
        import asyncpg

        conn = await asyncpg.connect(self.env["DATABASE_URL"])
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    def log(self, name: str, tail: int = 5000) -> str:
        return str(self.services.log(name, tail=tail))

    def stop(self) -> None:
        self.services.stop()
        self.redis.stop()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def jpeg_variant(index: int) -> bytes:
    """A small photo without a face, different bytes for each ``index``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((320, 240), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=80)
    return buf.getvalue()
