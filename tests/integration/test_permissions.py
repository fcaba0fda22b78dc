"""Who may call what: the route × role matrix, and station scoping.

EXPECTED below is the contract: one row per (method, route) under ``/api``. A
route added to the app without a row here fails
``test_every_api_route_has_an_expected_row``; add its row (roles that may call
it) when adding the route.

"Allowed" means the guard let the call through: the answer is 2xx, or a domain
error about the request itself (400 bad body, 404 unknown id, 409 state) —
never 401, 403 or 5xx. "Refused" means exactly 403. Without a token, or with a
revoked or expired one, every route answers 401.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import make_token
from tests.integration.helpers import new_case, new_notice, upload
from tests.support import no_face_jpeg

S, P, R, A = "station_staff", "police_liaison", "reviewer", "admin"
ROLES = (S, P, R, A)
ALL = frozenset(ROLES)

#: (method, route template) → roles allowed. The single expected matrix: extend it.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/cases"): ALL,
    ("POST", "/api/cases"): frozenset({S, A}),
    ("GET", "/api/cases/{case_id:int}"): ALL,
    ("GET", "/api/notices"): ALL,
    ("POST", "/api/notices"): frozenset({S, P, A}),
    ("GET", "/api/notices/{notice_id:int}"): ALL,
    ("POST", "/api/cases/{case_id:int}/photos"): frozenset({S, A}),
    ("POST", "/api/notices/{notice_id:int}/photos"): frozenset({S, P, A}),
    ("GET", "/api/photos/{photo_id:int}"): ALL,
    ("GET", "/api/cases/{case_id:int}/candidates"): ALL,
    ("GET", "/api/notices/{notice_id:int}/candidates"): ALL,
    ("GET", "/api/tokens"): ALL,
    ("DELETE", "/api/tokens/{token_id:int}"): ALL,
    ("GET", "/api/admin/users"): frozenset({A}),
    ("POST", "/api/admin/users"): frozenset({A}),
    ("POST", "/api/admin/users/{user_id:int}/deactivate"): frozenset({A}),
    ("PUT", "/api/admin/users/{user_id:int}/assignment"): frozenset({A}),
    ("GET", "/api/audit"): frozenset({A}),
    ("GET", "/api/cases/{case_id:int}/audit"): frozenset({S, A}),
    ("GET", "/api/cases/{case_id:int}/announcement"): ALL,
    ("POST", "/api/cases/{case_id:int}/announcement"): frozenset({S, A}),
    ("DELETE", "/api/cases/{case_id:int}/announcement"): frozenset({S, A}),
    # Candidates, evidence, review (issue 4)
    ("GET", "/api/candidates"): ALL,
    ("POST", "/api/candidates"): frozenset({S, P, A}),
    ("GET", "/api/candidates/{candidate_id:int}"): ALL,
    ("GET", "/api/candidates/{candidate_id:int}/compare"): ALL,
    ("POST", "/api/candidates/{candidate_id:int}/decision"): frozenset({R}),
    ("POST", "/api/candidates/{candidate_id:int}/family-confirmations"): frozenset({R}),
    ("POST", "/api/admin/rematch"): frozenset({A}),
    ("GET", "/api/admin/rematch/{run_id:int}"): frozenset({A}),
    ("GET", "/api/admin/rematch"): frozenset({A}),
    ("POST", "/api/admin/rematch/{run_id:int}/cancel"): frozenset({A}),
    ("POST", "/api/admin/reencode"): frozenset({A}),
    ("GET", "/api/admin/reencode/{run_id:int}"): frozenset({A}),
    # Matching filters a reviewer relaxes per case or notice (issue 16)
    ("GET", "/api/cases/{case_id:int}/match-filters"): ALL,
    ("GET", "/api/notices/{notice_id:int}/match-filters"): ALL,
    ("POST", "/api/cases/{case_id:int}/match-filters/{name:str}/{action:str}"): frozenset({R}),
    ("POST", "/api/notices/{notice_id:int}/match-filters/{name:str}/{action:str}"): frozenset({R}),
    # Workflow: placements, identity search, deadlines, escort home (issue 3)
    ("PATCH", "/api/cases/{case_id:int}"): frozenset({S, A}),
    ("POST", "/api/cases/{case_id:int}/transitions"): frozenset({S, A}),
    ("GET", "/api/cases/{case_id:int}/timeline"): ALL,
    ("GET", "/api/cases/{case_id:int}/alerts"): ALL,
    ("GET", "/api/alerts"): ALL,
    ("POST", "/api/cases/{case_id:int}/placements"): frozenset({S, A}),
    ("GET", "/api/cases/{case_id:int}/placements"): ALL,
    ("POST", "/api/placements/{placement_id:int}/end"): frozenset({S, A}),
    ("POST", "/api/placements/{placement_id:int}/documents"): frozenset({S, A}),
    ("GET", "/api/placement-documents/{document_id:int}"): frozenset({S, A}),
    ("POST", "/api/cases/{case_id:int}/announcements"): frozenset({S, A}),
    ("POST", "/api/cases/{case_id:int}/dna-requests"): frozenset({S, A}),
    ("POST", "/api/dna-requests/{action_id:int}/result"): frozenset({S, P, A}),
    ("POST", "/api/cases/{case_id:int}/police-checks"): frozenset({S, P, A}),
    ("POST", "/api/cases/{case_id:int}/interviews"): frozenset({S, A}),
    ("POST", "/api/cases/{case_id:int}/filings"): frozenset({S, A}),
    ("GET", "/api/cases/{case_id:int}/search-actions"): ALL,
    ("POST", "/api/cases/{case_id:int}/return-plan"): frozenset({S, A}),
    ("PUT", "/api/cases/{case_id:int}/return-plan"): frozenset({S, A}),
    ("POST", "/api/cases/{case_id:int}/handover"): frozenset({S, A}),
    ("GET", "/api/cases/{case_id:int}/handovers"): frozenset({S, P, A}),
    ("GET", "/api/handovers/{handover_id:int}"): frozenset({S, P, A}),
    ("POST", "/api/handovers/{handover_id:int}/approve"): frozenset({S, A}),
    ("GET", "/api/calendar"): frozenset({S, P, R, A}),
    ("POST", "/api/search-actions/{action_id:int}/void"): frozenset({S, A}),
    ("GET", "/api/reports/leavings"): frozenset({S, P, R, A}),
    ("GET", "/api/cases/{case_id:int}/identity"): frozenset({S, P, R, A}),
    ("PATCH", "/api/cases/{case_id:int}/identity"): frozenset({S, A}),
    ("PUT", "/api/calendar/{year:int}"): frozenset({A}),
    ("POST", "/api/cases/{case_id:int}/settlement-approvals"): frozenset({S, A}),
    ("GET", "/api/tasks"): ALL,
    ("POST", "/api/tasks/{task_id:int}/done"): frozenset({P, A}),
    # Online search requests (issue 14): the responsible station's staff moderate.
    ("GET", "/api/family-requests"): frozenset({S, A}),
    ("GET", "/api/family-requests/{request_id:int}"): frozenset({S, A}),
    ("POST", "/api/family-requests/{request_id:int}/decision"): frozenset({S, A}),
    # Duplicate intake (issue 13)
    ("GET", "/api/cases/{case_id:int}/duplicates"): ALL,
    ("POST", "/api/duplicates/{warning_id:int}/link"): frozenset({S, A}),
    ("POST", "/api/duplicates/{warning_id:int}/dismiss"): frozenset({S, A}),
    ("GET", "/api/pfif/export"): ALL,
    ("POST", "/api/pfif/import"): frozenset({S, P, A}),
    ("GET", "/api/notices/{notice_id:int}/pfif"): ALL,
    ("GET", "/api/import-templates/{kind:str}"): frozenset({S, P, A}),
    ("POST", "/api/import-runs"): frozenset({S, P, A}),
    ("GET", "/api/import-runs/{run_id:int}"): frozenset({S, P, A}),
    ("POST", "/api/import-runs/{run_id:int}/start"): frozenset({S, P, A}),
    # History entered later and backlog loads (issue 12 item 6): station staff, admin.
    ("POST", "/api/cases/{case_id:int}/history/placements"): frozenset({S, A}),
    ("POST", "/api/cases/{case_id:int}/history/status"): frozenset({S, A}),
    ("POST", "/api/cases/{case_id:int}/history/search-actions"): frozenset({S, A}),
    ("GET", "/api/backlog-template"): frozenset({S, A}),
    ("POST", "/api/backlog-runs"): frozenset({S, A}),
    ("GET", "/api/backlog-runs/{run_id:int}"): frozenset({S, A}),
    ("POST", "/api/backlog-runs/{run_id:int}/start"): frozenset({S, A}),
    ("GET", "/api/import-warnings"): ALL,
    ("GET", "/api/import-warnings/summary"): ALL,
    ("GET", "/api/import-warnings/csv"): ALL,
    ("POST", "/api/import-warnings/{warning_id:int}/verify"): frozenset({S, A}),
    ("GET", "/api/stats"): ALL,
    ("GET", "/api/stats/csv"): ALL,
    ("GET", "/api/stats/xlsx"): ALL,
    # The other station (issue 12 item 8): participation and 转送
    ("GET", "/api/cases/{case_id:int}/shared"): ALL,
    ("GET", "/api/stations"): ALL,
    ("GET", "/api/stations/incoming"): ALL,
    ("GET", "/api/stations/notices-elsewhere"): ALL,
    ("POST", "/api/cases/{case_id:int}/transfers"): frozenset({S, A}),
    ("GET", "/api/cases/{case_id:int}/transfers"): ALL,
    ("GET", "/api/cases/{case_id:int}/return-plan"): frozenset({S, P, A}),
    ("POST", "/api/handovers/{handover_id:int}/reception"): frozenset({S, A}),
    ("POST", "/api/handovers/{handover_id:int}/countersign"): frozenset({S, A}),
}

#: Answers that count as "allowed" (the guard passed; the handler answered).
ALLOWED_STATUSES = {200, 201, 202, 204, 400, 404, 409}
#: Path parameter values with nothing behind them (the handler then answers 404).
MISSING_ID = 987_654_321


def api_routes() -> list[tuple[str, str]]:
    from rescue.app import create_app

    found = []
    for route in create_app().routes:
        if not route.path.startswith("/api"):
            continue
        for method in getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}:
            found.append((method, route.path))
    return sorted(found)


def test_every_api_route_has_an_expected_row():
    routes = set(api_routes())
    assert routes - set(EXPECTED) == set(), "routes without a row in EXPECTED"
    assert set(EXPECTED) - routes == set(), "rows in EXPECTED for routes that do not exist"


def test_expected_matrix_matches_the_permission_table():
    """The matrix here and rescue.permissions.PERMISSIONS agree (guards read the table)."""
    from rescue.app import create_app
    from rescue.permissions import PERMISSIONS

    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                key = (method, route.path)
                if key not in EXPECTED:
                    continue
                names = [g.__name__ for g in handler.guards or []]
                actions = [n.removeprefix("allow_") for n in names if n.startswith("allow_")]
                assert len(actions) == 1, f"{key} must have exactly one allow() guard"
                roles = {
                    r.value for a, rs in PERMISSIONS.items() if a.value == actions[0] for r in rs
                }
                assert roles == set(EXPECTED[key]), key


async def _ids(client: Any, staff: dict[str, str]) -> dict[str, int]:
    from rescue.users.services import create_user, issue_token
    from rescue.users.tables import ApiToken

    case = await new_case(client, staff)
    notice = await new_notice(client, staff)
    photo = await upload(client, staff, "case", case["id"], no_face_jpeg(), wait=False)
    other = await create_user(username=f"other-{case['id']}", role=S, station="north")
    await issue_token(user_id=other, ttl_days=1)
    token = await ApiToken.select(ApiToken.id).where(ApiToken.user == other).first()
    return {
        "case_id": case["id"],
        "notice_id": notice["id"],
        "photo_id": photo["id"],
        "user_id": other,
        "token_id": token["id"],
    }


def _path(template: str, ids: dict[str, int]) -> str:
    import re

    return re.sub(r"\{(\w+):\w+\}", lambda m: str(ids.get(m.group(1), MISSING_ID)), template)


async def _call(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    if method in {"POST", "PUT", "PATCH"}:
        return await client.request(method, path, json={}, headers=headers)
    return await client.request(method, path, headers=headers)


async def test_route_role_matrix(client):
    tokens = {role: {"Authorization": f"Bearer {await make_token(role)}"} for role in ROLES}
    ids = await _ids(client, tokens[S])
    problems = []
    for method, template in api_routes():
        path = _path(template, ids)
        for role in ROLES:
            response = await _call(client, method, path, tokens[role])
            allowed = role in EXPECTED[(method, template)]
            ok = (
                response.status_code in ALLOWED_STATUSES if allowed else response.status_code == 403
            )
            if not ok:
                problems.append(
                    f"{method} {template} as {role}: {response.status_code} "
                    f"(expected {'allowed' if allowed else '403'}) {response.text[:200]}"
                )
    assert problems == []


async def test_no_revoked_or_expired_token_gets_401_everywhere(client):
    from rescue.users.tables import ApiToken

    revoked = await make_token(A)
    expired = await make_token(A)
    await ApiToken.update({ApiToken.revoked_at: datetime.now(UTC)}).where(
        ApiToken.token_hash == _sha(revoked)
    )
    await ApiToken.update({ApiToken.expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        ApiToken.token_hash == _sha(expired)
    )
    variants = {
        "none": {},
        "malformed": {"Authorization": "Token abc"},
        "unknown": {"Authorization": "Bearer not-a-token"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
        "expired": {"Authorization": f"Bearer {expired}"},
    }
    problems = []
    for method, template in api_routes():
        path = _path(template, {})
        for name, headers in variants.items():
            response = await _call(client, method, path, headers)
            if response.status_code != 401:
                problems.append(f"{method} {template} with {name} token: {response.status_code}")
    assert problems == []


def _sha(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


async def test_police_liaison_cannot_change_a_case(client, staff, police):
    case = await new_case(client, staff)
    for method, path, kwargs in [
        ("POST", "/api/cases", {"json": {"sex": "male", "found_place": "G318"}}),
        ("POST", f"/api/cases/{case['id']}/photos", {"files": {"file": ("a.jpg", no_face_jpeg())}}),
        ("POST", f"/api/cases/{case['id']}/announcement", {"json": {"found_place": "X"}}),
    ]:
        response = await client.request(method, path, headers=police, **kwargs)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "forbidden"
    # …but reads it, and registers notices.
    assert (await client.get(f"/api/cases/{case['id']}", headers=police)).status_code == 200
    await new_notice(client, police)


async def test_station_staff_see_only_their_station(client):
    north = {"Authorization": f"Bearer {await make_token(S, station='north')}"}
    south = {"Authorization": f"Bearer {await make_token(S, station='south')}"}
    north_case = await new_case(client, north)
    south_case = await new_case(client, south)
    assert north_case["station"] == "north"
    photo = await upload(client, north, "case", north_case["id"], no_face_jpeg(), wait=False)

    listed = (await client.get("/api/cases", headers=south)).json()
    assert [c["id"] for c in listed["items"]] == [south_case["id"]]
    assert listed["total"] == 1
    for path in [
        f"/api/cases/{north_case['id']}",
        f"/api/cases/{north_case['id']}/candidates",
        f"/api/cases/{north_case['id']}/audit",
        f"/api/photos/{photo['id']}",
    ]:
        response = await client.get(path, headers=south)
        assert response.status_code == 403, (path, response.text)
        assert "north" in response.json()["detail"]
        assert response.json()["accepted"] == ["south"]
        assert (await client.get(path, headers=north)).status_code == 200
    files = {"file": ("a.jpg", no_face_jpeg((320, 240)))}
    response = await client.post(
        f"/api/cases/{north_case['id']}/photos", files=files, headers=south
    )
    assert response.status_code == 403
    # The unknown case is still 404, not 403 (the guard only scopes existing cases).
    assert (await client.get(f"/api/cases/{MISSING_ID}", headers=south)).status_code == 404


async def test_station_scope_covers_things_that_belong_to_a_case(client):
    """Placements (and other ids resolved through their case) are scoped too."""
    north = {"Authorization": f"Bearer {await make_token(S, station='north')}"}
    south = {"Authorization": f"Bearer {await make_token(S, station='south')}"}
    north_case = await new_case(client, north)
    placements = (
        await client.get(f"/api/cases/{north_case['id']}/placements", headers=north)
    ).json()
    items = placements["items"] if isinstance(placements, dict) else placements
    placement_id = items[0]["id"]
    refused = await client.post(
        f"/api/placements/{placement_id}/end", json={"reason": "x"}, headers=south
    )
    assert refused.status_code == 403, refused.text
    assert "north" in refused.json()["detail"]
    allowed = await client.post(
        f"/api/placements/{placement_id}/end", json={"reason": "moved"}, headers=north
    )
    assert allowed.status_code not in {401, 403}, allowed.text


@pytest.mark.parametrize("role", [R, P])
async def test_reviewers_and_police_see_their_assignment(client, role):
    from rescue.users.services import create_user, issue_token

    cases = {}
    for station in ("north", "south", "east"):
        staff = {"Authorization": f"Bearer {await make_token(S, station=station)}"}
        cases[station] = (await new_case(client, staff))["id"]

    async def token(scope: str) -> dict[str, str]:
        user = await create_user(
            username=f"{role}-{scope or 'own'}-{cases['north']}",
            role=role,
            station="north",
            scope=scope,
        )
        return {"Authorization": f"Bearer {await issue_token(user_id=user, ttl_days=1)}"}

    own, covering, everywhere = await token(""), await token("south"), await token("*")
    seen = {}
    for name, headers in [("own", own), ("covering", covering), ("everywhere", everywhere)]:
        page = (await client.get("/api/cases", headers=headers)).json()
        seen[name] = {c["station"] for c in page["items"]}
    assert seen == {
        "own": {"north"},
        "covering": {"north", "south"},
        "everywhere": {"north", "south", "east"},
    }
    assert (await client.get(f"/api/cases/{cases['east']}", headers=own)).status_code == 403
    assert (await client.get(f"/api/cases/{cases['south']}", headers=covering)).status_code == 200
    assert (await client.get(f"/api/cases/{cases['east']}", headers=everywhere)).status_code == 200


async def test_admin_sees_every_station(client, admin):
    south = {"Authorization": f"Bearer {await make_token(S, station='south')}"}
    case = await new_case(client, south)
    assert (await client.get(f"/api/cases/{case['id']}", headers=admin)).status_code == 200


async def test_reviewer_queue_shows_only_visible_stations(client):
    from tests.integration.helpers import submit_candidate

    north = {"Authorization": f"Bearer {await make_token(S, station='north')}"}
    south_reviewer = {"Authorization": f"Bearer {await make_token(R, station='south')}"}
    north_reviewer = {"Authorization": f"Bearer {await make_token(R, station='north')}"}
    case = await new_case(client, north)
    notice = await new_notice(client, north)
    lead = await submit_candidate(
        client,
        north,
        kind="staff",
        values={"summary": "口音与寻人启事一致"},
        case_id=case["id"],
        notice_id=notice["id"],
    )
    candidate_id = lead["candidate"]["id"]
    for query in ("", "?status=proposed"):
        seen_south = (await client.get(f"/api/candidates{query}", headers=south_reviewer)).json()
        assert seen_south["items"] == []
        assert seen_south["total"] == 0
        seen_north = (await client.get(f"/api/candidates{query}", headers=north_reviewer)).json()
        assert [c["id"] for c in seen_north["items"]] == [candidate_id]
