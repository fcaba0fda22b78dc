"""Ranked, capped and calibrated candidates (issue 16), through the HTTP API and a
real worker: the best MATCH_CANDIDATES by the full score, sure differences
filtered, the owner searched as one identity, a confidence band per candidate."""

from __future__ import annotations

from typing import Any

from tests.integration.helpers import candidates, new_case, new_notice, upload, upload_file
from tests.support import BIDEN, OBAMA_A, OBAMA_B


async def _notice_with_photo(client: Any, staff: dict[str, str], **fields: Any) -> dict[str, Any]:
    notice = await new_notice(client, staff, **fields)
    await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    return notice


async def test_best_five_by_full_score_sex_filtered_with_confidence(client, staff):
    plausible = {"missing_since": "2015-03-01", "age_when_missing": 45}
    fitting = [await _notice_with_photo(client, staff, **plausible) for _ in range(5)]
    # Same face, but a child when missing six years ago: the full score ranks it last.
    child = await _notice_with_photo(client, staff, missing_since="2020-01-01", age_when_missing=5)
    woman = await _notice_with_photo(client, staff, sex="female", **plausible)

    case = await new_case(client, staff, sex="male", estimated_age=55)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    found = await candidates(client, staff, "case", case["id"])

    assert len(found) == 5  # MATCH_CANDIDATES, although 7 notices show the same face
    assert {c["notice_id"] for c in found} == {n["id"] for n in fitting}
    assert child["id"] not in {c["notice_id"] for c in found}
    assert woman["id"] not in {c["notice_id"] for c in found}  # sure difference: removed
    for c in found:
        confidence = c["confidence"]
        assert confidence["band"] in {"strong", "possible", "weak"}
        assert confidence["label"] == confidence["band"]  # English for this client
        assert confidence["gallery_size"] == 7  # people with a face among open notices
        assert 0 < confidence["false_match_rate"] < 1
        assert "East Asian" in confidence["warning"]  # the shipped LFW default
        assert "searches of 7 people" in confidence["summary"]
    # The same distance in a gallery of 7: its rate is about 7 × the per-pair rate.
    top = found[0]["confidence"]
    assert top["false_match_rate"] <= 7 * top["pair_rate"] + 1e-12
    assert top["false_match_rate"] >= top["pair_rate"]

    # zh_CN readers get the band in Chinese.
    zh = await client.get(
        f"/api/cases/{case['id']}/candidates", headers={**staff, "Accept-Language": "zh-CN"}
    )
    assert zh.json()["items"][0]["confidence"]["label"] in {"强", "可能", "弱"}


async def test_several_photos_match_as_one_identity_and_name_the_pair(client, staff):
    notice = await new_notice(client, staff, missing_since="2015-03-01", age_when_missing=45)
    other_face = await upload_file(client, staff, "notice", notice["id"], BIDEN)
    same_face = await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    case = await new_case(client, staff)
    case_photo = await upload_file(client, staff, "case", case["id"], OBAMA_A)

    (candidate,) = await candidates(client, staff, "case", case["id"])
    assert candidate["notice_photo_id"] == same_face["id"] != other_face["id"]
    assert candidate["case_photo_id"] == case_photo["id"]
    detail = (await client.get(f"/api/candidates/{candidate['id']}", headers=staff)).json()
    face = detail["breakdown"]["components"]["face"]
    assert (face["case_photo_id"], face["notice_photo_id"]) == (case_photo["id"], same_face["id"])
    assert detail["breakdown"]["components"]["confidence"]["gallery_size"] == 1


async def test_a_face_too_poor_to_match_is_flagged_for_a_retake_not_matched(client, staff):
    import io

    from PIL import Image, ImageFilter

    from tests.support import FACES_DIR

    image = Image.open(FACES_DIR / OBAMA_B).convert("RGB")
    out = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(0.018 * image.width)).save(out, format="JPEG")
    case = await new_case(client, staff)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    notice = await new_notice(client, staff, missing_since="2015-03-01", age_when_missing=45)
    blurred = await upload(client, staff, "notice", notice["id"], out.getvalue())
    assert blurred["status"] == "processed"
    assert blurred["failure_reason"] == "retake: blurred"
    assert await candidates(client, staff, "case", case["id"]) == []

    await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    (candidate,) = await candidates(client, staff, "case", case["id"])
    quality = candidate["confidence"]["face_quality"]
    assert quality["case"]["retake"] == []
    assert quality["notice"]["retake"] == []
    assert quality["notice"]["width_px"] > 100
    assert quality["case"]["sharpness"] > 100
