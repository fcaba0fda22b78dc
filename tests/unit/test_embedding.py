"""The service's photo-to-embeddings path against face_recognition on the full image."""

from __future__ import annotations

import io

import face_recognition
import numpy as np
import pytest
from PIL import Image

from media.images import decode_for_detection, decode_rgb
from rescue.matching import embedding
from rescue.matching.embedding import detect_and_encode
from tests.support import OBAMA_A, photo

REAL_12MP = "deepface_dataset/img49.jpg"  # 4352×2903, one face (labels.csv)


def _jpeg(image: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=92, **kwargs)
    return buf.getvalue()


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    top, right, bottom, left = max(a[0], b[0]), min(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    area = (a[1] - a[3]) * (a[2] - a[0]) + (b[1] - b[3]) * (b[2] - b[0])
    return inter / (area - inter)


def test_large_jpeg_is_decoded_at_a_reduced_scale_no_smaller_than_asked():
    data = photo(REAL_12MP)
    decoded = decode_for_detection(data, max_pixels=10**8, min_side=1600)
    assert decoded.full_size == (4352, 2903)
    assert decoded.reduced
    assert max(decoded.rgb.shape[:2]) >= 1600
    assert max(decoded.rgb.shape[:2]) < 4352
    assert decoded.full_rgb().shape == (2903, 4352, 3)


def test_small_or_non_jpeg_images_are_decoded_whole():
    data = photo(OBAMA_A)
    decoded = decode_for_detection(data, max_pixels=10**8, min_side=1600)
    assert not decoded.reduced
    assert np.array_equal(decoded.rgb, decode_rgb(data, max_pixels=10**8))
    buf = io.BytesIO()
    Image.new("RGB", (3000, 2000)).save(buf, format="PNG")
    assert decode_for_detection(buf.getvalue(), max_pixels=10**8, min_side=1000).scale == (1, 1)


def test_reduced_decode_keeps_exif_orientation_and_full_size():
    image = Image.new("RGB", (4000, 2000), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 400, 2000))  # blue stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = decode_for_detection(
        _jpeg(image, exif=exif.tobytes()), max_pixels=10**8, min_side=1000
    )
    assert decoded.full_size == (2000, 4000)
    assert decoded.rgb.shape[:2] == (1000, 500)
    assert decoded.rgb[10, 250, 2] > 200  # the stripe is at the top, as displayed


def test_12mp_photo_gives_the_full_resolution_face_and_a_matching_encoding():
    data = photo(REAL_12MP)
    rgb = decode_rgb(data, max_pixels=10**8)
    reference_box = face_recognition.face_locations(rgb[::4, ::4].copy(), 1)[0]
    faces = detect_and_encode(decode_for_detection(data, max_pixels=10**8, min_side=1600))
    assert len(faces) == 1
    face = faces[0]
    box = (face.top, face.right, face.bottom, face.left)
    assert _iou(box, tuple(4 * v for v in reference_box)) >= 0.5
    (full,) = face_recognition.face_encodings(rgb, [box])
    assert face.encoding.shape == (128,)
    # the same face encoded from the reduced decode: well inside the same identity
    assert np.linalg.norm(face.encoding - full) < 0.15


def test_crop_encoding_is_identical_to_whole_image_encoding():
    # a face far larger than the 150 px chip, so dlib downsamples through its pyramid
    source = Image.open(io.BytesIO(photo(OBAMA_A))).convert("RGB")
    rgb = np.asarray(source.resize((source.width * 5 // 2, source.height * 5 // 2)))
    canvas = np.full((3300, 2600, 3), 120, dtype=np.uint8)
    canvas[333 : 333 + rgb.shape[0], 117 : 117 + rgb.shape[1]] = rgb
    (face,) = detect_and_encode(canvas)
    box = (face.top, face.right, face.bottom, face.left)
    (whole,) = face_recognition.face_encodings(canvas, [box])
    assert np.array_equal(face.encoding, whole)


def test_small_face_is_encoded_from_the_full_resolution_original(monkeypatch):
    rgb = decode_rgb(photo(OBAMA_A), max_pixels=10**8)
    canvas = Image.new("RGB", (4000, 3000), (118, 128, 120))
    face_image = Image.fromarray(rgb)
    face_image = face_image.resize((face_image.width * 2 // 3, face_image.height * 2 // 3))
    canvas.paste(face_image, (1800, 1200))
    decoded = decode_for_detection(_jpeg(canvas), max_pixels=10**8, min_side=1600)
    assert decoded.reduced
    full_decodes = []
    original = type(decoded).full_rgb

    def counted(self):  # type: ignore[no-untyped-def]
        full_decodes.append(1)
        return original(self)

    monkeypatch.setattr(type(decoded), "full_rgb", counted)
    faces = detect_and_encode(decoded)
    assert len(faces) == 1
    width_in_reduced = (faces[0].right - faces[0].left) * decoded.rgb.shape[1] / 4000
    assert width_in_reduced < embedding.ENCODE_FULL_BELOW
    assert full_decodes, "a small face must be encoded from the original"


@pytest.mark.parametrize("max_side", [400, 800])
def test_no_face_gives_nothing(max_side: int):
    blank = _jpeg(Image.new("RGB", (3000, 2000), (200, 180, 160)))
    assert (
        detect_and_encode(
            decode_for_detection(blank, max_pixels=10**8, min_side=max_side),
            detect_max_side=max_side,
        )
        == []
    )


def _lone_small_face(width: int) -> bytes:
    """A 4000×3000 JPEG whose only face is ``width`` px wide."""
    source = Image.open(io.BytesIO(photo(OBAMA_A))).convert("RGB")
    _, right, _, left = face_recognition.face_locations(np.asarray(source))[0]
    factor = width / (right - left)
    face = source.resize((round(source.width * factor), round(source.height * factor)))
    canvas = Image.new("RGB", (4000, 3000), (118, 128, 120))
    canvas.paste(face, (2100, 1400))
    return _jpeg(canvas)


def test_photo_whose_only_face_is_small_is_retried_at_a_larger_side():
    data = _lone_small_face(56)  # below what a 1280 px copy can show (~100 px)
    decoded = decode_for_detection(data, max_pixels=10**8, min_side=1280)
    assert detect_and_encode(decoded, detect_max_side=1280, retry_factor=1) == []
    faces = detect_and_encode(decoded, detect_max_side=1280, retry_factor=2)
    assert len(faces) == 1
    assert 2100 < faces[0].left < 2100 + 160
