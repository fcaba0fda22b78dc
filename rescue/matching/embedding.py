"""Face detection and 128-d encodings with face_recognition (dlib).

Model: dlib's ResNet face-recognition model v1 (``dlib_face_recognition_resnet_model_v1``,
99.38% on LFW pairs per its model card) with the HOG frontal-face detector.

Speed levers, each measured in bench/embedding.py (figures in docs/performance.md):

1. **Detect small.** Faces are *detected* on a copy whose longest side is at most
   ``detect_max_side`` pixels, and the boxes are scaled back. A JPEG is decoded
   straight at a reduced scale for this (libjpeg DCT scaling, see
   :func:`media.images.decode_for_detection`): ~17 ms instead of ~125 ms at 12 MP.
2. **Not taken: grayscale detection.** Detecting on a grayscale copy is ~1.5×
   faster (dlib's HOG takes the strongest of three colour gradients per pixel),
   but on the 1,892 LFW photos it lost the only face of 3 photos and a second
   face on 9 more (measured 2026-11-29); recall matters more than speed here.
3. **Encode from a crop.** Encoding one face costs ~75 ms on a 12 MP picture
   against a few ms on a crop around the face (dlib's Python binding handles the
   whole array it is given). Each face is encoded from a crop that keeps a margin
   of one face width on every side, beyond every pixel the landmark predictor and
   the chip extraction read: the encoding is bit-identical (tests/unit/test_embedding.py).
4. **Encode at the resolution the chip needs.** A face at least
   ``ENCODE_FULL_BELOW`` pixels wide in the reduced decode is encoded from it (its
   chip is downsampled either way); a smaller face is encoded from the original,
   decoded at full resolution only then.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import numpy as np
from PIL import Image

from media.images import DecodedImage

__all__ = ["ENCODE_FULL_BELOW", "MODEL_NAME", "DetectedFace", "detect_and_encode"]

MODEL_NAME = "dlib_face_recognition_resnet_model_v1+hog"

#: A face narrower than this (pixels of the reduced decode) is encoded from the
#: full-resolution original. dlib's chip is 150×150 for a face region padded by
#: 25% per side (``get_face_chip_details``, padding 0.25), so a face of 150 px or
#: more is downsampled into the chip from either source.
ENCODE_FULL_BELOW = 150

#: face_recognition shares one dlib detector, shape predictor and encoder per
#: process, and dlib crashes (SIGSEGV, seen in the e2e test) when two threads use
#: them at once. Calls are serialised here; scale out with worker *processes*.
_DLIB_LOCK = threading.Lock()

Box = tuple[int, int, int, int]  # top, right, bottom, left


@cache
def _models() -> ModuleType:
    """``face_recognition``, imported on first use: importing it loads dlib's models
    (~115 MB, 1-25 s depending on load), which API processes never need; only the
    workers that detect faces pay for them (tests/integration/test_ops_start.py)."""
    import face_recognition

    return face_recognition


@dataclass(frozen=True)
class DetectedFace:
    """A face box in pixels of the upright original and its encoding (shape (128,), float64)."""

    top: int
    right: int
    bottom: int
    left: int
    encoding: np.ndarray


def _detection_copy(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Copy of ``rgb`` with its longest side ≤ ``max_side``, and its scale to ``rgb``."""
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb, 1.0
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)), scale


def _encode(rgb: np.ndarray, box: Box) -> np.ndarray:
    """Encoding of the face at ``box`` (pixels of ``rgb``), computed on a crop."""
    top, right, bottom, left = box
    margin = max(right - left, bottom - top)
    height, width = rgb.shape[:2]
    y0, x0 = max(0, top - margin), max(0, left - margin)
    crop = np.ascontiguousarray(
        rgb[y0 : min(height, bottom + margin), x0 : min(width, right + margin)]
    )
    local = (top - y0, right - x0, bottom - y0, left - x0)
    with _DLIB_LOCK:
        (encoding,) = _models().face_encodings(crop, known_face_locations=[local])
    return np.asarray(encoding, dtype=np.float64)


def _scaled(box: Box, sx: float, sy: float, width: int, height: int) -> Box:
    top, right, bottom, left = box
    return (
        max(0, round(top * sy)),
        min(width, round(right * sx)),
        min(height, round(bottom * sy)),
        max(0, round(left * sx)),
    )


def _locate(rgb: np.ndarray, max_side: int, upsample: int) -> list[Box]:
    """Face boxes in pixels of ``rgb``, detected on a copy at most ``max_side`` wide."""
    small, scale = _detection_copy(rgb, max_side)
    with _DLIB_LOCK:
        found = _models().face_locations(small, number_of_times_to_upsample=upsample)
    height, width = rgb.shape[:2]
    return [_scaled(box, 1 / scale, 1 / scale, width, height) for box in found]


def detect_and_encode(
    image: DecodedImage | np.ndarray,
    *,
    detect_max_side: int = 1280,
    upsample: int = 1,
    retry_factor: int = 2,
) -> list[DetectedFace]:
    """Find every face in ``image`` and encode each.

    Args:
        image: a :class:`~media.images.DecodedImage` (from
            :func:`~media.images.decode_for_detection`) or an upright
            H×W×3 uint8 array at full resolution.
        detect_max_side: longest side, in pixels, of the copy faces are detected on
            (``DETECT_MAX_SIDE``; chosen from the small-face bench). With
            ``upsample`` 1, faces from about ``longest side / 32`` wide are found.
        upsample: dlib's ``number_of_times_to_upsample`` (each doubles the copy
            before detection; HOG finds faces from ~80 px of the upsampled copy).
        retry_factor: when no face is found and the original is larger than
            ``detect_max_side``, detection runs once more on a copy
            ``retry_factor`` times larger (capped at full resolution), so that a
            photo whose only face is small is not reported faceless; 1 disables
            it. It costs only photos with no face at all.

    Returns:
        One :class:`DetectedFace` per face, boxes in pixels of the upright
        original, in detector order; empty if none.

    Raises:
        media.images.ImageRejected: the original cannot be decoded at full
            resolution when a small face, or the retry, needs it.
    """
    decoded = image if isinstance(image, DecodedImage) else DecodedImage.from_array(image)
    source = decoded.rgb
    boxes = _locate(source, detect_max_side, upsample)
    if not boxes and retry_factor > 1 and max(decoded.full_size) > detect_max_side:
        source = decoded.full_rgb()
        boxes = _locate(source, detect_max_side * retry_factor, upsample)
    full_width, full_height = decoded.full_size
    height, width = source.shape[:2]
    sx, sy = full_width / width, full_height / height
    faces = []
    for local in boxes:
        original = _scaled(local, sx, sy, full_width, full_height)
        if (sx, sy) != (1.0, 1.0) and local[1] - local[3] < ENCODE_FULL_BELOW:
            encoding = _encode(decoded.full_rgb(), original)
        else:
            encoding = _encode(source, local)
        faces.append(DetectedFace(*original, encoding=encoding))
    return faces
