"""Face quality: size, sharpness and pose of each detected face, and when to ask for a retake.

Recorded per face (``faces.quality``) when a photo is processed, shown on every
candidate beside the faces that gave its distance, and used to keep faces too poor
to match out of matching (``faces.retake``): their photo is marked for a retake
(``failure_reason``) instead of producing candidates nobody can trust.

Measures (all on the face box in pixels of the upright original):

- ``width_px``: the box width. dlib's encoder works on a 150 × 150 chip of the
  face plus 25 % padding; under :data:`MIN_WIDTH_PX` the chip is upsampled more
  than ~4× and holds little detail. (LFW thumbnails, faces ~60-70 px wide, still
  match at 98 % TAR per pair at 0.6: docs/accuracy.md; so the bound sits below.)
- ``sharpness``: variance of the 4-neighbour Laplacian of the face, grey, resized
  to 64 × 64 (the variance-of-Laplacian focus measure: Pech-Pacheco et al.,
  "Diatom autofocusing in brightfield microscopy", ICPR 2000). Under
  :data:`MIN_SHARPNESS` the face is flagged ``blurred``. Provisional: set by
  blurring real photos (tests/unit/test_quality.py): sharp faces measured 190 to
  1,300 (a 52 px LFW thumbnail face: 190), a Gaussian blur of σ = 1.2 % of the
  photo's width brought them to 21-62, σ = 1.8 % to 7-24, and dlib still found
  every face; not yet set from matching errors on real blurred photos.
- ``yaw``: horizontal offset of the nose tip from the midpoint of the eyes, in eye
  distances (dlib's 5-point landmarks): about 0 for a frontal face, ~0.5 at 45°.
  Over :data:`MAX_YAW` (beyond ~60°) the face is flagged ``turned_away``: the
  encoder is trained on near-frontal chips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["MAX_YAW", "MIN_SHARPNESS", "MIN_WIDTH_PX", "FaceQuality", "measure", "of_detected"]

MIN_WIDTH_PX = 40
MIN_SHARPNESS = 30.0
MAX_YAW = 0.6


@dataclass(frozen=True)
class FaceQuality:
    """Quality of one face; ``retake`` lists the reasons it is too poor to match."""

    width_px: int
    sharpness: float
    yaw: float | None
    retake: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sharpness(grey: np.ndarray) -> float:
    g = grey.astype(np.float64)
    lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def _yaw(landmarks: dict[str, list[tuple[int, int]]] | None) -> float | None:
    if not landmarks:
        return None
    try:
        left = np.mean(landmarks["left_eye"], axis=0)
        right = np.mean(landmarks["right_eye"], axis=0)
        nose = np.mean(landmarks["nose_tip"], axis=0)
    except KeyError:
        return None
    eyes = float(np.linalg.norm(right - left))
    if eyes <= 0:
        return None
    return float((nose[0] - (left[0] + right[0]) / 2) / eyes)


def measure(
    rgb: np.ndarray,
    box: tuple[int, int, int, int],
    *,
    scale: float = 1.0,
    landmarks: dict[str, list[tuple[int, int]]] | None = None,
) -> FaceQuality:
    """Quality of the face at ``box`` (top, right, bottom, left in pixels of ``rgb``).

    Args:
        rgb: the image the box refers to (H × W × 3 uint8).
        scale: pixels of the original per pixel of ``rgb`` (a reduced decode), for
            ``width_px``.
        landmarks: face_recognition's 5-point landmarks of this face (for ``yaw``).
    """
    top, right, bottom, left = box
    crop = rgb[max(0, top) : max(top + 1, bottom), max(0, left) : max(left + 1, right)]
    grey = np.asarray(
        Image.fromarray(np.ascontiguousarray(crop)).convert("L").resize((64, 64)),
        dtype=np.uint8,
    )
    width = round((right - left) * scale)
    sharpness = _sharpness(grey)
    yaw = _yaw(landmarks)
    reasons = []
    if width < MIN_WIDTH_PX:
        reasons.append("too_small")
    if sharpness < MIN_SHARPNESS:
        reasons.append("blurred")
    if yaw is not None and abs(yaw) > MAX_YAW:
        reasons.append("turned_away")
    return FaceQuality(
        width_px=width,
        sharpness=round(sharpness, 1),
        yaw=None if yaw is None else round(yaw, 3),
        retake=reasons,
    )


def of_detected(decoded: Any, box: tuple[int, int, int, int]) -> FaceQuality:
    """Quality of a detected face (box in pixels of the original) on a
    :class:`~media.images.DecodedImage`, measured on its (possibly reduced) ``rgb``
    with 5-point landmarks from a crop around the face."""
    import face_recognition

    from rescue.matching import embedding

    rgb = decoded.rgb
    full_width = decoded.full_size[0]
    scale = full_width / rgb.shape[1]
    top, right, bottom, left = (round(v / scale) for v in box)
    margin = max(right - left, bottom - top)
    height, width = rgb.shape[:2]
    y0, x0 = max(0, top - margin), max(0, left - margin)
    crop = np.ascontiguousarray(
        rgb[y0 : min(height, bottom + margin), x0 : min(width, right + margin)]
    )
    local = (top - y0, right - x0, bottom - y0, left - x0)
    with embedding._DLIB_LOCK:  # dlib's models are not thread-safe (embedding.py)
        found = face_recognition.face_landmarks(crop, [local], model="small")
    return measure(crop, local, scale=scale, landmarks=found[0] if found else None)
