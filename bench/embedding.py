"""Photo to embeddings: the service's path against face_recognition on the full image.

Service path: ``decode_for_detection`` (EXIF orientation; JPEG decoded at a reduced
scale no smaller than ``DETECT_MAX_SIDE``) then ``detect_and_encode``, which detects
on a grayscale copy downscaled to ``DETECT_MAX_SIDE`` and encodes each face from a
crop (of the original where the face is small).
Baseline: the same decoded image given to ``face_recognition.face_locations`` +
``face_encodings`` at full resolution (face_recognition's documented use).

1. Speed at 240p, 1080p and 12 MP: a real 12.6 MP photo (deepface img49.jpg,
   4352×2903) downscaled to 1080p and 240p, and a 1080p photo (obama-1080p.jpg)
   upscaled to 12 MP. Photos are written to a temporary folder, never kept.
2. Same faces on every photo of ``../shared/faces`` (face_recognition_repo and
   deepface_dataset; LFW photos are 150×150, below DETECT_MAX_SIDE, so both paths
   run the very same code there): the face count must be equal and each
   baseline face must have a service face with IoU ≥ 0.5 (PASCAL VOC's rule for
   "the same detection"; boxes found at a coarser scale move by a few pixels per
   side). The encodings then differ a little (the 5-point landmarks follow the
   box), so the effect that matters is measured too: true/false accepts over all
   pairs of these photos with either path's encodings. Photos no larger than
   DETECT_MAX_SIDE take the identical code path; they are checked all the same.
3. Small faces: one 12 MP canvas holding the same face at widths from 40 to 200 px;
   which are found for DETECT_MAX_SIDE from 1024 px to full resolution, and how long
   each takes: this chose the default DETECT_MAX_SIDE.

Baseline results on the full-resolution photos are cached in var/bench-cache.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import face_recognition
import numpy as np
from PIL import Image

from bench._common import CACHE, FACES_DIR, Report, fmt_seconds, labels, paired, scale, timed
from media.images import decode_for_detection, decode_rgb
from rescue.matching.embedding import detect_and_encode
from rescue.settings import get_settings

MAX_PIXELS = 200_000_000
Box = tuple[int, int, int, int]  # top, right, bottom, left


def baseline(rgb: np.ndarray, upsample: int) -> list[tuple[Box, np.ndarray]]:
    boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=upsample)
    encodings = face_recognition.face_encodings(rgb, known_face_locations=boxes)
    return [(tuple(b), np.asarray(e)) for b, e in zip(boxes, encodings, strict=True)]  # type: ignore[misc]


def service(data: bytes, max_side: int, upsample: int) -> list[tuple[Box, np.ndarray]]:
    decoded = decode_for_detection(data, max_pixels=MAX_PIXELS, min_side=max_side)
    faces = detect_and_encode(decoded, detect_max_side=max_side, upsample=upsample)
    return [((f.top, f.right, f.bottom, f.left), f.encoding) for f in faces]


def cached_baseline(data: bytes, upsample: int) -> list[tuple[Box, np.ndarray]]:
    key = hashlib.sha256(data + f"|{upsample}".encode()).hexdigest()[:20]
    path = CACHE / "baseline" / f"{key}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())  # noqa: S301 - our own cache file
    result = baseline(decode_rgb(data, max_pixels=MAX_PIXELS), upsample)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(result))
    return result


def iou(a: Box, b: Box) -> float:
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    area = (a[1] - a[3]) * (a[2] - a[0]) + (b[1] - b[3]) * (b[2] - b[0])
    return inter / (area - inter) if inter else 0.0


@dataclass(frozen=True)
class Comparison:
    """The service's faces against full resolution's on one photo."""

    identical: bool  # same count, every baseline box matched at IoU ≥ 0.5
    lost: list[Box]  # faces full resolution found and the service did not
    baseline_false: list[Box]  # extra boxes of full resolution on a one-face photo
    service_false: list[Box]  # extra boxes of the service on a one-face photo

    @property
    def ok(self) -> bool:
        """No face lost, and every other difference a labelled false detection."""
        return self.identical or (not self.lost and bool(self.baseline_false or self.service_false))


def compare(
    ours: list[tuple[Box, np.ndarray]], theirs: list[tuple[Box, np.ndarray]], labelled_one: bool
) -> Comparison:
    """Compare boxes. Where labels.csv says the photo shows one face and both paths
    found it (IoU ≥ 0.5), every further box of either path is a false detection of
    that path (there is no second face to find), not a lost face."""

    def unmatched(a: list[tuple[Box, np.ndarray]], b: list[tuple[Box, np.ndarray]]) -> list[Box]:
        return [x for x, _ in a if max((iou(x, y) for y, _ in b), default=0) < 0.5]

    lost, extra = unmatched(theirs, ours), unmatched(ours, theirs)
    if len(ours) == len(theirs) and not lost:
        return Comparison(True, [], [], [])
    both_found_it = len(theirs) - len(lost) >= 1 and len(ours) - len(extra) >= 1
    if labelled_one and both_found_it:
        return Comparison(False, [], lost, extra)
    return Comparison(False, lost, [], [])


def jpeg(image: Image.Image, folder: Path, name: str) -> bytes:
    path = folder / name
    image.save(path, format="JPEG", quality=90)
    return path.read_bytes()


def speed(report: Report, folder: Path, max_side: int, upsample: int) -> None:
    report.section(f"speed (DETECT_MAX_SIDE={max_side}, upsample {upsample})")
    real = Image.open(FACES_DIR / "deepface_dataset/img49.jpg").convert("RGB")
    small = Image.open(FACES_DIR / "face_recognition_repo/examples/obama-1080p.jpg").convert("RGB")
    photos = [
        ("240p (360×240, from img49)", real.resize((360, 240), Image.Resampling.LANCZOS)),
        ("1080p (1619×1080, from img49)", real.resize((1619, 1080), Image.Resampling.LANCZOS)),
        ("12.6 MP real photo (img49, 4352×2903)", real),
        ("12 MP upscaled (obama-1080p → 4608×2592)", small.resize((4608, 2592))),
    ]
    for label, image in photos:
        data = jpeg(image, folder, "photo.jpg")
        big = image.width * image.height > 10_000_000
        # The baseline includes decoding, as the service's path does.
        pair = paired(
            lambda d=data: service(d, max_side, upsample),
            lambda d=data: baseline(decode_rgb(d, max_pixels=MAX_PIXELS), upsample),
            rounds=3,
        )
        ours, theirs, speedup = pair.value, pair.baseline, 1 / pair.ratio
        decode = timed(lambda d=data: decode_rgb(d, max_pixels=MAX_PIXELS), repeat=3)
        theirs_faces = baseline(decode_rgb(data, max_pixels=MAX_PIXELS), upsample)
        ours_faces = service(data, max_side, upsample)
        # both source photos are labelled "one" face in labels.csv
        comparison = compare(ours_faces, theirs_faces, labelled_one=True)
        same = comparison.ok
        report.row(
            f"{label}: {len(ours_faces)}/{len(theirs_faces)} faces",
            fmt_seconds(ours),
            f"full-resolution face_recognition {fmt_seconds(theirs)}",
            f"{speedup:.1f}× faster",
            "≥ 8×, same faces" if big else "same faces",
            (speedup >= 8 if big else True) and same,
        )
        report.note(
            f"{label}: speed-up is the median over {pair.rounds} alternating pairs "
            f"(each {1 / pair.high:.1f}–{1 / pair.low:.1f}×)"
        )
        smallest = 40 * max(image.size) / max_side if max(image.size) > max_side else 40
        for who, other, verdict, boxes in (
            ("full resolution", "the service", "a face lost", comparison.lost),
            ("full resolution", "the service", "a false detection", comparison.baseline_false),
            ("the service", "full resolution", "a false detection", comparison.service_false),
        ):
            for top, right, bottom, left in boxes:
                report.note(
                    f"{label}: {who} also found a {right - left}×{bottom - top} px 'face' at "
                    f"({left}, {top}) that {other} did not ({verdict}: labels.csv says the "
                    f"photo shows one face; the service detects faces from ~{smallest:.0f} px "
                    "wide on this photo)"
                )
        if big:
            ours_nd = ours - decode
            report.row(
                f"{label}: detect + encode only (decoded image given)",
                fmt_seconds(ours_nd),
                f"face_locations + face_encodings {fmt_seconds(theirs - decode)}",
                f"{(theirs - decode) / ours_nd:.1f}× faster",
                "",
            )
        report.data[label] = {"service": ours, "baseline": theirs, "decode": decode, "same": same}


def same_faces(report: Report, max_side: int, upsample: int) -> None:
    report.section("same faces as full resolution on every photo (face_recognition_repo, deepface)")
    rows = [r for r in labels() if r["set"] in {"face_recognition_repo", "deepface_dataset"}]
    if scale() < 1:
        rows = rows[:: max(1, round(1 / scale()))]
    mismatches: list[str] = []
    false_detections: list[str] = []
    worst_iou, faces_total, downscaled, identical = 1.0, 0, 0, 0
    deltas: list[float] = []
    ours_vectors: list[np.ndarray] = []
    theirs_vectors: list[np.ndarray] = []
    identities: list[str] = []
    for row in rows:
        data = (FACES_DIR / row["path"]).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            downscaled += max(image.size) > max_side
        ours = service(data, max_side, upsample)
        theirs = cached_baseline(data, upsample)
        faces_total += len(theirs)
        comparison = compare(ours, theirs, labelled_one=row["faces"] == "one")
        identical += comparison.identical
        for box, enc in theirs:
            if box in comparison.baseline_false:
                continue
            pairs = [(iou(box, o), float(np.linalg.norm(e - enc))) for o, e in ours]
            best = max(pairs, default=(0.0, 9.0))
            worst_iou = min(worst_iou, best[0])
            deltas.append(best[1])
        for who, boxes in (
            ("full resolution", comparison.baseline_false),
            ("the service", comparison.service_false),
        ):
            for top, right, _, left in boxes:
                false_detections.append(
                    f"{row['path']}: {who} also found a {right - left} px 'face' at "
                    f"({left}, {top}); labels.csv says the photo shows one face, which both found"
                )
        if not comparison.ok:
            mismatches.append(f"{row['path']} ({len(ours)} vs {len(theirs)} faces)")
        if row["faces"] == "one" and ours and theirs:
            ours_vectors.append(max(ours, key=lambda f: _area(f[0]))[1])
            theirs_vectors.append(max(theirs, key=lambda f: _area(f[0]))[1])
            identities.append(row["identity"])
    report.row(
        f"{len(rows)} photos ({downscaled} downscaled), {faces_total} faces",
        f"{identical}/{len(rows)} identical, {len(mismatches)} with a face lost",
        "full-resolution face_recognition",
        f"box IoU ≥ {worst_iou:.2f}",
        "same faces: every box IoU ≥ 0.5, differences only labelled false detections",
        not mismatches,
    )
    for m in mismatches:
        report.note(f"different faces: {m}")
    for m in false_detections:
        report.note(f"a false detection (not a face): {m}")
    report.note(
        f"encodings of the same face, service vs full resolution: median "
        f"{np.median(deltas):.3f}, max {max(deltas):.3f} apart; the same photo saved at "
        "240p…1080p (face_recognition_repo obama-*.jpg) gives encodings 0.04–0.13 apart, "
        "so most of this is the encoder's own sensitivity to the box"
    )
    threshold = get_settings().matching.threshold
    ident = np.array(identities)
    upper = np.triu_indices(len(ident), k=1)
    same_person = ident[upper[0]] == ident[upper[1]]
    for name, vectors in (("service", ours_vectors), ("full resolution", theirs_vectors)):
        v = np.array(vectors)
        dist = np.linalg.norm(v[:, None, :] - v[None, :, :], axis=-1)[upper]
        tar = float((dist[same_person] <= threshold).mean())
        far = float((dist[~same_person] <= threshold).mean())
        report.data[f"match_{name}"] = {"tar": tar, "far": far}
    a, b = report.data["match_service"], report.data["match_full resolution"]
    report.row(
        f"matching on these photos at threshold {threshold:.2f}: true accepts",
        f"{a['tar']:.1%}",
        f"full-resolution encodings {b['tar']:.1%}",
        f"{100 * (a['tar'] - b['tar']):+.1f} points",
        "no loss",
        a["tar"] >= b["tar"] - 0.005,
    )
    report.row(
        f"matching on these photos at threshold {threshold:.2f}: false accepts",
        f"{a['far']:.2%}",
        f"full-resolution encodings {b['far']:.2%}",
        f"{100 * (a['far'] - b['far']):+.2f} points",
        "",
    )
    report.data["same_faces"] = {
        "photos": len(rows),
        "mismatches": mismatches,
        "identical": identical,
        "false_detections": false_detections,
    }


def _area(box: Box) -> int:
    return (box[1] - box[3]) * (box[2] - box[0])


def small_faces(report: Report, folder: Path, upsample: int) -> int:
    """The smallest face found per DETECT_MAX_SIDE on a 12 MP canvas; returns the chosen side."""
    report.section("small faces in a 12 MP photo (4000×3000) per DETECT_MAX_SIDE")
    source = face_recognition.load_image_file(
        FACES_DIR / "face_recognition_repo/examples/knn_examples/train/obama/obama.jpg"
    )
    top, right, bottom, left = face_recognition.face_locations(source)[0]
    width = right - left
    pad = width // 2
    crop = Image.fromarray(source).crop((left - pad, top - pad, right + pad, bottom + pad))
    canvas = Image.new("RGB", (4000, 3000), (118, 128, 120))
    sizes = [40, 50, 64, 80, 100, 128, 160, 200]
    placed: list[tuple[int, Box]] = []
    for i, w in enumerate(sizes):
        factor = w / width
        face = crop.resize((round(crop.width * factor), round(crop.height * factor)))
        x, y = 250 + (i % 4) * 950, 600 + (i // 4) * 1300
        canvas.paste(face, (x, y))
        p = round(pad * factor)
        placed.append((w, (y + p, x + p + w, y + p + round((bottom - top) * factor), x + p)))
    data = jpeg(canvas, folder, "canvas.jpg")
    results: dict[int, tuple[float, list[int]]] = {}
    for side in (1024, 1280, 1440, 1600, 2048, 2560, 4000):
        t0 = time.perf_counter()
        found = service(data, side, upsample)
        elapsed = time.perf_counter() - t0
        hit = [w for w, box in placed if any(iou(box, f) >= 0.4 for f, _ in found)]
        results[side] = (elapsed, hit)
    full_time = results[4000][0]
    for side, (elapsed, hit) in results.items():
        smallest = f"{min(hit)} px" if hit else "none"
        report.row(
            f"DETECT_MAX_SIDE {side}{' (full resolution)' if side == 4000 else ''}",
            fmt_seconds(elapsed),
            f"full resolution {fmt_seconds(full_time)}",
            f"{full_time / elapsed:.1f}× faster",
            f"found {len(hit)}/{len(sizes)}, smallest {smallest}",
        )
    report.data["small_faces"] = {str(k): v for k, v in results.items()}
    # A photo whose only face is small: found by the retry at twice the side.
    chosen = get_settings().matching.detect_max_side
    lone = Image.new("RGB", (4000, 3000), (118, 128, 120))
    w = 64
    factor = w / width
    lone.paste(crop.resize((round(crop.width * factor), round(crop.height * factor))), (2000, 1400))
    data = jpeg(lone, folder, "lone.jpg")
    t0 = time.perf_counter()
    found = service(data, chosen, upsample)
    elapsed = time.perf_counter() - t0
    report.row(
        f"DETECT_MAX_SIDE {chosen}, the photo's only face {w} px wide (retried at 2×)",
        fmt_seconds(elapsed),
        f"full resolution {fmt_seconds(full_time)}",
        f"{full_time / elapsed:.1f}× faster",
        f"found {len(found)}/1",
    )
    report.note(
        "faces of widths "
        + ", ".join(f"{w}" for w in sizes)
        + " px pasted into one 4000×3000 canvas; a face counts as found with IoU ≥ 0.4"
    )
    return 0


def main() -> int:
    matching = get_settings().matching
    report = Report("embedding", "Photo to embeddings")
    with tempfile.TemporaryDirectory(prefix="rescue-bench-") as tmp:
        folder = Path(tmp)
        speed(report, folder, matching.detect_max_side, matching.detect_upsample)
        small_faces(report, folder, matching.detect_upsample)
        same_faces(report, matching.detect_max_side, matching.detect_upsample)
    report.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
