"""Pure rules: what the audit trail records, and which stations a caller sees."""

from __future__ import annotations

import pytest

from rescue.audit.services import audit_kind, describe
from rescue.users.services import Principal
from rescue.users.tables import Role


@pytest.mark.parametrize(
    ("method", "route", "kind"),
    [
        ("POST", "/api/cases", "write"),
        ("DELETE", "/api/tokens/{token_id}", "write"),
        ("PATCH", "/api/cases/{case_id}", "write"),
        ("POST", "/auth/login", "write"),
        ("GET", "/api/photos/{photo_id}", "read"),
        ("GET", "/api/cases/{case_id}/candidates", "read"),
        ("GET", "/api/candidates/{candidate_id}", "read"),
        ("GET", "/api/faces/{face_id}", "read"),
        ("GET", "/api/cases/{case_id}", None),
        ("GET", "/api/notices", None),
        ("GET", "/public/announcements/{announcement_id}/photo", None),
        ("POST", "/public/anything", None),
        ("OPTIONS", "/api/photos/{photo_id}", None),
    ],
)
def test_audit_kind(method, route, kind):
    assert audit_kind(method, route) == kind


def test_describe_names_the_last_path_parameter():
    assert describe("/api/photos/{photo_id}", {"photo_id": 7}) == ("photo", "7")
    assert describe("/api/cases/{case_id}/photos", {"case_id": 3}) == ("case", "3")
    assert describe("/api/cases", {}) == ("case", None)
    assert describe("/api/admin/users/{user_id}/deactivate", {"user_id": 2}) == ("user", "2")


def _p(role: Role, station: str = "north", scope: tuple[str, ...] = ()) -> Principal:
    return Principal(user_id=1, username="u", role=role, station=station, scope=scope)


def test_visible_stations():
    assert _p(Role.admin).visible_stations() is None
    assert _p(Role.station_staff, scope=("*",)).visible_stations() == ["north"]  # staff: own only
    assert _p(Role.reviewer).visible_stations() == ["north"]
    assert _p(Role.police_liaison, scope=("south", "east")).visible_stations() == [
        "east",
        "north",
        "south",
    ]
    assert _p(Role.reviewer, scope=("*",)).visible_stations() is None
    assert not _p(Role.station_staff).sees_station("south")
    assert _p(Role.admin).sees_station("south")
