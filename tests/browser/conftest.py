"""Browser tests: Debian's chromium (Playwright for Python) against the real app.

- ``live_server``: the app served by uvicorn in a thread of this process on a
  free port, against the test services of tests/conftest.py (PostgreSQL, S3,
  the Redis broker and its real worker). Being in-process, ``rescue.clock``'s
  ``frozen``/``advance`` move the server's clock too (session expiry, back-off).
- ``browser``: one headless chromium for the whole session (never a downloaded
  browser: ``/usr/bin/chromium``, installed by ``make install`` / ``.ci/run``).
- ``page``: a fresh browser context per test (Chinese, no cookies), with a
  screenshot of the last screen saved under ``tests/browser/artifacts/``
  (git-ignored) when the test ends.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of the real app served in a thread of this process."""
    import dataclasses

    import uvicorn

    from rescue.app import create_app
    from rescue.settings import get_settings

    # The read caches' change feed (rescue.changes) is one per process and bound to
    # the event loop that started it: leave it to the suite's own test client.
    settings = get_settings()
    settings = dataclasses.replace(
        settings, database=dataclasses.replace(settings.database, read_cache=False)
    )
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per session
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


@pytest.fixture
async def page(
    browser: Any, live_server: str, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=live_server, locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN"}
    )
    context.set_default_timeout(20_000)
    page = await context.new_page()
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        # The screenshot is an artifact for people to look at, not a check: a page
        # still navigating when the test ends (htmx polling that meets the session's
        # end once a test's frozen clock is released) must not fail the test.
        await page.screenshot(
            path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True, timeout=10_000
        )
    except PlaywrightError as exc:
        logging.getLogger(__name__).warning("no screenshot of %s: %s", request.node.name, exc)
    finally:
        await context.close()


async def make_user(
    role: str,
    station: str = "north",
    password: str = "correct horse battery",  # noqa: S107
) -> tuple[str, str]:
    """A user with a password; returns (username, password)."""
    import secrets

    from rescue.users.services import create_user

    username = f"{role}-{secrets.token_hex(3)}"
    await create_user(username=username, role=role, station=station, password=password)
    return username, password
