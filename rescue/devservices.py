"""Start the real back-end services for tests and benchmarks (never used in production).

One :class:`DevServices` gives a run its own PostgreSQL database (created, migrated,
dropped at the end), its own SeaweedFS S3 server (``media.s3server.EmbeddedS3``)
on free ports, a per-run Redis namespace for Dramatiq, and the environment that
points the service at all of them; :meth:`DevServices.start_worker` starts real
``dramatiq`` worker processes. Used by ``tests/conftest.py`` and ``bench/e2e.py``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlparse, urlunparse

from media.s3server import EmbeddedS3, free_port

__all__ = ["DevServices", "stop_process", "with_database"]

ROOT = Path(__file__).resolve().parents[1]


def with_database(url: str, name: str) -> str:
    """``url`` with its database name replaced by ``name``."""
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


async def _admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class DevServices:
    """A fresh database, an S3 server and a broker namespace for one run.

    Args:
        pg_admin_url: a PostgreSQL URL whose user may CREATE DATABASE.
        redis_url: the Redis server for the Dramatiq broker.
        prefix: names the temporary folder, database, bucket and Redis namespace.
    """

    pg_admin_url: str
    redis_url: str
    prefix: str = "rescue-test"
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    tmp: Path = field(init=False)
    db_name: str = field(init=False, default="")
    s3: EmbeddedS3 | None = field(init=False, default=None)
    env: dict[str, str] = field(init=False, default_factory=dict)
    processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = field(
        init=False, default_factory=list
    )

    def start(self, **extra_env: str) -> dict[str, str]:
        """Create the database, start S3, migrate. Returns the service environment.

        ``extra_env`` adds or overrides variables (e.g. ``DB_POOL_MAX="0"``). The
        caller applies the result to ``os.environ`` or passes it to subprocesses.
        """
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-{self.run_id}-"))
        self.db_name = f"{self.prefix.replace('-', '_')}_{self.run_id}"
        asyncio.run(_admin(self.pg_admin_url, f'CREATE DATABASE "{self.db_name}"'))
        self.s3 = EmbeddedS3(
            data_dir=self.tmp / "s3",
            access_key=f"{self.prefix}-{self.run_id}",
            secret_key=secrets.token_hex(16),
            s3_port=free_port(),
        )
        self.s3.start()
        self.env = {
            "DATA_DIR": str(self.tmp / "data"),
            "DATABASE_URL": with_database(self.pg_admin_url, self.db_name),
            "S3_ENDPOINT": self.s3.endpoint,
            "S3_ACCESS_KEY": self.s3.access_key,
            "S3_SECRET_KEY": self.s3.secret_key,
            "S3_BUCKET": self.prefix,
            "REDIS_URL": self.redis_url,
            "BROKER_NAMESPACE": f"{self.prefix}-{self.run_id}",
            "INPROCESS_WORKER": "false",
            **extra_env,
        }
        subprocess.run(
            [sys.executable, "-m", "rescue.cli", "migrate"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
        )
        return self.env

    def spawn(
        self, args: list[str], log_name: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Run ``args`` in the service environment (plus ``extra_env``), output to
        ``tmp/log_name``."""
        log = open(self.tmp / log_name, "ab")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((process, log))
        return process

    def start_worker(
        self,
        processes: int = 1,
        threads: int = 2,
        log_name: str = "worker.log",
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """A real ``dramatiq workers.broker workers.actors`` worker."""
        dramatiq = str(Path(sys.executable).with_name("dramatiq"))
        return self.spawn(
            [
                dramatiq,
                "workers.broker",
                "workers.actors",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
            ],
            log_name,
            extra_env,
        )

    def log(self, log_name: str = "worker.log", tail: int = 5000) -> str:
        path = self.tmp / log_name
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def stop_processes(self) -> None:
        """Stop the workers and other processes started with :meth:`spawn`."""
        for process, log in self.processes:
            stop_process(process)
            log.close()
        self.processes.clear()

    def stop(self) -> None:
        """Stop everything, drop the database, remove the temporary folder."""
        self.stop_processes()
        if self.s3 is not None:
            self.s3.stop()
        if self.db_name:
            asyncio.run(
                _admin(self.pg_admin_url, f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            )
        self._drop_broker_keys()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _drop_broker_keys(self) -> None:
        """Delete this run's Dramatiq keys (queues, heartbeats) from Redis."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}-{self.run_id}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass  # best effort: the keys are namespaced and harmless
        finally:
            client.close()
