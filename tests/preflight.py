"""Check that the services the suite needs are reachable, and say how to fix it if not.

Run by ``make test`` before pytest. PostgreSQL: ``TEST_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Redis: ``TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``). The S3 server is started by the suite.
"""

from __future__ import annotations

import asyncio
import os
import sys

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def pg_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)


async def _check_pg(url: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(url), timeout=5)
    except Exception as exc:  # noqa: BLE001 - reported to the user
        return (
            f"PostgreSQL is not reachable at {url} ({exc.__class__.__name__}: {exc}).\n"
            "  Start it:   pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start\n"
            "  or point the tests at a server: TEST_DATABASE_URL=postgresql://USER[:PASS]@HOST:PORT/DB\n"
            "  (the user needs CREATEDB: each run creates and drops its own database)"
        )
    await conn.close()
    return None


def _check_redis(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except Exception as exc:  # noqa: BLE001 - reported to the user
        return (
            f"Redis is not reachable at {url} ({exc.__class__.__name__}: {exc}).\n"
            "  Start it:   redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''\n"
            "  or point the tests at a server: TEST_REDIS_URL=redis://HOST:PORT/DB"
        )
    return None


def problems() -> list[str]:
    found = [asyncio.run(_check_pg(pg_url())), _check_redis(redis_url())]
    import shutil

    if shutil.which("redis-server") is None:
        found.append(
            "redis-server is not installed; the fault tests (tests/faults) start and kill "
            "their own. Install it: apt-get install redis-server"
        )
    faces = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "faces", "labels.csv")
    if not os.path.exists(os.environ.get("FACES_DIR", "") + "/labels.csv") and not os.path.exists(
        faces
    ):
        found.append(
            "the labelled test photos are missing: expected ../shared/faces/labels.csv beside "
            "the checkout, or set FACES_DIR"
        )
    return [p for p in found if p]


def main() -> int:
    issues = problems()
    for issue in issues:
        print(f"make test: {issue}", file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
