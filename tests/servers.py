"""Real servers for tests that need more than the in-process ASGI client.

Concurrency (several connections at once, the PostgreSQL pool, SQLite's file
locks) and the raw HTTP edge cases of the fuzz run are only what production
sees on a served app: :func:`serve` starts ``rescue serve`` (migrations, then
uvicorn) on a free port with the environment given, and stops it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from media.s3server import free_port

__all__ = ["BIN", "ROOT", "cli_token", "serve", "sqlite_env"]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def sqlite_env(data_dir: Path) -> dict[str, str]:
    """The embedded default's environment (SQLite file under ``data_dir``, the
    in-process worker), using the tests' S3 server under its own bucket."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "INPROCESS_WORKER", "BROKER_", "DB_POOL"))
    }
    env.update(
        DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:///{data_dir / 'rescue.db'}",
        S3_BUCKET=f"sqlite-{free_port()}",
        READ_CACHE="false",
    )
    return env


def cli_token(env: dict[str, str], name: str, role: str, station: str = "north") -> str:
    """A user made with ``rescue users create`` (the CLI's own database); its token."""
    out = subprocess.run(
        [str(BIN / "rescue"), "users", "create", name, "--role", role, "--station", station],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


@contextmanager
def serve(
    env: dict[str, str], log: Path, within: float = 120, *, cli: list[str] | None = None
) -> Iterator[str]:
    """``rescue serve`` with ``env`` on a free port; yields its base URL. ``cli``:
    how to call ``rescue`` (default the virtualenv's script)."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*(cli or [str(BIN / "rescue")]), "serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + within
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"server exited ({proc.returncode}):\n{log.read_text()[-4000:]}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not come up:\n{log.read_text()[-4000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
