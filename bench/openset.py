"""Open-set report with distractors: what reviewers are shown, at several gallery sizes.

Part of ``make accuracy`` (bench/accuracy.py writes it into docs/accuracy.md).

Protocol (LFW subset of ``../shared/faces``: every photo with a face; 623 people,
423 with several photos):

- People are split into two folds by a hash of their name. The probes of one
  fold are judged with the calibration measured on the *other* fold only
  (rescue.matching.calibration.calibrate on its same/different-person pairs):
  the stated rates never come from the pairs they are checked on.
- A gallery of N notices holds N people, one photo each (their first photo by
  file name), drawn at random (:data:`REPEATS` draws, pooled) from all 623;
  everyone not drawn is a person in no notice. At the largest size every person
  is in the gallery, and each person's photos are also used as probes of a
  person in no notice with that person's own notice left out (leave one person
  out), so the largest size is 622 distractors for every open-set probe.
- Enrolled probes: the other photos of people in the gallery.
- The service's rule (rescue.matching.services.match_photo): people within the
  loose bound of the calibration, minus sure differences (sex, when known on both
  sides), ranked by the full score (rescue.matching.scoring.compute_score, then
  distance; with age unknown the score follows the distance), the best
  :data:`CAP` shown, each with its band at this gallery size (from its face
  distance; an open-set probe counts at the strongest band shown).
- *Age known*: each person's approximate age at photo time is labelled
  (bench/lfw_age.csv, a band such as 48–57). The probe's case gets that band
  widened by the station's estimate error, ``age_low − 10 .. age_high + 10`` (as
  ``estimated_age ± 10`` is in the score), and the notice ``age_when_missing`` =
  the middle of its person's band, missing since the day of the photo (no years
  pass: LFW's photos are of one period); the case's window (about 30 years) is
  wider than a station's 20 (``estimated_age ± 10``), because the label is itself
  a band. Age only lowers a candidate's rank
  (factor 0.8 / 0.6 / 0.3 for a gap of ≤ 5, ≤ 10, > 10 years); it never removes
  one. The probe and its own notice carry the same label, so a true match is
  never lowered by age here: a station's real estimate errs, which the ± 10
  stands for; the last *age known* row moves each probe's band by an error drawn
  from N(0, 7) years (whole years, one per probe photo) to show what a wrong
  estimate costs.
- Baseline in the same run: raw face distance, every person within 0.53 (the
  former per-pair threshold), uncapped.

Galleries larger than the labelled people allow (1,000 to 100,000) are
*extrapolated*, not measured: the number of distractors closer than the true
match is taken as Binomial(N − 1, q), q the other fold's per-pair impostor rate
at the true distance (distractors drawn from the same population as LFW's), and
the false-strong rate as 1 − (1 − r)ᴺ, r the pooled share of open-set probe
pairs under the strong cut-off at N (few pairs: read the count beside it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from bench.encodings import Encoded
from rescue.matching.calibration import BANDS, Calibration, calibrate, pair_distances
from rescue.matching.embedding import MODEL_NAME
from rescue.matching.scoring import VISUAL_AGE_ERROR_YEARS, EvidenceInput, compute_score
from rescue.settings import get_settings

CAP = 5
BASELINE = 0.53
REPEATS = 5
EXTRAPOLATED = (1_000, 10_000, 100_000)
#: The station's age estimate error in the last *age known* row: N(0, 7) years, the
#: 5–8-year mean absolute error of visual age estimation (Voelkle et al. 2012), as
#: the synthetic records of bench/accuracy.py assume.
AGE_ERROR_YEARS = 7.0
AGE_ERROR_SEED = 16
AGE_ERROR_ROW = (
    f"service, sex and age known, station's estimate off by N(0, {AGE_ERROR_YEARS:.0f}) years"
)


@dataclass
class People:
    rows: np.ndarray  # encoding rows (into Encoded) of every LFW photo with a face
    person: np.ndarray  # person index per row
    names: list[str]
    first: np.ndarray  # per person: the row of its notice photo
    fold: np.ndarray  # per person: 0 or 1
    sex: np.ndarray  # per person: "male" / "female" / "unknown"
    distance: np.ndarray  # (rows, rows) face distances
    #: per person: labelled age band at photo time (low, high) in years; NaN unknown
    age: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))


def people(
    enc: Encoded, sexes: dict[str, str], ages: dict[str, tuple[int, int]] | None = None
) -> People:
    rows = np.array(
        [i for i, p in enumerate(enc.paths) if p.startswith("lfw_subset/") and enc.found[i]]
    )
    rows = rows[np.argsort([enc.paths[i] for i in rows], kind="stable")]
    names = sorted({enc.identities[i] for i in rows})
    index = {n: k for k, n in enumerate(names)}
    person = np.array([index[enc.identities[i]] for i in rows])
    first = np.array([int(np.flatnonzero(person == k)[0]) for k in range(len(names))])
    fold = np.array([hashlib.sha256(n.encode()).digest()[0] % 2 for n in names])
    v = enc.vectors[rows]
    sq = np.einsum("ij,ij->i", v, v)
    distance = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2 * v @ v.T, 0, None))
    sex = np.array([sexes.get(n, "unknown") for n in names])
    age = np.array([(ages or {}).get(n, (math.nan, math.nan)) for n in names], dtype=float)
    return People(rows, person, names, first, fold, sex, distance, age)


#: The day of every photo, notice and case in the age-known rows (no years pass).
_PHOTO_DAY = datetime(2003, 6, 1, tzinfo=UTC)


def _case(ppl: People, k: int, offset: float = 0.0) -> dict[str, object]:
    """The case row of a probe of person k: recorded sex, the label moved by the
    station's estimate error ``offset`` (years) and widened by ± 10 years."""
    low, high = ppl.age[k]
    known = not math.isnan(low)
    return {
        "sex": ppl.sex[k],
        "age_low": low + offset - VISUAL_AGE_ERROR_YEARS if known else None,
        "age_high": high + offset + VISUAL_AGE_ERROR_YEARS if known else None,
        "estimated_age": None,
        "found_at": _PHOTO_DAY,
        "admitted_at": _PHOTO_DAY,
    }


def _notice(ppl: People, k: int) -> dict[str, object]:
    """The notice row of person k: recorded sex, age when missing the middle of
    the label."""
    low, high = ppl.age[k]
    return {
        "sex": ppl.sex[k],
        "date_of_birth": None,
        "age_when_missing": None if math.isnan(low) else round((low + high) / 2),
        "missing_since": _PHOTO_DAY.date(),
    }


_FACTORS: dict[tuple[object, ...], float] = {}


def plausibility(ppl: People, a: int, b: int, offset: float = 0.0) -> float:
    """The plausibility factor of the service's score (S × A × D: sex, age, dates)
    for a probe of person a (the case, its age off by ``offset`` years) against the
    notice of person b: ``compute_score`` at face distance 0, once per distinct
    pair of records."""
    case, notice = _case(ppl, a, offset), _notice(ppl, b)
    key = (
        case["sex"],
        case["age_low"],
        case["age_high"],
        notice["sex"],
        notice["age_when_missing"],
    )
    if key not in _FACTORS:
        t = get_settings().matching.threshold
        perfect = [EvidenceInput(kind="face", values={}, distance=0.0, threshold=t)]
        _FACTORS[key] = compute_score(
            case=case, notice=notice, evidence=perfect, today=_PHOTO_DAY.date()
        ).score
    return _FACTORS[key]


def fold_calibrations(enc: Encoded, ppl: People) -> list[Calibration]:
    out = []
    for f in (0, 1):
        rows = ppl.rows[ppl.fold[ppl.person] == f]
        genuine, impostor = pair_distances(enc.vectors[rows], [enc.identities[i] for i in rows])
        out.append(
            calibrate(
                genuine=genuine,
                impostor=impostor,
                model=MODEL_NAME,
                source=f"LFW fold {f}",
            )
        )
    return out


@dataclass
class Tally:
    enrolled: int = 0
    top1: int = 0
    top5: int = 0
    open_probes: int = 0
    open_any: int = 0
    shown: int = 0
    probes: int = 0
    most_shown: int = 0
    #: Open-set probes whose best shown candidate is at this band or stronger.
    band_hits: dict[str, int] = field(default_factory=lambda: {name: 0 for name, _ in BANDS})


def _shown(
    d: np.ndarray,
    candidates: np.ndarray,
    probe: int | None,
    ppl: People,
    bound: float,
    sex: bool,
    age: bool = False,
    offset: float = 0.0,
) -> np.ndarray:
    """Positions (into ``candidates``) shown for one probe of person ``probe`` (None:
    nothing recorded): within the bound, sex-filtered, ranked by the service's score
    (face strength × :func:`plausibility`, the case's age off by ``offset`` years,
    rounded as compute_score rounds it, then distance), best CAP. Without age the
    score of the people kept follows the distance, so they are ranked by distance."""
    keep = d <= bound
    probe_sex = ppl.sex[probe] if probe is not None else "unknown"
    if sex and probe_sex != "unknown":
        other = ppl.sex[candidates]
        keep &= (other == "unknown") | (other == probe_sex)
    within = np.flatnonzero(keep)
    if not age or probe is None:
        return within[np.argsort(d[within], kind="stable")][:CAP]
    t = get_settings().matching.threshold
    strength = np.clip(1.0 - d[within] / (2 * t), 0.0, 1.0)
    factor = np.array([plausibility(ppl, probe, int(b), offset) for b in candidates[within]])
    score = np.round(np.clip(strength * factor, 0.0, 1.0), 4)
    return within[np.lexsort((d[within], -score))][:CAP]


def evaluate(
    ppl: People,
    cals: list[Calibration],
    n: int,
    *,
    sex: bool,
    rng: np.random.Generator,
    age: bool = False,
    age_error: float = 0.0,
) -> Tally:
    """Pooled figures over REPEATS galleries of n people (one, all people, at the
    largest). ``age``: rank by the score with ages known; ``age_error``: the
    station's estimate of each probe's age off by N(0, age_error) years (whole
    years, drawn once per probe photo, the same for every gallery)."""
    total = len(ppl.names)
    tally = Tally()
    offsets = np.zeros(len(ppl.rows))
    if age_error:
        offsets = np.round(
            np.random.default_rng(AGE_ERROR_SEED).normal(0, age_error, len(ppl.rows))
        )
    repeats = 1 if n >= total else REPEATS
    for _ in range(repeats):
        gallery = np.arange(total) if n >= total else np.sort(rng.choice(total, n, replace=False))
        in_gallery = np.zeros(total, dtype=bool)
        in_gallery[gallery] = True
        gal_rows = ppl.first[gallery]
        for r in range(len(ppl.rows)):
            i = ppl.person[r]
            cal = cals[1 - ppl.fold[i]]
            d = ppl.distance[r, gal_rows].copy()
            enrolled = in_gallery[i] and r != ppl.first[i]
            cases = [enrolled, not in_gallery[i] or n >= total]
            for is_enrolled in (True, False):
                if not cases[0 if is_enrolled else 1]:
                    continue
                dd = d.copy()
                own = np.flatnonzero(gallery == i)
                if not is_enrolled and len(own):
                    dd[own] = np.inf  # this person is in no notice
                size = n - 1 if (not is_enrolled and n >= total) else n
                shown = _shown(dd, gallery, i, ppl, cal.loose_bound, sex, age, offsets[r])
                people_shown = gallery[shown]
                tally.probes += 1
                tally.shown += len(shown)
                tally.most_shown = max(tally.most_shown, len(shown))
                if is_enrolled:
                    tally.enrolled += 1
                    tally.top1 += int(len(shown) > 0 and people_shown[0] == i)
                    tally.top5 += int(i in people_shown)
                else:
                    tally.open_probes += 1
                    tally.open_any += int(len(shown) > 0)
                    best = float(dd[shown].min()) if len(shown) else math.inf
                    for name, limit in BANDS:
                        tally.band_hits[name] += int(best <= _cutoff(cal, limit, size))
    return tally


def baseline(ppl: People, n: int, rng: np.random.Generator) -> Tally:
    """Raw distance, everyone within BASELINE, uncapped (the former rule)."""
    total = len(ppl.names)
    tally = Tally()
    repeats = 1 if n >= total else REPEATS
    for _ in range(repeats):
        gallery = np.arange(total) if n >= total else np.sort(rng.choice(total, n, replace=False))
        in_gallery = np.zeros(total, dtype=bool)
        in_gallery[gallery] = True
        d_all = ppl.distance[:, ppl.first[gallery]]
        for r in range(len(ppl.rows)):
            i = ppl.person[r]
            for is_enrolled in (True, False):
                if is_enrolled and not (in_gallery[i] and r != ppl.first[i]):
                    continue
                if not is_enrolled and in_gallery[i] and n < total:
                    continue
                d = d_all[r].copy()
                if not is_enrolled:
                    d[gallery == i] = np.inf
                within = np.flatnonzero(d <= BASELINE)
                ranked = gallery[within[np.argsort(d[within], kind="stable")]]
                tally.probes += 1
                tally.shown += len(ranked)
                tally.most_shown = max(tally.most_shown, len(ranked))
                if is_enrolled:
                    tally.enrolled += 1
                    tally.top1 += int(len(ranked) > 0 and ranked[0] == i)
                    tally.top5 += int(i in ranked[:5])
                else:
                    tally.open_probes += 1
                    tally.open_any += int(len(ranked) > 0)
    return tally


def extrapolate(ppl: People, cals: list[Calibration], n: int) -> dict[str, float]:
    """Top-1/top-5 shown and false-strong rate at n people, from the largest measured
    gallery (see the module docstring)."""
    from statistics import fmean

    total = len(ppl.names)
    top1, top5, strong_pairs, pairs = [], [], 0, 0
    gal = ppl.first
    for r in range(len(ppl.rows)):
        i = ppl.person[r]
        cal = cals[1 - ppl.fold[i]]
        d = ppl.distance[r, gal].copy()
        true = d[i] if r != ppl.first[i] else None
        d[i] = np.inf
        others = d[np.isfinite(d)]
        if true is not None:
            # The chance that one distractor is closer than the true match: the
            # other fold's impostor rate at the true distance (the fitted tail
            # where no measured pair is that close).
            q = cal.pair_rate(float(true))
            within = true <= cal.loose_bound
            # P(rank ≤ k) with rank − 1 ~ Binomial(n − 1, q)
            top1.append(within * (1 - q) ** (n - 1))
            top5.append(within * _binom_cdf(CAP - 1, n - 1, q))
        cut = _cutoff(cal, BANDS[0][1], n)
        strong_pairs += int((others <= cut).sum())
        pairs += len(others)
    per_pair = strong_pairs / pairs
    return {
        "top1": fmean(top1),
        "top5": fmean(top5),
        "strong": -math.expm1(n * math.log1p(-per_pair)) if per_pair < 1 else 1.0,
        "strong_pairs": strong_pairs,
        "pairs": pairs,
        "total": total,
    }


_CUTOFFS: dict[tuple[int, float, int], float] = {}


def _cutoff(cal: Calibration, limit: float, size: int) -> float:
    key = (id(cal), limit, size)
    if key not in _CUTOFFS:
        _CUTOFFS[key] = cal.cutoff(limit, size)
    return _CUTOFFS[key]


def _binom_cdf(k: int, n: int, q: float) -> float:
    if q <= 0:
        return 1.0
    if q >= 1:
        return 0.0
    log_q, log_p = math.log(q), math.log1p(-q)
    total = 0.0
    for j in range(k + 1):
        total += math.exp(
            math.lgamma(n + 1)
            - math.lgamma(j + 1)
            - math.lgamma(n - j + 1)
            + j * log_q
            + (n - j) * log_p
        )
    return min(1.0, total)


def multi_photo(ppl: People, cals: list[Calibration]) -> tuple[int, float, float]:
    """Notices with two photos (the person's first two) against one photo: share of
    enrolled probes (third and later photos) whose person is shown in the top CAP,
    all people in the gallery. Returns (probes, one photo, two photos)."""
    total = len(ppl.names)
    seconds = np.full(total, -1)
    for k in range(total):
        rows = np.flatnonzero(ppl.person == k)
        if len(rows) >= 3:
            seconds[k] = rows[1]
    one = two = probes = 0
    for r in range(len(ppl.rows)):
        i = ppl.person[r]
        if seconds[i] < 0 or r in (ppl.first[i], seconds[i]):
            continue
        cal = cals[1 - ppl.fold[i]]
        d1 = ppl.distance[r, ppl.first]
        d2 = d1.copy()
        has_two = seconds >= 0
        d2[has_two] = np.minimum(d1[has_two], ppl.distance[r, seconds[has_two]])
        everyone = np.arange(total)
        probes += 1
        one += int(i in everyone[_shown(d1, everyone, None, ppl, cal.loose_bound, False)])
        two += int(i in everyone[_shown(d2, everyone, None, ppl, cal.loose_bound, False)])
    return probes, one / probes, two / probes


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %" if x < 0.1 else f"{100 * x:.1f} %"


def report(
    enc: Encoded, sexes: dict[str, str], ages: dict[str, tuple[int, int]] | None = None
) -> list[str]:
    """Markdown lines of the open-set section (``ages``: labelled age band at photo
    time per identity, bench/lfw_age.csv; without it no *age known* rows)."""
    ppl = people(enc, sexes, ages)
    cals = fold_calibrations(enc, ppl)
    total = len(ppl.names)
    sizes = [100, total]
    lines = [
        "## Open set with distractors: what reviewers are shown",
        "",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        f"{total} people ({int((ppl.sex != 'unknown').sum())} with a recorded sex, "
        f"{int((~np.isnan(ppl.age[:, 0])).sum())} with an approximate age), "
        f"{len(ppl.rows)} photos. Calibrations: fold 0 loose bound "
        f"{cals[0].loose_bound:.2f}, fold 1 {cals[1].loose_bound:.2f}.",
        "",
        "| gallery (people) | rule | enrolled in top 1 shown | in top 5 shown | "
        "candidates shown per probe (max) | people in no notice given any candidate | "
        "… given a strong one | strong: stated / measured | possible or better: "
        "stated / measured |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rules = [("service, sex and age unknown", False, False, 0.0)]
    if sexes:
        rules.append(("service, sex known", True, False, 0.0))
    if sexes and ages:
        rules.append(("service, sex and age known", True, True, 0.0))
        rules.append((AGE_ERROR_ROW, True, True, AGE_ERROR_YEARS))
    tallies: dict[tuple[int, str], Tally] = {}
    for n in sizes:
        for label, sex, age, error in rules:
            t = evaluate(
                ppl, cals, n, sex=sex, age=age, age_error=error, rng=np.random.default_rng(n)
            )
            tallies[(n, label)] = t
            strong = t.band_hits["strong"] / t.open_probes
            possible = t.band_hits["possible"] / t.open_probes
            lines.append(
                f"| {n:,} | {label} | {_pct(t.top1 / t.enrolled)} | {_pct(t.top5 / t.enrolled)} "
                f"| {t.shown / t.probes:.2f} ({t.most_shown}) | {_pct(t.open_any / t.open_probes)} "
                f"| {_pct(strong)} | 1 % / {_pct(strong)} | 10 % / {_pct(possible)} |"
            )
        b = baseline(ppl, n, np.random.default_rng(n))
        lines.append(
            f"| {n:,} | baseline: raw distance ≤ {BASELINE}, uncapped | "
            f"{_pct(b.top1 / b.enrolled)} | {_pct(b.top5 / b.enrolled)} "
            f"| {b.shown / b.probes:.2f} ({b.most_shown}) | {_pct(b.open_any / b.open_probes)} "
            "| — | — | — |"
        )
    for n in (total, *EXTRAPOLATED):
        x = extrapolate(ppl, cals, n)
        what = "model, to check against the measured row" if n == total else "extrapolated"
        lines.append(
            f"| {n:,} ({what}) | service, sex and age unknown | {_pct(x['top1'])} "
            f"| {_pct(x['top5'])} | ≤ {CAP} | — | {_pct(x['strong'])} "
            f"({x['strong_pairs']:,} of {x['pairs']:,} probe pairs under the cut-off) "
            "| 1 % / — | — |"
        )
    probes, one, two = multi_photo(ppl, cals)
    lines += [
        "",
        f"Several photos per notice: {probes} enrolled probes of people with 3 or more "
        f"photos, all {total} people in the gallery; the person is in the top {CAP} shown "
        f"for {_pct(one)} with one notice photo and {_pct(two)} with two (best pair).",
        "",
    ]
    if sexes and ages:
        lines += [*_age_effect(tallies, sizes), ""]
    return lines


def _age_effect(tallies: dict[tuple[int, str], Tally], sizes: list[int]) -> list[str]:
    """Markdown table: what knowing the age changed against sex known, in probes."""
    lines = [
        "What age adds to sex known, in probes (same galleries and probes; age only "
        "reorders, so candidates shown per probe and people in no notice given any "
        "candidate stay the same):",
        "",
        "| gallery (people) | the station's age estimate | enrolled in top 1 shown | "
        "in top 5 shown | people in no notice given a strong candidate |",
        "|---|---|---:|---:|---:|",
    ]
    for label, how in (
        ("service, sex and age known", "the label"),
        (AGE_ERROR_ROW, f"the label off by N(0, {AGE_ERROR_YEARS:.0f}) years"),
    ):
        for n in sizes:
            s, a = tallies[(n, "service, sex known")], tallies[(n, label)]
            lines.append(
                f"| {n:,} | {how} | {s.top1:,} → {a.top1:,} of {a.enrolled:,} "
                f"| {s.top5:,} → {a.top5:,} "
                f"| {s.band_hits['strong']:,} → {a.band_hits['strong']:,} of {a.open_probes:,} |"
            )
    return lines
