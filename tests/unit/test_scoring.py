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


def test_a_sure_sex_difference_filters_and_can_be_relaxed():
    from rescue.matching.scoring import excluded_by

    assert excluded_by(case(sex="male"), notice(sex="female")) == ["sex"]
    assert excluded_by(case(sex="male"), notice(sex="female"), filter_sex=False) == []
    assert excluded_by(case(sex="unknown"), notice(sex="female")) == []
    assert excluded_by(case(sex="female"), notice(sex="female")) == []
    # A reviewer relaxed the sex filter for the case or the notice (rescue.matching.filters).
    assert excluded_by(case(sex="male"), notice(sex="female"), relaxed={"sex"}) == []
    assert excluded_by(case(sex="male"), notice(sex="female"), relaxed=set()) == ["sex"]


@pytest.mark.parametrize(
    ("found", "last_seen", "result"),
    [
        ("四川省成都市锦江区 510104", "510104 锦江区春熙路", "same_county"),
        ("510104", "510107 武侯区", "same_prefecture"),
        ("510104", "511302 南充", "same_province"),
        ("510104", "110105 北京朝阳", "different_province"),
        ("成都市锦江区", "锦江区", "same"),
        ("成都", "北京", "different"),
        ("", "北京", "unknown"),
    ],
)
def test_place_relation_by_division_code(found, last_seen, result):
    breakdown = compute_score(
        case=case(found_place=found, dialect="四川话"),
        notice=notice(last_seen_place=last_seen),
        evidence=[face(0.3)],
        today=TODAY,
    )
    place = breakdown.components["place"]
    assert place["result"] == result
    assert place["factor"] == 1.0  # informative: people are found far from home
    assert place["case_dialect"] == "四川话"


def test_confidence_depends_on_gallery_size_and_names_the_photo_pair():
    from rescue.matching.calibration import default_calibration

    calibration = default_calibration()
    values = {"gallery_size": 100, "case_photo_id": 3, "notice_photo_id": 9}
    near = EvidenceInput(kind="face", values=values, distance=0.40, threshold=0.53)
    small = compute_score(
        case=case(), notice=notice(), evidence=[near], today=TODAY, calibration=calibration
    )
    assert small.components["face"]["case_photo_id"] == 3
    assert small.components["face"]["notice_photo_id"] == 9
    assert small.components["confidence"]["band"] == "strong"
    big = EvidenceInput(
        kind="face", values={**values, "gallery_size": 100_000}, distance=0.40, threshold=0.53
    )
    large = compute_score(
        case=case(), notice=notice(), evidence=[big], today=TODAY, calibration=calibration
    )
    # The same distance means less among 100,000 people.
    assert large.components["confidence"]["band"] != "strong"
    assert (
        large.components["confidence"]["false_match_rate"]
        > 100 * small.components["confidence"]["false_match_rate"] / 2
    )
    assert small.score == large.score  # the band informs; the score ranks


def test_every_check_result_is_one_the_pages_know():
    """compute_score gives only results listed in RESULTS_OF_CHECKS (put into words
    by the comparison page), over pairs covering each branch."""
    from rescue.matching.scoring import RESULTS_OF_CHECKS

    pairs = [
        (case(), notice()),
        (case(sex="female", found_place="成都市武侯区"), notice(last_seen_place="重庆")),
        (
            case(found_at=datetime(2020, 5, 1, tzinfo=UTC), found_place="成都市武侯区"),
            notice(age_when_missing=10, missing_since=date(2021, 1, 1), last_seen_place="成都"),
        ),
    ]
    for case_row, notice_row in pairs:
        result = compute_score(case=case_row, notice=notice_row, evidence=[face(0.3)], today=TODAY)
        for check, known in RESULTS_OF_CHECKS.items():
            assert result.components[check]["result"] in known, (check, result.components)
