"""How the service presents a station and its public address (issue 12 trial):
the poster's QR code carries PUBLIC_BASE_URL, and the station appears by its
name (STATION_NAMES) on the poster, the handover sheet and the public page."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from PIL import Image

from tests.browser.test_workbench import _logged_in

BASE = "https://xunqin.example.gov.cn"
NAMES = (
    '{"north": {"name": "北区救助管理站", "contact": "010-87654321"},'
    ' "south": {"name": "南县救助管理站"}}'
)


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from rescue.settings import get_settings

    monkeypatch.setenv("PUBLIC_BASE_URL", BASE + "/")
    monkeypatch.setenv("STATION_NAMES", NAMES)
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("PUBLIC_BASE_URL")
    monkeypatch.delenv("STATION_NAMES")
    get_settings.cache_clear()


def _pdf_text(data: bytes, tmp: Path) -> str:
    path = tmp / "doc.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _qr_modules(data: bytes, tmp: Path) -> list[list[bool]]:
    """The QR code printed at the poster's bottom right, read module by module
    from the page rendered at 400 dpi (poppler)."""
    path = tmp / "poster.pdf"
    path.write_bytes(data)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "400", "-singlefile", str(path), str(tmp / "poster")],
        check=True,
    )
    gray = Image.open(tmp / "poster.png").convert("L")
    width, height = gray.size
    box = (int(width * 0.5), int(height * 0.55), width, height)
    region = gray.crop(box)
    pixels = region.load()
    w, h = region.size
    dark = [[pixels[x, y] < 128 for x in range(w)] for y in range(h)]
    top = next(y for y in range(h) if any(dark[y]))
    # The first dark rows are the tops of the two upper finder patterns.
    cols = [x for y in range(top, top + 3) for x in range(w) if dark[y][x]]
    left, right = min(cols), max(cols)
    return [
        [
            dark[top + int((r + 0.5) * (right - left + 1) / n)][
                left + int((c + 0.5) * (right - left + 1) / n)
            ]
            for c in range(n)
        ]
        for n in [_side(right - left + 1, dark, top, left)]
        for r in range(n)
    ]


def _side(size: int, dark: list[list[bool]], top: int, left: int) -> int:
    """Modules per side: the finder pattern's top row is 7 modules wide."""
    run = 0
    while dark[top][left + run]:
        run += 1
    return round(size / (run / 7))


async def _case(announce: bool) -> tuple[int, int | None]:
    """A case of station north (and its published announcement's id)."""
    from rescue.announcements.schemas import AnnouncementIn
    from rescue.announcements.services import publish
    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import create_case
    from rescue.users.services import Principal
    from rescue.users.tables import Role

    by = Principal(user_id=0, username="setup", role=Role.station_staff, station="north")
    case = await create_case(data=CaseCreate(estimated_age=60, found_place="G318 国道路边"), by=by)
    if not announce:
        return case.id, None
    out = await publish(case_id=case.id, data=AnnouncementIn(found_place="城西区 G318 附近"), by=by)
    return case.id, out.id


async def test_poster_qr_carries_public_base_url_and_the_station_name(page, site, tmp_path):
    case_id, public_id = await _case(announce=True)
    await _logged_in(page)
    poster = await page.request.get(f"/cases/{case_id}/announcement/poster.pdf")
    assert poster.status == 200
    content = await poster.body()
    url = f"{BASE}/public/announcements/{public_id}"
    text = _pdf_text(content, tmp_path)
    assert url in "".join(text.split())  # printed under the QR, wrapped
    assert "北区救助管理站" in text
    assert "010-87654321" in text  # the station's contact when the notice gives none
    expected = [[bool(v) for v in row] for row in segno.make(url, error="m").matrix]
    assert _qr_modules(content, tmp_path) == expected
    # The case page and the public page name the station too.
    await page.goto(f"/cases/{case_id}")
    assert await page.inner_text("#details [data-field=station]") == "北区救助管理站"
    assert "北区救助管理站" in await page.inner_text("#placements")  # in the station
    assert await page.locator("#qr-local-warning").count() == 0
    sheet = await page.request.get(f"/cases/{case_id}/handover-sheet.pdf")
    text = _pdf_text(await sheet.body(), tmp_path)
    assert "北区救助管理站" in text
    assert "010-87654321" in text
    for party in ("亲属", "流出地救助站", "公安机关", "未成年人救助保护机构"):
        assert party in "".join(text.split()), (party, text)
    assert "南县救助管理站" not in text  # no plan: all blank
    assert "☑" not in text
    # A return plan that names the destination station: the sheet ticks it, by name.
    from datetime import date

    from rescue.escorts.tables import ReturnPlan

    await ReturnPlan.insert(
        ReturnPlan(
            case=case_id,
            destination="南县",
            destination_station="south",
            transport="汽车",
            planned_on=date(2026, 12, 3),
        )
    )
    sheet = await page.request.get(f"/cases/{case_id}/handover-sheet.pdf")
    planned = "".join(_pdf_text(await sheet.body(), tmp_path).split())
    assert "☑流出地救助站：南县救助管理站" in planned, planned
    await page.goto(f"/family/announcements/{public_id}")
    assert "北区救助管理站" in await page.inner_text("main")


async def test_without_public_base_url_the_case_page_warns(page):
    case_id, _public_id = await _case(announce=True)
    await _logged_in(page)
    await page.goto(f"/cases/{case_id}")
    assert "PUBLIC_BASE_URL" in await page.inner_text("#qr-local-warning")
