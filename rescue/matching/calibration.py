"""Calibration of face distances: what a distance means in a gallery of a given size.

A calibration is measured on labelled photos (``rescue calibrate FOLDER``, or the
shipped default measured on LFW, ``default_calibration.json``) and kept per
model version (table ``match_calibrations``, the newest row of a model wins). It
holds:

- the **impostor** distribution: share of different-person pairs at or under each
  distance (the per-pair false-match rate ``p(d)``), empirical where at least
  :data:`MIN_TAIL_PAIRS` impostor pairs support it; below that, a normal fitted
  to the lower tail (probit regression of the empirical rate on the distance for
  rates from ``MIN_TAIL_PAIRS`` pairs up to 5 %; the dlib distance's impostor
  distribution is close to normal there: on LFW, mean 0.82 and 0.1th percentile
  0.534, i.e. σ ≈ 0.092, docs/accuracy.md);
- the **genuine** distribution: share of same-person pairs at or under each
  distance (1 − the miss rate a cut-off there implies);
- the **loose bound**: the distance within which candidates are looked for at all,
  the genuine 99th percentile (:data:`LOOSE_BOUND_GENUINE_SHARE`) rounded up to
  0.01: a bound there loses about 1 % of true pairs and the candidate cap, not
  the bound, keeps the list short.

The gallery-level **false-match rate** of a candidate at distance ``d`` found by
searching ``n`` people is the chance that at least one of ``n`` people who are not
the person scores this well: ``P = 1 − (1 − p(d))ⁿ`` (independent pairs; the same
expression as the "chance of at least one" in docs/accuracy.md). Bands:

- ``strong``: P ≤ 1 %;
- ``possible``: P ≤ 10 %;
- ``weak``: anything else within the loose bound.

Caveat carried by the shipped default (:data:`DEFAULT_WARNING`): LFW is mostly
Western public figures; on 29 Chinese adults face_recognition put 11.2 % of
different-person pairs under 0.53 (LFW: 0.13 %), so its stated false-match rates
are too low for East Asian faces. A deployment calibrates on faces like its own.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from rescue.i18n import N_

__all__ = [
    "BANDS",
    "DEFAULT_WARNING",
    "Calibration",
    "calibrate",
    "calibration_for",
    "default_calibration",
    "encode_folder",
    "pair_distances",
    "save_calibration",
]

#: (band, largest gallery-level false-match rate it admits), strongest first.
BANDS: tuple[tuple[str, float], ...] = (("strong", 0.01), ("possible", 0.10))
WEAK = "weak"
#: The empirical impostor rate is used where at least this many pairs are at or under
#: the distance; below, the fitted normal tail.
MIN_TAIL_PAIRS = 20
#: Share of genuine pairs the loose bound keeps.
LOOSE_BOUND_GENUINE_SHARE = 0.99
#: Grid of distances the distributions are stored on (0.005 steps, 0..1.5).
GRID = np.round(np.arange(0.0, 1.5001, 0.005), 3)
DEFAULT_FILE = Path(__file__).with_name("default_calibration.json")
DEFAULT_WARNING = N_(
    "calibrated on LFW (mostly Western public figures): it understates false matches "
    "on East Asian faces; calibrate on faces like your own people's (rescue calibrate)"
)
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Calibration:
    """Impostor and genuine distance distributions of one model version.

    ``impostor_rate[i]`` / ``genuine_rate[i]``: share of impostor / genuine pairs
    with distance ≤ ``grid[i]``. ``tail``: (a, b) of the fitted lower tail
    ``p(d) = Φ(a + b·d)``; ``tail_from``: the distance under which the tail is
    used instead of the empirical rate.
    """

    model: str
    source: str
    grid: list[float]
    impostor_rate: list[float]
    genuine_rate: list[float]
    tail: tuple[float, float]
    tail_from: float
    loose_bound: float
    impostor_pairs: int
    genuine_pairs: int
    warning: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- persistence ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        values = dict(data)
        values["tail"] = tuple(values["tail"])
        return cls(**values)

    # -- rates --------------------------------------------------------------------
    def pair_rate(self, distance: float) -> float:
        """Per-pair false-match rate: share of different-person pairs at or under
        ``distance``."""
        if distance < self.tail_from:
            a, b = self.tail
            return _NORMAL.cdf(a + b * distance)
        return float(np.interp(distance, self.grid, self.impostor_rate))

    def genuine_share(self, distance: float) -> float:
        """Share of same-person pairs at or under ``distance`` (1 − the miss rate)."""
        return float(np.interp(distance, self.grid, self.genuine_rate))

    def gallery_rate(self, distance: float, gallery_size: int) -> float:
        """Chance that at least one of ``gallery_size`` non-matching people is at or
        under ``distance``: ``1 − (1 − p)ⁿ``."""
        p = min(self.pair_rate(distance), 1.0 - 1e-15)
        return -math.expm1(max(1, gallery_size) * math.log1p(-p))

    def cutoff(self, rate: float, gallery_size: int) -> float:
        """The largest distance whose gallery-level false-match rate is ≤ ``rate``
        (bisection; monotone in the distance)."""
        lo, hi = 0.0, 1.5
        for _ in range(50):
            mid = (lo + hi) / 2
            if self.gallery_rate(mid, gallery_size) <= rate:
                lo = mid
            else:
                hi = mid
        return lo

    def band(self, distance: float, gallery_size: int) -> tuple[str, float]:
        """(band, gallery-level false-match rate) of a face distance."""
        rate = self.gallery_rate(distance, gallery_size)
        for name, limit in BANDS:
            if rate <= limit:
                return name, rate
        return WEAK, rate

    def confidence(self, distance: float, gallery_size: int) -> dict[str, Any]:
        """What a reviewer is told about a candidate (JSON-ready)."""
        band, rate = self.band(distance, gallery_size)
        return {
            "band": band,
            "false_match_rate": rate,
            "pair_rate": self.pair_rate(distance),
            "gallery_size": int(gallery_size),
            "distance": distance,
            "model": self.model,
            "calibration": self.source,
            "warning": self.warning,
        }

    def report(self, gallery_sizes: tuple[int, ...] = (100, 1_000, 10_000, 100_000)) -> str:
        """Plain-text report of the rates this calibration implies."""
        lines = [
            f"calibration of {self.model}: {self.source}",
            f"{self.genuine_pairs:,} same-person and "
            f"{self.impostor_pairs:,} different-person pairs",
            f"loose bound {self.loose_bound:.2f}: keeps "
            f"{100 * self.genuine_share(self.loose_bound):.1f} % of same-person pairs; "
            f"per-pair false-match rate there {100 * self.pair_rate(self.loose_bound):.3f} %",
            "",
            "gallery size | strong (≤ 1 %) up to | misses there | possible (≤ 10 %) up to "
            "| misses there | false people within the loose bound per search",
        ]
        for n in gallery_sizes:
            strong, possible = self.cutoff(0.01, n), self.cutoff(0.10, n)
            lines.append(
                f"{n:>12,} | {strong:.3f} | {100 * (1 - self.genuine_share(strong)):.1f} % "
                f"| {possible:.3f} | {100 * (1 - self.genuine_share(possible)):.1f} % "
                f"| {n * self.pair_rate(self.loose_bound):,.1f}"
            )
        if self.warning:
            lines += ["", f"warning: {self.warning}"]
        return "\n".join(lines)


def _share_at_or_under(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    ordered = np.sort(values)
    return np.searchsorted(ordered, grid, side="right") / max(1, len(ordered))


def calibrate(
    *, genuine: np.ndarray, impostor: np.ndarray, model: str, source: str, warning: str = ""
) -> Calibration:
    """A calibration from measured same-person (``genuine``) and different-person
    (``impostor``) face distances (1-D arrays).

    Raises:
        ValueError: fewer than 10 genuine or 100 impostor pairs (nothing to calibrate on).
    """
    genuine = np.asarray(genuine, dtype=np.float64).reshape(-1)
    impostor = np.asarray(impostor, dtype=np.float64).reshape(-1)
    if len(genuine) < 10 or len(impostor) < 100:
        raise ValueError(
            f"{len(genuine)} same-person and {len(impostor)} different-person pairs: "
            "at least 10 and 100 are needed"
        )
    imp_rate = _share_at_or_under(impostor, GRID)
    gen_rate = _share_at_or_under(genuine, GRID)
    ordered = np.sort(impostor)
    # Tail: probit(rate) = a + b·d. The slope b is fitted on the extreme tail (the
    # MIN_TAIL_PAIRS-th smallest impostor distance up to the 0.1 % quantile, at
    # least 50 order statistics), where the dlib impostor distribution is heavier
    # than one normal fitted to its bulk (on LFW a bulk fit understated the rate
    # 3× at 1e-5); a is then set so the tail meets the empirical rate at tail_from.
    n = len(ordered)
    first = max(1, min(MIN_TAIL_PAIRS, n // 10))
    last = min(n, max(first + 50, int(0.001 * n)))
    idx = np.arange(first - 1, last)
    d = ordered[idx]
    z = np.array([_NORMAL.inv_cdf((i + 1) / n) for i in idx])
    b = float(np.polyfit(d, z, 1)[0]) if np.ptp(d) > 0 else 0.0
    tail_from = float(ordered[first - 1])
    if b <= 0:  # degenerate (all distances equal): a steep step there
        b = 1e3
    a = _NORMAL.inv_cdf(first / n) - b * tail_from
    bound = float(np.ceil(np.quantile(genuine, LOOSE_BOUND_GENUINE_SHARE) * 100) / 100)
    return Calibration(
        model=model,
        source=source,
        grid=[float(g) for g in GRID],
        impostor_rate=[float(r) for r in imp_rate],
        genuine_rate=[float(r) for r in gen_rate],
        tail=(float(a), float(b)),
        tail_from=tail_from,
        loose_bound=bound,
        impostor_pairs=len(impostor),
        genuine_pairs=len(genuine),
        warning=warning,
    )


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped default (LFW, measured by ``make accuracy``), read once per process
    (the file changes only with a release). Frozen: callers share it."""
    return Calibration.from_dict(json.loads(DEFAULT_FILE.read_text()))


#: model → (key of the row in force: (id, created_at), or None for the shipped
#: default; its calibration): :func:`calibration_for`'s cache.
_IN_FORCE: dict[str, tuple[tuple[int, Any] | None, Calibration | None]] = {}


async def calibration_for(model: str) -> Calibration | None:
    """The calibration in force for ``model``: the newest ``match_calibrations`` row,
    else the shipped default when it is of this model, else None (no bands).

    Cached per model version: each call reads only the id of the newest row (one
    indexed row), and parses its ~20 KB of distributions again only when that row
    changed, i.e. when a deployment's calibration was written (by any process:
    ``rescue calibrate`` runs apart from the workers) or removed. The worker used to
    read and parse the calibration 6 times per job (issue 16).
    """
    from rescue.matching.tables import MatchCalibration

    row = (
        await MatchCalibration.select(MatchCalibration.id, MatchCalibration.created_at)
        .where(MatchCalibration.model == model)
        .order_by(MatchCalibration.id, ascending=False)
        .first()
    )
    key = (int(row["id"]), row["created_at"]) if row is not None else None
    cached = _IN_FORCE.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    calibration: Calibration | None
    if row is not None:
        stored = (
            await MatchCalibration.select(MatchCalibration.data)
            .where(MatchCalibration.id == row["id"])
            .first()
        )
        if stored is None:  # removed meanwhile: look again
            _IN_FORCE.pop(model, None)
            return await calibration_for(model)
        data = stored["data"]
        calibration = Calibration.from_dict(json.loads(data) if isinstance(data, str) else data)
    else:
        default = default_calibration()
        calibration = default if default.model == model else None
    _IN_FORCE[model] = (key, calibration)
    return calibration


async def save_calibration(calibration: Calibration) -> int:
    """Store ``calibration`` as the one in force for its model; returns its row id.
    Other processes see it at their next :func:`calibration_for`."""
    from rescue.matching.tables import MatchCalibration

    rows = await MatchCalibration.insert(
        MatchCalibration(
            model=calibration.model, source=calibration.source, data=calibration.to_dict()
        )
    ).returning(MatchCalibration.id)
    _IN_FORCE.pop(calibration.model, None)
    return int(rows[0]["id"])


def pair_distances(vectors: np.ndarray, identities: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances of every pair of ``vectors`` (n, 128): (same identity,
    different identities), float64."""
    v = np.asarray(vectors, dtype=np.float64)
    sq = np.einsum("ij,ij->i", v, v)
    d = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2.0 * (v @ v.T), 0.0, None))
    ident = np.asarray(identities)
    upper = np.triu_indices(len(v), k=1)
    same = ident[upper[0]] == ident[upper[1]]
    values = d[upper]
    return values[same], values[~same]


@dataclass(frozen=True)
class LabelledFaces:
    """Encodings of a labelled folder: one per photo with a face (its largest)."""

    vectors: np.ndarray  # (n, 128) float64
    identities: list[str]
    paths: list[str]
    without_face: list[str]  # photos where no face was found


def encode_folder(
    folder: Path,
    *,
    detect_max_side: int,
    upsample: int,
    max_pixels: int,
    only_set: str | None = None,
) -> LabelledFaces:
    """Encode the photos listed in ``folder/labels.csv`` through the service's path.

    ``labels.csv`` has the columns ``path`` (relative to ``folder``) and
    ``identity``, optionally ``set`` (``only_set`` keeps one) and ``faces``
    (rows other than ``one`` are skipped: a group photo's faces are unlabelled).
    The largest face of each photo is used.

    Raises:
        ValueError: no labels.csv, or it lacks ``path``/``identity``.
    """
    import csv

    from media.images import decode_for_detection
    from rescue.matching.embedding import detect_and_encode

    labels = folder / "labels.csv"
    if not labels.is_file():
        raise ValueError(f"{labels} does not exist (columns: path, identity[, set, faces])")
    with labels.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"path", "identity"} <= rows[0].keys():
        raise ValueError(f"{labels} needs the columns path and identity")
    vectors, identities, paths, without = [], [], [], []
    for row in rows:
        if row.get("faces", "one") != "one" or (only_set and row.get("set") != only_set):
            continue
        decoded = decode_for_detection(
            (folder / row["path"]).read_bytes(), max_pixels=max_pixels, min_side=detect_max_side
        )
        faces = detect_and_encode(decoded, detect_max_side=detect_max_side, upsample=upsample)
        if not faces:
            without.append(row["path"])
            continue
        largest = max(faces, key=lambda f: (f.bottom - f.top) * (f.right - f.left))
        vectors.append(largest.encoding)
        identities.append(row["identity"])
        paths.append(row["path"])
    return LabelledFaces(
        vectors=np.array(vectors).reshape(-1, 128),
        identities=identities,
        paths=paths,
        without_face=without,
    )
