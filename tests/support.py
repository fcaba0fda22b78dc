"""Test helpers: the labelled face photos in ../shared/faces (read there, never copied)."""

from __future__ import annotations

import csv
import io
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

FACES_DIR = Path(
    os.environ.get("FACES_DIR") or Path(__file__).resolve().parents[2] / "shared" / "faces"
)


@lru_cache(maxsize=1)
def labels() -> list[dict[str, str]]:
    with open(FACES_DIR / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def photo(rel: str) -> bytes:
    return (FACES_DIR / rel).read_bytes()


def photos_of(identity: str, dataset: str | None = None) -> list[str]:
    return [
        row["path"]
        for row in labels()
        if row["identity"] == identity and (dataset is None or row["set"] == dataset)
    ]


# Fixtures chosen from labels.csv: two different photos of one person, another person,
# and a group photo of two people.
OBAMA_A = "face_recognition_repo/examples/knn_examples/train/obama/obama.jpg"
OBAMA_B = "face_recognition_repo/examples/knn_examples/train/obama/obama2.jpg"
BIDEN = "face_recognition_repo/examples/knn_examples/train/biden/biden.jpg"
TWO_PEOPLE = "face_recognition_repo/examples/knn_examples/test/kit_with_rose.jpg"


def no_face_jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    """A landscape-like gradient with no face in it."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)
    y = np.linspace(0, 255, h, dtype=np.float32)
    rgb = np.stack(
        [np.add.outer(y, x) / 2, np.tile(x, (h, 1)), np.tile(y[:, None], (1, w))], axis=-1
    ).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
    return buf.getvalue()
