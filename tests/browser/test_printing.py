"""Publish the 寻亲公告 from the case page and print its A4 poster."""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

from tests.browser.conftest import ARTIFACTS
from tests.browser.pages import CasePage, IntakePage
from tests.browser.test_workbench import _logged_in
from tests.support import FACES_DIR, OBAMA_A


async def test_publish_and_print_the_poster(page):
    await _logged_in(page)
    intake = await (await IntakePage(page).open()).fill(
        estimated_age="50", found_place="G318 国道 K120 路边"
    )
    await intake.take_photo(str(FACES_DIR / OBAMA_A))
    await intake.submit()
    case = CasePage(page)
    await case.wait_for_photos_processed()
    async with page.expect_navigation():
        await page.click("#publish-announcement")
    await page.fill("#f-station_contact", "010-12345678")
    await page.fill("#f-physical_features", "左眉有疤")
    async with page.expect_navigation():
        await page.click("#announcement-form button[type=submit]")
    assert "已发布" in await page.inner_text("#announcement")
    public = await page.get_attribute("#announcement-public-page", "href")
    assert public.startswith("/family/announcements/")  # the families' page, not the JSON
    recorded = page.locator(f"tr[data-action] a[href='{public}']")  # 身份查询 lists it
    assert "寻亲公告" in await recorded.inner_text()
    assert "announcement " not in await page.inner_text("main")  # no English reference
    href = await page.get_attribute("#print-poster", "href")
    response = await page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "poster.pdf"
    pdf.write_bytes(await response.body())
    _check_poster(pdf)


def _check_poster(pdf: Path) -> None:
    """Text, embedded CJK font and photo of the poster (poppler-utils)."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "寻亲公告" in text
    assert "左眉有疤" in text
    assert "010-12345678" in text
    # The contact once, after a Chinese colon; no table label broken over two lines.
    assert text.count("010-12345678") == 1, text
    assert "联系救助站：010-12345678" in "".join(text.split()), text
    assert "联系救助站:" not in text
    layout = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True
    ).stdout
    for label in ("估计年龄", "体貌特征", "发现地点"):
        assert label in layout, layout
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    assert "CJK" in fonts, fonts  # the Chinese font is embedded
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True)
    assert len(images.stdout.strip().splitlines()) >= 3, images.stdout  # header + the photo
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-singlefile", str(pdf), str(ARTIFACTS / "poster")],
        check=True,
    )
    with Image.open(ARTIFACTS / "poster.png") as rendered:
        gray = rendered.convert("L")
        width, height = gray.size
        # The photo sits at the top left, under the title: not blank paper there.
        region = gray.crop(
            (int(width * 0.08), int(height * 0.2), int(width * 0.4), int(height * 0.45))
        )
        assert min(region.get_flattened_data()) < 100
        assert len(set(region.get_flattened_data())) > 50  # a photo, not a flat box
