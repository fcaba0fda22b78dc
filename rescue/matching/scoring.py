"""The candidate score and its breakdown (pure functions; docs/scoring.md).

Formula::

    score = clamp(E × S × A × D × P, 0, 1)

**E, evidence strength** (noisy-OR of the strongest record of each kind, so
independent sources corroborate each other): ``E = 1 − Π_k (1 − s_k)`` with

- ``face``: ``s = clamp(1 − d / (2·T), 0, 1)``; ``d`` the best face distance
  over all photo pairs of both sides, ``T`` the threshold in force when it was
  measured (0.6: face_recognition's documented default). ``d = T`` gives 0.5.
- ``police_dna``: ``s = clamp(log10(LR) / 6, 0, 1)``; LR ≥ 10⁶ counts as
  certain ("extremely strong support", ENFSI Guideline for Evaluative Reporting
  in Forensic Science, 2015, verbal scale), LR = 10³ gives 0.5.
- ``police_face``: ``s = score`` as reported by the police system (0..1).
- ``announcement_clue``, ``staff``: ``s = 0.3`` (a lead without a measurement).

**Plausibility factors** (1 when compatible or unknown; never 0, so a flagged
candidate still appears, lower in the queue, with its flag):

- ``S`` sex: 0.5 and flag ``sex_mismatch`` when both are known and differ.
- ``A`` age: the case's age range now (from ``birth_date_estimate`` ± 1 year when
  staff have recorded one, else ``age_low..age_high``, else
  ``estimated_age ± 10`` years: visual age estimation by adults has a mean
  absolute error of 5–8 years (Voelkle et al. 2012, Psychology and Aging 27(2)),
  so ± 5 excluded about 4 in 10 true matches from "plausible"; with ± 10 the full
  score ranks better than the face distance alone (docs/accuracy.md: rank-1
  96.0 % vs 94.8 %, true-accept at 0.1 % false-accept 93.6 % vs 89.7 %, on
  synthetic records with an N(0, 7)-year estimate error; ± 5 gave 88.0 % rank-1))
  against the notice person's expected age now: from
  ``date_of_birth`` (± 1 year), else ``age_when_missing`` plus the years since
  ``missing_since`` (± 1 year); ``age_when_missing`` without ``missing_since``
  only gives a lower bound. Gap g (years) between the two intervals:
  g = 0 → 1; g ≤ 5 → 0.8 (``age_stretch``); g ≤ 10 → 0.6 (``age_unlikely``);
  g > 10 → 0.3 and flag ``age_impossible``.
- ``D`` dates: 0.5 and flag ``found_before_missing`` when the case was found
  (``found_at``, else admission) before the notice's ``missing_since``.
- ``P`` place: informative only (people in care are often found far from home):
  1.0. The breakdown compares administrative division codes (GB/T 2260, six
  digits: 2 province, 2 prefecture, 2 county) written in the places when present:
  ``same_county`` / ``same_prefecture`` / ``same_province`` / ``different_province``
  by the longest shared prefix; without codes, ``same`` when one place name
  contains the other. The case's ``dialect`` is shown beside the notice's place.

**Filters** (:func:`excluded_by`), applied before ranking when matching a new photo:
a *sure* difference removes the pair instead of lowering it. Only sex is sure
(recorded by staff on both sides); age, dates and places are estimates, so they
only lower the rank. ``MATCH_FILTER_SEX=false`` relaxes the filter everywhere
(then a re-match brings the pairs back, flagged ``sex_mismatch``); a reviewer
relaxes it for one case or notice (rescue.matching.filters), with a reason.

**Confidence** (:func:`confidence_of`, not part of the score): what the face
distance means at the size of the gallery it was found in, from the calibration
of the model (rescue.matching.calibration): band ``strong`` / ``possible`` /
``weak`` and the chance that someone who is not the person scores this well in
a gallery of this size.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from rescue import clock

if TYPE_CHECKING:
    from rescue.matching.calibration import Calibration

__all__ = [
    "FIXED_LEAD_STRENGTH",
    "Breakdown",
    "EvidenceInput",
    "compute_score",
    "confidence_of",
    "evidence_strength",
    "excluded_by",
]

FIXED_LEAD_STRENGTH = 0.3
VISUAL_AGE_ERROR_YEARS = 10
FLAG_FACTORS = {
    "sex_mismatch": 0.5,
    "found_before_missing": 0.5,
}
#: Every ``result`` each plausibility check of :func:`compute_score` can give
#: (``components[check]["result"]``); pages put each one into words.
RESULTS_OF_CHECKS: dict[str, tuple[str, ...]] = {
    "sex": ("unknown", "compatible", "incompatible"),
    "age": ("unknown", "plausible", "stretch", "unlikely", "impossible"),
    "dates": ("unknown", "consistent", "found_before_missing"),
    "place": (
        "unknown",
        "same",
        "different",
        "same_county",
        "same_prefecture",
        "same_province",
        "different_province",
    ),
}


@dataclass(frozen=True)
class EvidenceInput:
    kind: str
    values: dict[str, Any]
    distance: float | None = None
    threshold: float | None = None


@dataclass
class Breakdown:
    """The score and every component that went into it (JSON-ready via ``as_dict``)."""

    score: float
    evidence: float
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "evidence": self.evidence,
            "components": self.components,
            "flags": self.flags,
        }


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def evidence_strength(item: EvidenceInput) -> float:
    """Strength 0..1 of one evidence record (see the module docstring)."""
    if item.kind == "face":
        if item.distance is None:
            return 0.0
        threshold = item.threshold or 0.6
        return _clamp(1 - item.distance / (2 * threshold))
    if item.kind == "police_dna":
        lr = float(item.values.get("likelihood_ratio") or 0)
        return _clamp(math.log10(lr) / 6) if lr > 1 else 0.0
    if item.kind == "police_face":
        return _clamp(float(item.values.get("score") or 0))
    return FIXED_LEAD_STRENGTH


def _years_between(earlier: date, later: date) -> float:
    return (later - earlier).days / 365.2425


def _case_age_now(case: dict[str, Any], today: date) -> tuple[float, float] | None:
    """The case's age range today: from a recorded birth-date estimate, else the
    admission estimate plus the years since."""
    birth: date | None = case.get("birth_date_estimate")
    if birth is not None:
        age = _years_between(birth, today)
        return age - 1, age + 1
    low, high, est = case.get("age_low"), case.get("age_high"), case.get("estimated_age")
    if low is None and high is None and est is None:
        return None
    if low is None and high is None:
        assert est is not None
        lo, hi = est - VISUAL_AGE_ERROR_YEARS, est + VISUAL_AGE_ERROR_YEARS
    else:
        lo = low if low is not None else (est if est is not None else high)
        hi = high if high is not None else (est if est is not None else low)
    admitted: datetime | None = case.get("admitted_at")
    aged = max(0.0, _years_between(admitted.date(), today)) if admitted else 0.0
    return float(lo) + aged, float(hi) + aged


def _notice_age_now(notice: dict[str, Any], today: date) -> tuple[float, float, str] | None:
    dob: date | None = notice.get("date_of_birth")
    if dob is not None:
        age = _years_between(dob, today)
        return age - 1, age + 1, "from date_of_birth"
    when = notice.get("age_when_missing")
    since: date | None = notice.get("missing_since")
    if when is not None and since is not None:
        age = when + _years_between(since, today)
        return age - 1, age + 1, "age_when_missing + years since missing_since"
    if when is not None:
        return float(when), math.inf, "at least age_when_missing (missing_since unknown)"
    return None


#: A six-digit administrative division code (GB/T 2260) inside a place text.
_DIVISION_CODE = re.compile(r"(?<!\d)([1-8]\d{5})(?!\d)")


def division_code(place: str) -> str | None:
    """The first GB/T 2260 administrative division code written in ``place``, if any."""
    found = _DIVISION_CODE.search(place or "")
    return found.group(1) if found else None


def _place_relation(case_place: str, notice_place: str) -> str:
    a_code, b_code = division_code(case_place), division_code(notice_place)
    if a_code and b_code:
        if a_code == b_code:
            return "same_county"
        if a_code[:4] == b_code[:4]:
            return "same_prefecture"
        if a_code[:2] == b_code[:2]:
            return "same_province"
        return "different_province"
    a, b = case_place.strip().lower(), notice_place.strip().lower()
    if not a or not b:
        return "unknown"
    return "same" if a in b or b in a else "different"


def excluded_by(
    case: dict[str, Any],
    notice: dict[str, Any],
    *,
    filter_sex: bool = True,
    relaxed: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """The filters that remove this (case, notice) pair before ranking: ``sex``
    when both sexes are recorded and differ, unless relaxed globally
    (``filter_sex=False``) or for this pair (``"sex" in relaxed``: a reviewer relaxed
    it for the case or the notice, rescue.matching.filters). Empty: keep it."""
    case_sex, notice_sex = case.get("sex") or "unknown", notice.get("sex") or "unknown"
    if "sex" in relaxed:
        return []
    if filter_sex and "unknown" not in (case_sex, notice_sex) and case_sex != notice_sex:
        return ["sex"]
    return []


def confidence_of(
    evidence: list[EvidenceInput], calibration: Calibration | None
) -> dict[str, Any] | None:
    """The confidence of the best face evidence that knows its gallery size
    (``values["gallery_size"]``, people searched), from ``calibration``; None
    without one."""
    faces = [
        e
        for e in evidence
        if e.kind == "face" and e.distance is not None and e.values.get("gallery_size")
    ]
    if not faces or calibration is None:
        return None
    top = min(faces, key=lambda e: e.distance or 0.0)
    assert top.distance is not None
    confidence = calibration.confidence(top.distance, int(top.values["gallery_size"]))
    confidence["face_quality"] = top.values.get("face_quality") or {}
    return confidence


def compute_score(
    *,
    case: dict[str, Any] | None,
    notice: dict[str, Any],
    evidence: list[EvidenceInput],
    today: date | None = None,
    calibration: Calibration | None = None,
) -> Breakdown:
    """Score a (case, notice) pair from its evidence and both records.

    Args:
        case: the case row (``sex``, ``estimated_age``, ``age_low``, ``age_high``,
            ``found_at``, ``admitted_at``, ``found_place``), or None for a lead
            without a case.
        notice: the notice row (``sex``, ``date_of_birth``, ``age_when_missing``,
            ``missing_since``, ``last_seen_place``).
        evidence: every evidence record of the candidate.
        calibration: the face model's calibration; adds ``components["confidence"]``
            (:func:`confidence_of`) when given.

    Returns:
        A :class:`Breakdown`; ``score`` in 0..1, higher is better.
    """
    today = today or clock.today()
    components: dict[str, dict[str, Any]] = {}
    flags: list[str] = []

    best: dict[str, float] = {}
    for item in evidence:
        best[item.kind] = max(best.get(item.kind, 0.0), evidence_strength(item))
    remaining = 1.0
    for strength in best.values():
        remaining *= 1 - strength
    evidence_score = 1 - remaining
    components["evidence"] = {
        "value": round(evidence_score, 4),
        "by_kind": {k: round(v, 4) for k, v in sorted(best.items())},
        "rule": "1 − Π(1 − strongest strength per kind)",
    }
    faces = [e for e in evidence if e.kind == "face" and e.distance is not None]
    if faces:
        top = min(faces, key=lambda e: e.distance or 0.0)
        components["face"] = {
            "distance": top.distance,
            "threshold": top.threshold,
            "strength": round(evidence_strength(top), 4),
            "rule": "1 − d / (2·threshold)",
            "case_photo_id": top.values.get("case_photo_id"),
            "notice_photo_id": top.values.get("notice_photo_id"),
        }
    confidence = confidence_of(evidence, calibration)
    if confidence is not None:
        components["confidence"] = confidence
    factor = 1.0

    if case is None:
        components["case"] = {"note": "lead without a case: sex, age and dates not compared"}
        return Breakdown(round(_clamp(evidence_score), 4), round(evidence_score, 4), components)

    case_sex, notice_sex = case.get("sex") or "unknown", notice.get("sex") or "unknown"
    if "unknown" in (case_sex, notice_sex):
        sex: dict[str, Any] = {
            "case": case_sex,
            "notice": notice_sex,
            "result": "unknown",
            "factor": 1.0,
        }
    elif case_sex == notice_sex:
        sex = {"case": case_sex, "notice": notice_sex, "result": "compatible", "factor": 1.0}
    else:
        sex = {"case": case_sex, "notice": notice_sex, "result": "incompatible", "factor": 0.5}
        flags.append("sex_mismatch")
    components["sex"] = sex
    factor *= sex["factor"]

    case_age = _case_age_now(case, today)
    notice_age = _notice_age_now(notice, today)
    if case_age is None or notice_age is None:
        age: dict[str, Any] = {"result": "unknown", "factor": 1.0}
    else:
        lo, hi, how = notice_age
        gap = max(0.0, case_age[0] - hi, lo - case_age[1])
        if gap == 0:
            result, age_factor = "plausible", 1.0
        elif gap <= 5:
            result, age_factor = "stretch", 0.8
        elif gap <= 10:
            result, age_factor = "unlikely", 0.6
        else:
            result, age_factor = "impossible", 0.3
        if result != "plausible":
            flags.append(f"age_{result}")
        age = {
            "case_age_now": [round(case_age[0], 1), round(case_age[1], 1)],
            "notice_age_now": [round(lo, 1), None if math.isinf(hi) else round(hi, 1)],
            "notice_age_basis": how,
            "gap_years": round(gap, 1),
            "result": result,
            "factor": age_factor,
        }
    components["age"] = age
    factor *= age["factor"]

    since: date | None = notice.get("missing_since")
    found: datetime | None = case.get("found_at") or case.get("admitted_at")
    if since is None or found is None:
        dates: dict[str, Any] = {"result": "unknown", "factor": 1.0}
    elif found.date() < since:
        dates = {
            "found": found.date().isoformat(),
            "missing_since": since.isoformat(),
            "result": "found_before_missing",
            "factor": FLAG_FACTORS["found_before_missing"],
        }
        flags.append("found_before_missing")
    else:
        dates = {
            "found": found.date().isoformat(),
            "missing_since": since.isoformat(),
            "years_between": round(_years_between(since, found.date()), 1),
            "result": "consistent",
            "factor": 1.0,
        }
    components["dates"] = dates
    factor *= dates["factor"]

    components["place"] = {
        "case_found_place": case.get("found_place") or "",
        "notice_last_seen_place": notice.get("last_seen_place") or "",
        "case_division_code": division_code(case.get("found_place") or ""),
        "notice_division_code": division_code(notice.get("last_seen_place") or ""),
        "case_dialect": case.get("dialect") or "",
        "result": _place_relation(
            case.get("found_place") or "", notice.get("last_seen_place") or ""
        ),
        "factor": 1.0,
    }
    score = _clamp(evidence_score * factor)
    return Breakdown(round(score, 4), round(evidence_score, 4), components, flags)
