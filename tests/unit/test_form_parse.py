"""rescue.web.forms.parse names every problem of a submit at once (issue 10 item 3)."""

from __future__ import annotations

from rescue.escorts.schemas import ReturnPlanCreate
from rescue.i18n import use_locale
from rescue.matching.schemas import FamilyConfirmationIn
from rescue.web.forms import parse


def test_every_empty_required_field_is_named_as_required():
    with use_locale("zh_CN"):
        data, errors = parse(ReturnPlanCreate, {"destination": " ", "reason": ""}, escort_staff=[])
    assert data is None
    assert errors == {
        "destination": "此项必填。",
        "transport": "此项必填。",
        "escort_staff": "此项必填。",
        "planned_on": "此项必填。",
    }


def test_type_problems_and_missing_fields_come_together():
    with use_locale("zh_CN"):
        data, errors = parse(
            FamilyConfirmationIn, {"method": "pigeon", "confirmed_at": "tomorrow-ish"}
        )
    assert data is None
    assert set(errors) == {"confirmer_name", "relationship", "method", "confirmed_at"}
    assert errors["confirmer_name"] == "此项必填。"


def test_cross_field_check_runs_beside_field_problems():
    from rescue.cases.schemas import CaseCreate
    from rescue.cases.services import intake_problems

    with use_locale("zh_CN"):
        data, errors = parse(
            CaseCreate,
            {"height_cm": "500", "age_low": "60", "age_high": "40"},
            check=intake_problems,
        )
    assert data is None
    assert set(errors) == {"height_cm", "age_high", "found_place", "brought_by"}
    with use_locale("zh_CN"):
        data, errors = parse(CaseCreate, {"brought_by": "本人"}, check=intake_problems)
    assert errors == {}
    assert data is not None
