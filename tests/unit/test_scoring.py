"""The candidate score formula (rescue.matching.scoring, docs/scoring.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rescue.matching.scoring import EvidenceInput, compute_score, evidence_strength

TODAY = date(2026, 11, 29)
ADMITTED = datetime(2026, 11, 1, tzinfo=UTC)


def case(**fields):
    return {"sex": "male", "estimated_age": 50, "admitted_at": ADMITTED, **fields}


def notice(**fields):
    return {"sex": "male", **fields}


def face(distance: float) -> EvidenceInput:
    return EvidenceInput(kind="face", values={}, distance=distance, threshold=0.6)


@pytest.mark.parametrize(
    ("item", "strength"),
    [
        (face(0.0), 1.0),
        (face(0.6), 0.5),
        (face(1.5), 0.0),
        (EvidenceInput("police_dna", {"likelihood_ratio": 1e6}), 1.0),
        (EvidenceInput("police_dna", {"likelihood_ratio": 1e3}), 0.5),
        (EvidenceInput("police_dna", {"likelihood_ratio": 0.5}), 0.0),
        (EvidenceInput("police_face", {"score": 0.8}), 0.8),
        (EvidenceInput("staff", {"summary": "x"}), 0.3),
    ],
)
def test_evidence_strength(item, strength):
    assert evidence_strength(item) == pytest.approx(strength)


def test_sources_corroborate():
    one = compute_score(case=case(), notice=notice(), evidence=[face(0.4)], today=TODAY)
    two = compute_score(
        case=case(),
        notice=notice(),
        evidence=[face(0.4), EvidenceInput("police_face", {"score": 0.5})],
        today=TODAY,
    )
    assert two.score > one.score
    # 1 − (1 − 0.6667)(1 − 0.5)
    assert two.evidence == pytest.approx(1 - (1 - (1 - 0.4 / 1.2)) * 0.5, abs=1e-4)


def test_plausible_pair_has_no_flags():
    result = compute_score(
        case=case(found_at=datetime(2020, 5, 1, tzinfo=UTC), found_place="成都市武侯区"),
        notice=notice(age_when_missing=44, missing_since=date(2020, 1, 1), last_seen_place="成都"),
        evidence=[face(0.3)],
        today=TODAY,
    )
    assert result.flags == []
    assert result.components["age"]["result"] == "plausible"
    assert result.components["dates"]["result"] == "consistent"
    assert result.components["place"]["result"] == "same"
    assert result.score == pytest.approx(result.evidence)


def test_sex_mismatch_flags_and_lowers():
    base = compute_score(case=case(), notice=notice(), evidence=[face(0.3)], today=TODAY)
    other = compute_score(
        case=case(sex="female"), notice=notice(), evidence=[face(0.3)], today=TODAY
    )
    assert other.flags == ["sex_mismatch"]
    assert other.score == pytest.approx(base.score * 0.5, abs=1e-3)
    assert other.score > 0  # flagged, never hidden


@pytest.mark.parametrize(
    ("notice_fields", "result"),
    [
        ({"date_of_birth": date(1976, 6, 1)}, "plausible"),  # 50 now
        ({"date_of_birth": date(1962, 6, 1)}, "stretch"),  # 64.5 ± 1 vs 40..60
        ({"date_of_birth": date(1958, 1, 1)}, "unlikely"),  # 68.9 ± 1: gap 7.9
        ({"date_of_birth": date(2010, 1, 1)}, "impossible"),  # a teenager now
        ({"age_when_missing": 75}, "impossible"),  # already older when missing
        ({"age_when_missing": 30, "missing_since": date(2006, 1, 1)}, "plausible"),
    ],
)
def test_age_plausibility(notice_fields, result):
    scored = compute_score(
        case=case(), notice=notice(**notice_fields), evidence=[face(0.3)], today=TODAY
    )
    assert scored.components["age"]["result"] == result
    if result != "plausible":
        assert f"age_{result}" in scored.flags


def test_case_ages_since_admission():
    admitted_long_ago = case(estimated_age=40, admitted_at=datetime(2016, 11, 29, tzinfo=UTC))
    scored = compute_score(
        case=admitted_long_ago,
        notice=notice(date_of_birth=date(1976, 11, 1)),
        evidence=[face(0.3)],
        today=TODAY,
    )
    # 40 ± 10 (VISUAL_AGE_ERROR_YEARS) at admission, ten years ago.
    assert scored.components["age"]["case_age_now"][0] == pytest.approx(40, abs=0.1)
    assert scored.components["age"]["result"] == "plausible"


def test_found_before_missing_is_flagged():
    scored = compute_score(
        case=case(found_at=datetime(2019, 1, 1, tzinfo=UTC)),
        notice=notice(missing_since=date(2020, 1, 1)),
        evidence=[face(0.3)],
        today=TODAY,
    )
    assert "found_before_missing" in scored.flags


def test_lead_without_case():
    scored = compute_score(
        case=None,
        notice=notice(),
        evidence=[EvidenceInput("police_dna", {"likelihood_ratio": 1e7})],
        today=TODAY,
    )
    assert scored.score == 1.0
    assert scored.flags == []
