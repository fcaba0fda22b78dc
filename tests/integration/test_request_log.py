"""The one ``request`` log line per request (rescue.logs) and the request
metrics (rescue.metrics) name the status the client received, whoever answered:
the handler, a domain error's mapping (rescue.errors), or a middleware that
refused the request before the handler (authentication 401, CSRF 403, the form
reader's 413)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.integration.test_import_upload_limit import IMPORT_MAX, photos_zip, upload
from tests.integration.test_imports import headers_of


def _counts() -> dict[tuple[str, str, int], float]:
    """The request metrics: (method, route template, status) -> requests counted."""
    return {
        (s.labels["method"], s.labels["path"], int(s.labels["status_code"])): s.value
        for metric in REGISTRY.collect()
        if metric.name == "rescue_http_requests"
        for s in metric.samples
        if s.name == "rescue_http_requests_total"
    }


async def _answered_and_logged(caplog: pytest.LogCaptureFixture, call: Awaitable[Any]) -> Any:
    """The response of ``call``; asserts its one ``request`` line logs its status
    and the request metrics count it once, under that status."""
    caplog.clear()
    before = _counts()
    answer = await call
    after = _counts()
    lines = [r for r in caplog.records if r.name == "rescue.request"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    line = lines[0]
    assert line.status == answer.status_code, (line.route, answer.text[:300])
    counted = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    assert counted == {(line.method, line.route, answer.status_code): 1.0}
    # The answer also carries the request id, which that line's context holds.
    assert answer.headers.get("x-request-id"), answer.headers
    return answer


async def test_the_request_line_logs_the_status_the_client_received(
    client: Any, staff: dict[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    from rescue.settings import get_settings

    caplog.set_level(logging.INFO, logger="rescue.request")

    ok = await _answered_and_logged(caplog, client.get("/api/stations", headers=staff))
    assert ok.status_code == 200

    # A domain error (NotFound) raised by the handler's service.
    unknown = await _answered_and_logged(
        caplog, client.get("/api/cases/987654321/timeline", headers=staff)
    )
    assert unknown.status_code == 404

    # Refused by the authentication middleware.
    no_token = await _answered_and_logged(caplog, client.get("/api/stations"))
    assert no_token.status_code == 401

    # Refused by Litestar's CSRF middleware: a page form without its token.
    forged = await _answered_and_logged(
        caplog, client.post("/login", data={"username": "x", "password": "y"})
    )
    assert forged.status_code == 403

    # Refused by the form reader (rescue.forms) before the handler: an import
    # upload announced over its limit.
    monkeypatch.setenv("IMPORT_MAX_BYTES", str(IMPORT_MAX))
    get_settings.cache_clear()
    try:
        north = await headers_of("north")
        huge = await _answered_and_logged(
            caplog, upload(client, north, photos_zip(2 * IMPORT_MAX + (1 << 20)))
        )
    finally:
        monkeypatch.delenv("IMPORT_MAX_BYTES")
        get_settings.cache_clear()
    assert huge.status_code == 413, huge.text

    # A real failure is still a 500, and logged as one.
    async def broken() -> list[str]:
        raise RuntimeError("simulated failure")

    monkeypatch.setattr("rescue.stations.services.known_stations", broken)
    failed = await _answered_and_logged(caplog, client.get("/api/stations", headers=staff))
    assert failed.status_code == 500
