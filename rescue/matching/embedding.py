"""Face detection and 128-d encodings with face_recognition (dlib).

Model: dlib's ResNet face-recognition model v1 (``dlib_face_recognition_resnet_model_v1``,
99.38% on LFW pairs per its model card) with the HOG frontal-face detector.

Speed lever (measured in bench/embedding.py): faces are *detected* on a copy
downscaled so that its longest side is at most ``detect_max_side`` pixels, and
the boxes are scaled back; landmarks and encodings are computed on the
full-resolution image, so encodings keep the original's detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import face_recognition
import numpy as np
from PIL import Image

__all__ = ["MODEL_NAME", "DetectedFace", "detect_and_encode"]

MODEL_NAME = "dlib_face_recognition_resnet_model_v1+hog"


@dataclass(frozen=True)
class DetectedFace:
    """A face box in pixels of the upright image and its encoding (shape (128,), float64)."""

    top: int
    right: int
    bottom: int
    left: int
    encoding: np.ndarray


def _downscaled(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    height, width = rgb.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return rgb, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(small), scale


def detect_and_encode(
    rgb: np.ndarray, *, detect_max_side: int = 1600, upsample: int = 1
) -> list[DetectedFace]:
    """Find every face in ``rgb`` (H×W×3 uint8, upright) and encode each.

    Returns:
        One :class:`DetectedFace` per face, in detector order; empty if none.
    """
    small, scale = _downscaled(rgb, detect_max_side)
    boxes = face_recognition.face_locations(small, number_of_times_to_upsample=upsample)
    if scale != 1.0:
        height, width = rgb.shape[:2]
        boxes = [
            (
                max(0, round(top / scale)),
                min(width, round(right / scale)),
                min(height, round(bottom / scale)),
                max(0, round(left / scale)),
            )
            for top, right, bottom, left in boxes
        ]
    if not boxes:
        return []
    encodings = face_recognition.face_encodings(rgb, known_face_locations=boxes)
    return [
        DetectedFace(top, right, bottom, left, np.asarray(encoding, dtype=np.float64))
        for (top, right, bottom, left), encoding in zip(boxes, encodings, strict=True)
    ]
