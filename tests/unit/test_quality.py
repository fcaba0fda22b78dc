"""Face quality (rescue.matching.quality) on real photos, sharp and blurred."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from media.images import decode_for_detection
from rescue.matching.embedding import detect_and_encode
from rescue.matching.quality import MIN_WIDTH_PX, measure, of_detected
from tests.support import FACES_DIR, OBAMA_A


def _faces(data: bytes):
    decoded = decode_for_detection(data, max_pixels=50_000_000, min_side=1280)
    return [
        of_detected(decoded, (f.top, f.right, f.bottom, f.left)) for f in detect_and_encode(decoded)
    ]


def _blurred(rel: str, share_of_width: float) -> bytes:
    image = Image.open(FACES_DIR / rel).convert("RGB")
    out = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(share_of_width * image.width)).save(out, format="JPEG")
    return out.getvalue()


def test_a_sharp_frontal_face_is_fit_to_match():
    (quality,) = _faces((FACES_DIR / OBAMA_A).read_bytes())
    assert quality.retake == []
    assert quality.width_px > 200
    assert quality.sharpness > 500
    assert quality.yaw is not None
    assert abs(quality.yaw) < 0.1  # frontal


@pytest.mark.parametrize("share", [0.012, 0.018])
def test_a_blurred_face_is_found_but_flagged_for_a_retake(share):
    (quality,) = _faces(_blurred(OBAMA_A, share))
    assert quality.retake == ["blurred"]


def test_small_and_turned_faces_are_flagged():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)  # noisy: sharp
    small = measure(rgb, (10, 40, 40, 10), scale=1.0)
    assert small.retake == ["too_small"]
    assert measure(rgb, (10, 60, 60, 10), scale=MIN_WIDTH_PX / 50).retake == []
    profile = {
        "left_eye": [(20, 30), (24, 30)],
        "right_eye": [(30, 30), (34, 30)],
        "nose_tip": [(36, 45)],
    }
    turned = measure(rgb, (0, 100, 100, 0), landmarks=profile)
    assert turned.yaw == pytest.approx((36 - 27) / 10)
    assert turned.retake == ["turned_away"]
