"""Photos in the formats phones and scanners really send are processed like
their plain 8-bit JPEG equivalent (issue 11 item 16), through the real API and
worker. The variants are made in the test from a real face photo."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.integration.helpers import new_case, upload
from tests.support import OBAMA_A, photo


def _face() -> Image.Image:
    return Image.open(io.BytesIO(photo(OBAMA_A))).convert("RGB")


def _png16_grey() -> bytes:
    """16-bit greyscale PNG: the face's grey levels spread over 0..65535."""
    grey = np.asarray(_face().convert("L")).astype(np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")  # mode I;16
    return buf.getvalue()


def _png8_grey() -> bytes:
    buf = io.BytesIO()
    _face().convert("L").save(buf, format="PNG")
    return buf.getvalue()


def _mpo() -> bytes:
    """A multi-picture JPEG: the photo, then a second picture (as phones add)."""
    face = _face()
    buf = io.BytesIO()
    face.save(buf, format="MPO", save_all=True, append_images=[face.convert("L").convert("RGB")])
    return buf.getvalue()


def _heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    _face().save(buf, format="HEIF", quality=90)
    return buf.getvalue()


def test_16_bit_grey_decodes_like_8_bit():
    from media.images import decode_rgb

    wide = decode_rgb(_png16_grey(), max_pixels=50_000_000)
    narrow = decode_rgb(_png8_grey(), max_pixels=50_000_000)
    assert wide.dtype == np.uint8
    assert wide.shape == narrow.shape
    assert np.abs(wide.astype(int) - narrow.astype(int)).max() <= 1
    assert wide.std() > 20  # not clipped to a white sheet


@pytest.mark.parametrize(
    ("make", "magic", "media_type"),
    [
        (_png16_grey, b"\x89PNG", "image/png"),
        (_mpo, b"\xff\xd8", "image/jpeg"),
        (_heic, b"ftyp", "image/heic"),
    ],
)
async def test_phone_and_scanner_formats_are_processed_like_jpeg(
    client, staff, make, magic, media_type
):
    data = make()
    assert magic in data[:12]
    case = await new_case(client, staff)
    reference = await upload(client, staff, "case", case["id"], photo(OBAMA_A))
    assert reference["status"] == "processed"
    other = await new_case(client, staff)
    done = await upload(client, staff, "case", other["id"], data, filename="face.bin")
    assert done["media_type"] == media_type
    assert done["status"] == "processed", done
    assert len(done["faces"]) == len(reference["faces"]) == 1
    box, ref = done["faces"][0], reference["faces"][0]
    for side in ("top", "right", "bottom", "left"):
        assert abs(box[side] - ref[side]) <= 6, (side, box, ref)


async def test_an_unaccepted_format_says_how_to_send_the_photo(client, staff):
    buf = io.BytesIO()
    _face().save(buf, format="TIFF")
    case = await new_case(client, staff)
    response = await client.post(
        f"/api/cases/{case['id']}/photos",
        files={"file": ("scan.tif", buf.getvalue(), "image/tiff")},
        headers=staff,
    )
    assert response.status_code == 415
    body = response.json()
    assert "JPEG" in body["detail"]
    assert "image/heic" in body["accepted"]["media_types"]
