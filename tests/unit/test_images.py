"""Image sniffing, limits and EXIF orientation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from media.images import ImageRejected, decode_rgb, inspect_image
from tests.support import OBAMA_A, photo


def _jpeg_with_orientation(orientation: int) -> bytes:
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 100))  # blue stripe on the left
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_exif_orientation_is_applied():
    data = _jpeg_with_orientation(6)  # rotate 90° clockwise to display
    info = inspect_image(data, max_pixels=10**6)
    assert (info.width, info.height) == (100, 200)
    rgb = decode_rgb(data, max_pixels=10**6)
    assert rgb.shape == (200, 100, 3)
    top_row = rgb[5, :, :]
    assert top_row[50, 2] > 200  # the blue stripe is now at the top


def test_media_type_comes_from_bytes():
    info = inspect_image(photo(OBAMA_A), max_pixels=10**8)
    assert info.media_type == "image/jpeg"
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, format="WEBP")
    assert inspect_image(buf.getvalue(), max_pixels=100).media_type == "image/webp"


def test_truncated_rejected_even_after_face_recognition_import():
    import face_recognition  # noqa: F401  (sets Pillow's LOAD_TRUNCATED_IMAGES)

    with pytest.raises(ImageRejected) as err:
        inspect_image(photo(OBAMA_A)[:150_000], max_pixels=10**8)
    assert err.value.reason == "corrupt"


def test_pixel_limit():
    buf = io.BytesIO()
    Image.new("L", (100, 100)).save(buf, format="PNG")
    with pytest.raises(ImageRejected) as err:
        inspect_image(buf.getvalue(), max_pixels=9_999)
    assert err.value.reason == "too_many_pixels"
