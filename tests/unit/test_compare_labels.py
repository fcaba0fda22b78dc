"""The comparison page labels every evidence value and score check in Chinese
(issue 10 item 7): no raw key (``score:``, ``system:``) or result word reaches it."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from rescue.i18n import use_locale
from rescue.matching.pages import evidence_rows, explain, score_components
from rescue.matching.schemas import VALUE_TYPES
from rescue.matching.scoring import RESULTS_OF_CHECKS


def _ascii_word(text: str) -> bool:
    """A lower-case English word or key (``score``, ``report_number``); "DNA" is fine."""
    return re.search(r"[a-z_]{3,}", text) is not None


@pytest.mark.parametrize("kind", sorted(VALUE_TYPES, key=str))
def test_every_value_of_every_evidence_kind_has_a_chinese_label(kind: Any) -> None:
    fields = msgspec.structs.fields(VALUE_TYPES[kind])
    with use_locale("zh_CN"):
        values = {f.name: "x" for f in fields}
        rows = evidence_rows(values) + evidence_rows(values, technical=True)
    assert [title for title, _v in rows if _ascii_word(title) or "其他信息" in title] == []


def test_face_evidence_values_including_quality_are_labelled() -> None:
    quality = {"width_px": 120, "sharpness": 80.5, "yaw": 0.1, "retake": ["blurred"]}
    values = {
        "distance": 0.41,
        "threshold": 0.6,
        "model": "dlib-resnet",
        "case_photo_id": 1,
        "notice_photo_id": 2,
        "gallery_size": 300,
        "face_quality": {"case": quality, "notice": quality},
    }
    with use_locale("zh_CN"):
        rows = evidence_rows(values)
        technical = evidence_rows(values, technical=True)
    # The reviewer reads the distance; the method's details are folded (技术细节).
    assert [title for title, _v in rows] == ["人脸距离"]
    assert {title for title, _v in technical} >= {"人脸模型", "人脸质量"}
    text = " ".join(f"{t} {v}" for t, v in rows + technical).replace("dlib-resnet", "")
    assert not _ascii_word(text), text


def test_every_check_result_of_the_score_is_in_words() -> None:
    breakdown = {
        "score": 0.3,
        "evidence": 0.6,
        "components": {
            check: {"result": result, "factor": 0.5}
            for check, results in RESULTS_OF_CHECKS.items()
            for result in results[-1:]
        },
        "flags": [],
    }
    with use_locale("zh_CN"):
        for check, results in RESULTS_OF_CHECKS.items():
            for result in results:
                breakdown["components"][check] = {"result": result, "factor": 1.0}
                rows = score_components(breakdown)
                assert not any(_ascii_word(cell) for row in rows for cell in row), rows
        lines = explain(breakdown)
    assert not any(_ascii_word(line) for line in lines), lines
