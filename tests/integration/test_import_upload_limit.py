"""Import uploads have their own size limit (IMPORT_MAX_BYTES), beyond
UPLOAD_MAX_BYTES, on the import routes only; files are spooled to disk."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.test_imports import HEADER, csv_bytes, headers_of

UPLOAD_MAX = 250_000  # a test photo is ~184 KB
IMPORT_MAX = 700_000


@pytest.fixture
async def small_limits(client: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The app's client with UPLOAD_MAX_BYTES=250,000 and IMPORT_MAX_BYTES=700,000
    (read per request; Litestar's own body limits are fixed when the app is made:
    test_litestar_takes_import_sized_bodies_on_the_import_routes_only)."""
    from rescue.settings import get_settings

    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(UPLOAD_MAX))
    monkeypatch.setenv("IMPORT_MAX_BYTES", str(IMPORT_MAX))
    get_settings.cache_clear()
    try:
        yield client
    finally:
        for name in ("UPLOAD_MAX_BYTES", "IMPORT_MAX_BYTES"):
            monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()


def photos_zip(padding: int) -> bytes:
    """A ZIP with one photo and ``padding`` bytes of incompressible filler."""
    from tests.support import OBAMA_B, photo

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("a.jpg", photo(OBAMA_B))
        z.writestr("filler.bin", os.urandom(padding))
    return buf.getvalue()


async def upload(client: Any, headers: dict[str, str], zipped: bytes) -> Any:
    data = csv_bytes(["Z-1,某甲,男,,,,,,,,a.jpg"], header=HEADER + ",照片")
    return await client.post(
        "/api/import-runs",
        files={
            "file": ("list.csv", data, "text/csv"),
            "photos": ("photos.zip", zipped, "application/zip"),
        },
        data={"list_kind": "police_missing", "list_name": "大名单"},
        headers=headers,
    )


async def test_a_photos_zip_over_the_upload_limit_is_taken_under_the_import_limit(
    small_limits,
):
    from tests.integration.helpers import new_case

    north = await headers_of("north")
    # Over UPLOAD_MAX_BYTES (and over 2 x UPLOAD_MAX_BYTES, another route's body limit).
    zipped = photos_zip(350_000)
    assert 2 * UPLOAD_MAX < len(zipped) < IMPORT_MAX
    accepted = await upload(small_limits, north, zipped)
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["valid_rows"], accepted.json()["error_rows"]) == (1, 0)

    # Other routes keep the upload limit: the same bytes as a photo are refused.
    case = await new_case(small_limits, north)
    photo = await small_limits.post(
        f"/api/cases/{case['id']}/photos",
        files={"file": ("big.jpg", zipped, "image/jpeg")},
        headers=north,
    )
    assert photo.status_code == 413

    # A ZIP over IMPORT_MAX_BYTES: 413 naming the limit.
    over = await upload(small_limits, north, photos_zip(IMPORT_MAX))
    assert over.status_code == 413, over.text
    assert str(IMPORT_MAX) in over.json()["detail"]

    # A body beyond what two such files can be is cut off while it arrives.
    huge = await upload(small_limits, north, photos_zip(2 * IMPORT_MAX + (1 << 20)))
    assert huge.status_code == 413, huge.text
    assert "IMPORT_MAX_BYTES" in huge.json()["detail"]
    assert str(IMPORT_MAX) in huge.json()["detail"]


def test_litestar_takes_import_sized_bodies_on_the_import_routes_only(monkeypatch):
    """Litestar's body limit: 2 x IMPORT_MAX_BYTES and a margin on the two routes
    that take an import upload (API and page), 2 x UPLOAD_MAX_BYTES elsewhere."""
    from rescue.app import create_app
    from rescue.forms import BODY_LIMIT, FORM_OVERHEAD
    from rescue.settings import get_settings

    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(UPLOAD_MAX))
    monkeypatch.setenv("IMPORT_MAX_BYTES", str(IMPORT_MAX))
    get_settings.cache_clear()
    try:
        app = create_app()
    finally:
        monkeypatch.delenv("UPLOAD_MAX_BYTES")
        monkeypatch.delenv("IMPORT_MAX_BYTES")
        get_settings.cache_clear()
    limits: dict[str, int | None] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if "POST" in getattr(handler, "http_methods", ()):
                limits[route.path] = handler.resolve_request_max_body_size()
                if handler.opt.get(BODY_LIMIT) == "import":
                    limits[route.path + " (import)"] = limits.pop(route.path)
    big = 2 * IMPORT_MAX + 2 * FORM_OVERHEAD
    assert {p: v for p, v in limits.items() if v == big} == {
        "/api/import-runs (import)": big,
        "/imports (import)": big,
    }
    assert {v for p, v in limits.items() if not p.endswith("(import)")} == {2 * UPLOAD_MAX}
