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


async def test_the_import_page_names_the_limit_next_to_the_file_field(tmp_path):
    """``rescue serve`` with IMPORT_MAX_BYTES=700,000 (Litestar's limit of the
    import routes is then 2 x 700,000 + 2 MiB, fixed at start): an upload from
    the import page over the limit is answered 413 on the page itself, the limit
    named in Chinese next to the file field and the list name kept, whether a
    file is over it, the body is over two files' worth, or the body is beyond
    Litestar's own limit (announced by Content-Length: its files are not read).
    The CSRF check still holds (the token is read from the fields before the
    files), nothing is created, and the API names the limit for such a body too."""
    import re

    import httpx

    from media.s3server import free_port
    from rescue.forms import FORM_OVERHEAD
    from rescue.imports.tables import ImportRun
    from tests.browser.conftest import make_user
    from tests.conftest import make_token
    from tests.servers import serve

    env = {k: v for k, v in os.environ.items() if k != "DB_POOL_MAX"}
    env.update(
        S3_BUCKET=f"import-limit-{free_port()}",
        IMPORT_MAX_BYTES=str(IMPORT_MAX),
        UPLOAD_MAX_BYTES=str(UPLOAD_MAX),
    )
    username, password = await make_user("station_staff")
    token = await make_token("station_staff")
    data = csv_bytes(["Z-1,某甲,男,,,,,,,,a.jpg"], header=HEADER + ",照片")
    litestar_limit = 2 * IMPORT_MAX + 2 * FORM_OVERHEAD
    over_a_file = photos_zip(IMPORT_MAX)  # the body is under two files' worth
    over_the_reader = photos_zip(2 * IMPORT_MAX + FORM_OVERHEAD)
    over_litestar = photos_zip(litestar_limit + 1000)
    assert IMPORT_MAX < len(over_a_file) < len(over_the_reader) < litestar_limit
    assert litestar_limit < len(over_litestar)

    def files(zipped: bytes) -> dict[str, Any]:
        return {
            "file": ("list.csv", data, "text/csv"),
            "photos": ("photos.zip", zipped, "application/zip"),
        }

    zh = {"Accept-Language": "zh-CN"}
    with serve(env, tmp_path / "serve.log") as base:
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=zh) as page:
            await page.get("/login")
            csrf = page.cookies.get("rescue_csrf")
            assert csrf
            logged_in = await page.post(
                "/login",
                data={"username": username, "password": password, "_csrf_token": csrf},
            )
            assert logged_in.status_code == 303, logged_in.text[:300]
            for zipped, named in (
                (over_a_file, "上限为 700000"),
                (over_the_reader, "每个文件最多 700000 字节（IMPORT_MAX_BYTES）"),
                (over_litestar, "每个文件最多 700000 字节（IMPORT_MAX_BYTES）"),
            ):
                # As a browser sends the form: the token is its first field.
                answer = await page.post(
                    "/imports/",
                    files=files(zipped),
                    data={
                        "_csrf_token": csrf,
                        "list_kind": "police_missing",
                        "list_name": "十一月名单",
                    },
                )
                assert answer.status_code == 413, (len(zipped), answer.text[:500])
                error = re.search(r'id="e-file" role="alert">([^<]*)<', answer.text)
                assert error, answer.text[:2000]
                assert named in error.group(1), error.group(1)
                assert 'id="f-list_name" name="list_name" type="text" value="十一月名单"' in (
                    answer.text
                )
            # A forged token is refused before anything else, as on every form.
            forged = await page.post(
                "/imports/",
                files=files(over_litestar),
                data={"_csrf_token": "forged-token-value-1234567890", "list_kind": "x"},
            )
            assert forged.status_code == 403, forged.text[:300]
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=zh) as api:
            answer = await api.post(
                "/api/import-runs",
                files=files(over_litestar),
                data={"list_kind": "police_missing", "list_name": "十一月名单"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 413, answer.text[:300]
            assert "每个文件最多 700000 字节（IMPORT_MAX_BYTES）" in answer.json()["detail"]
            assert answer.json()["accepted"]["max_file_bytes"] == IMPORT_MAX
    assert await ImportRun.count() == 0
