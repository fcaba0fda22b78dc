"""Encodings of every labelled photo through the service's path, cached on disk.

The service's path is :func:`media.images.decode_for_detection` (EXIF orientation) then
:func:`rescue.matching.embedding.detect_and_encode` with the settings' detector
options. For single-face photos the largest detected face is kept (a
background face can be detected too). Cached in ``var/bench-cache`` (gitignored),
keyed by the model, the detector options, the embedding code and labels.csv, so ``make accuracy``
only encodes once.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench._common import CACHE, FACES_DIR, labels
from media import images
from media.images import decode_for_detection
from rescue.matching import embedding
from rescue.matching.embedding import MODEL_NAME, detect_and_encode
from rescue.settings import get_settings


@dataclass(frozen=True)
class Encoded:
    """Encodings of the photos in ``rows`` (``found[i]`` False: no face detected)."""

    paths: list[str]
    identities: list[str]
    sets: list[str]
    faces: np.ndarray  # faces detected per photo
    found: np.ndarray  # bool
    vectors: np.ndarray  # (n, 128) float64; zeros where nothing was found
    from_cache: bool = False  # read from var/bench-cache rather than encoded now


def _encode_one(path: str) -> tuple[int, np.ndarray | None]:
    matching = get_settings().matching
    decoded = decode_for_detection(
        (FACES_DIR / path).read_bytes(), max_pixels=200_000_000, min_side=matching.detect_max_side
    )
    faces = detect_and_encode(
        decoded, detect_max_side=matching.detect_max_side, upsample=matching.detect_upsample
    )
    if not faces:
        return 0, None
    largest = max(faces, key=lambda f: (f.bottom - f.top) * (f.right - f.left))
    return len(faces), largest.encoding


def encode_labelled(processes: int = 2) -> Encoded:
    """Encode every single-face photo of labels.csv (cached)."""
    rows = [r for r in labels() if r["faces"] == "one"]
    matching = get_settings().matching
    key = hashlib.sha256(
        f"{MODEL_NAME}|{matching.detect_max_side}|{matching.detect_upsample}|".encode()
        + (FACES_DIR / "labels.csv").read_bytes()
        + Path(embedding.__file__).read_bytes()
        + Path(images.__file__).read_bytes()
    ).hexdigest()[:16]
    path = CACHE / f"encodings-{key}.npz"
    paths = [r["path"] for r in rows]
    from_cache = path.exists()
    if from_cache:
        data = np.load(path)
        faces, found, vectors = data["faces"], data["found"], data["vectors"]
    else:
        print(f"encoding {len(paths)} photos (cached afterwards in {path}) …", flush=True)
        with ProcessPoolExecutor(processes) as pool:
            results = list(pool.map(_encode_one, paths, chunksize=16))
        faces = np.array([n for n, _ in results])
        found = np.array([e is not None for _, e in results])
        vectors = np.array([e if e is not None else np.zeros(128) for _, e in results])
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, faces=faces, found=found, vectors=vectors)
    return Encoded(
        paths=paths,
        identities=[r["identity"] for r in rows],
        sets=[r["set"] for r in rows],
        faces=faces,
        found=found,
        vectors=vectors,
        from_cache=from_cache,
    )
