"""History entered later (历史补录, issue 12 item 6): a case registered with its real
past admission, earlier placements, status changes and search actions, and the
deadlines that fell due before the case was entered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rescue import clock
from tests.conftest import make_token
from tests.integration.helpers import new_case

NOW = datetime(2024, 5, 6, 2, 0, tzinfo=UTC)  # 2024-05-06 10:00 China time
ADMITTED = "2014-03-02T09:00:00+08:00"


async def history(client: Any, headers: dict[str, str], cid: int, what: str, **body: Any) -> Any:
    return await client.post(f"/api/cases/{cid}/history/{what}", json=body, headers=headers)


async def resident(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    return await new_case(
        client,
        headers,
        admitted_at=ADMITTED,
        found_at="2014-03-01T20:00:00+08:00",
        **fields,
    )


async def test_admission_in_the_past_accepted_and_marked_entered_later(client, staff):
    with clock.frozen(NOW):
        case = await resident(client, staff)
        assert case["admitted_at"] == "2014-03-02T01:00:00Z"
        assert case["entered_later"] is True
        assert case["entered_at"] == "2024-05-06T02:00:00Z"
        assert case["reference"].startswith("2014-")
        events = (await client.get(f"/api/cases/{case['id']}/timeline", headers=staff)).json()
        admitted = events[0]
        assert admitted["kind"] == "admitted"
        assert admitted["entered_later"] is True
        assert admitted["occurred_at"] == "2014-03-02T01:00:00Z"
        assert admitted["at"] == "2024-05-06T02:00:00Z"
        assert admitted["actor_id"] is not None
        placements = (await client.get(f"/api/cases/{case['id']}/placements", headers=staff)).json()
        assert placements["items"][0]["started_at"] == "2014-03-02T01:00:00Z"
        assert placements["items"][0]["entered_later"] is True
        # A case registered now is not entered later.
        fresh = await new_case(client, staff)
        assert fresh["entered_later"] is False
        assert fresh["admitted_at"] == "2024-05-06T02:00:00Z"


async def test_admission_in_the_future_or_too_early_refused(client, staff):
    with clock.frozen(NOW):
        for admitted_at, word in (
            ("2024-05-07T09:00:00+08:00", "future"),
            ("1989-12-31T09:00:00+08:00", "1990-01-01"),
        ):
            response = await client.post(
                "/api/cases", json={"sex": "male", "admitted_at": admitted_at}, headers=staff
            )
            assert response.status_code == 400, response.text
            assert word in response.json()["detail"]
            assert "1990-01-01" in str(response.json()["accepted"])
        response = await client.post(
            "/api/cases",
            json={
                "sex": "male",
                "admitted_at": "2014-03-02T09:00:00+08:00",
                "found_at": "2014-03-03T09:00:00+08:00",
            },
            headers=staff,
        )
        assert response.status_code == 400
        assert "found_at" in response.json()["detail"]


async def test_history_placement_before_entry_accepted_marked_with_the_user(client, staff):
    with clock.frozen(NOW):
        cid = (await resident(client, staff))["id"]
        response = await history(
            client,
            staff,
            cid,
            "placements",
            kind="general_hospital",
            facility="市第一人民医院",
            started_at="2014-05-10T12:00:00+08:00",
            ended_at="2014-06-20T12:00:00+08:00",
        )
        assert response.status_code == 201, response.text
        hospital = response.json()
        assert hospital["entered_later"] is True
        assert hospital["created_by"] is not None
        assert hospital["created_at"] == "2024-05-06T02:00:00Z"
        items = (await client.get(f"/api/cases/{cid}/placements", headers=staff)).json()["items"]
        # The station stay is split: station, hospital, back to the station.
        assert [(p["kind"], p["current"]) for p in items] == [
            ("in_station", False),
            ("general_hospital", False),
            ("in_station", True),
        ]
        assert items[0]["ended_at"] == hospital["started_at"]
        assert items[2]["started_at"] == hospital["ended_at"]
        events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
        started = [e for e in events if e["kind"] == "placement_started"]
        assert started[0]["occurred_at"] == "2014-05-10T04:00:00Z"
        assert started[0]["entered_later"] is True
        assert started[0]["actor_id"] == hospital["created_by"]
        # Before the admission or overlapping a closed period: refused.
        before = await history(
            client,
            staff,
            cid,
            "placements",
            kind="general_hospital",
            facility="x",
            started_at="2014-03-01T12:00:00+08:00",
            ended_at="2014-03-05T12:00:00+08:00",
        )
        assert before.status_code == 400
        overlap = await history(
            client,
            staff,
            cid,
            "placements",
            kind="psychiatric_hospital",
            facility="市精神卫生中心",
            started_at="2014-06-01T12:00:00+08:00",
            ended_at="2014-07-01T12:00:00+08:00",
        )
        assert overlap.status_code == 409
        assert overlap.json()["placement_id"] == hospital["id"]


async def test_history_status_order_follows_the_transitions_table(client, staff):
    with clock.frozen(NOW):
        cid = (await resident(client, staff))["id"]

        async def status(to: str, when: str) -> Any:
            return await history(
                client, staff, cid, "status", to=to, occurred_at=when, reason="档案"
            )

        # Stranded needs 10 days in care by then (judged at the historic date).
        early = await status("stranded", "2014-03-05T12:00:00+08:00")
        assert early.status_code == 409
        assert "10 days" in early.json()["detail"]
        assert (await status("stranded", "2014-04-01T12:00:00+08:00")).status_code == 201
        # Not in the table: stranded → settled.
        skip = await status("settled", "2015-09-01T12:00:00+08:00")
        assert skip.status_code == 409
        assert skip.json()["current"] == "stranded"
        assert "settlement_pending" in skip.json()["allowed"]
        # Out of order: before the previous status change.
        back = await status("settlement_pending", "2014-03-20T12:00:00+08:00")
        assert back.status_code == 400
        assert (await status("settlement_pending", "2015-05-01T12:00:00+08:00")).status_code == 201
        # Settled needs a welfare-home placement at that moment.
        no_home = await status("settled", "2015-09-01T12:00:00+08:00")
        assert no_home.status_code == 409
        assert "welfare home" in no_home.json()["detail"]
        home = await history(
            client,
            staff,
            cid,
            "placements",
            kind="welfare_home",
            facility="市社会福利院",
            started_at="2015-06-01T12:00:00+08:00",
        )
        assert home.status_code == 201, home.text
        settled = await status("settled", "2015-09-01T12:00:00+08:00")
        assert settled.status_code == 201, settled.text
        assert settled.json()["status"] == "settled"
        events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
        changes = [e for e in events if e["kind"] == "status_changed"]
        assert [(e["to_status"], e["occurred_at"][:10], e["entered_later"]) for e in changes] == [
            ("stranded", "2014-04-01", True),
            ("settlement_pending", "2015-05-01", True),
            ("settled", "2015-09-01", True),
        ]
        assert all(e["at"] == "2024-05-06T02:00:00Z" for e in changes)


async def test_history_search_action_entered_later(client, staff):
    with clock.frozen(NOW):
        cid = (await resident(client, staff))["id"]
        response = await history(
            client,
            staff,
            cid,
            "search-actions",
            kind="announcement",
            on_date="2014-03-03",
            channel="全国救助寻亲网",
        )
        assert response.status_code == 201, response.text
        assert response.json()["entered_later"] is True
        assert response.json()["recorded_by"] is not None
        missing = await history(
            client, staff, cid, "search-actions", kind="announcement", on_date="2014-03-03"
        )
        assert missing.status_code == 400
        before = await history(
            client,
            staff,
            cid,
            "search-actions",
            kind="interview",
            on_date="2014-02-01",
        )
        assert before.status_code == 400


async def test_only_the_station_staff_enter_history(client, staff, police):
    with clock.frozen(NOW):
        cid = (await resident(client, staff))["id"]
        body = {"to": "stranded", "occurred_at": "2014-04-01T12:00:00+08:00", "reason": "档案"}
        as_police = await client.post(f"/api/cases/{cid}/history/status", json=body, headers=police)
        assert as_police.status_code == 403
        south = {"Authorization": f"Bearer {await make_token('station_staff', station='south')}"}
        other = await client.post(f"/api/cases/{cid}/history/status", json=body, headers=south)
        assert other.status_code == 403
        assert (
            await client.post(f"/api/cases/{cid}/history/status", json=body, headers=staff)
        ).status_code == 201
        # Audited: the write is on the audit trail with its route.
        from rescue.audit.tables import AuditRecord

        rows = await AuditRecord.select().where(AuditRecord.route.like("%/history/status"))
        assert any(r["status_code"] == 201 for r in rows)


async def test_past_due_deadlines_not_on_todays_list_while_running_ones_are(client, staff):
    with clock.frozen(NOW):
        old = await resident(client, staff)
        recent = await new_case(client, staff, admitted_at="2024-05-01T10:00:00+08:00")
        listed = (await client.get("/api/alerts?limit=200", headers=staff)).json()["items"]
        assert {a["case_id"] for a in listed} == {recent["id"]}
        kinds = {a["kind"]: a for a in listed}
        # Announcement was due 24 h after the admission, before the case was entered:
        # not applicable; the DNA request (7 working days) is still running.
        assert "announcement" not in kinds
        assert kinds["dna_request"]["overdue"] is False
        assert kinds["stranded"]["overdue"] is False
        detail = (await client.get(f"/api/cases/{old['id']}", headers=staff)).json()
        assert detail["alerts"]
        assert all(a["historic"] and not a["overdue"] for a in detail["alerts"])
        assert "entered" in detail["alerts"][0]["historic_reason"]
        recent_detail = (await client.get(f"/api/cases/{recent['id']}", headers=staff)).json()
        by_kind = {a["kind"]: a for a in recent_detail["alerts"]}
        assert by_kind["announcement"]["historic"] is True
        assert by_kind["dna_request"]["historic"] is False
    # Later, a deadline that fell due after the entry is overdue as usual.
    with clock.frozen(datetime(2024, 6, 1, tzinfo=UTC)):
        listed = (await client.get("/api/alerts?overdue=true", headers=staff)).json()["items"]
        assert {a["kind"] for a in listed if a["case_id"] == recent["id"]} >= {"dna_request"}
        assert all(a["case_id"] == recent["id"] for a in listed)


async def test_a_leaving_entered_later_counts_in_the_month_it_happened(client, staff):
    with clock.frozen(NOW):
        cid = (await resident(client, staff))["id"]
        home = await history(
            client,
            staff,
            cid,
            "placements",
            kind="welfare_home",
            facility="市社会福利院",
            started_at="2015-06-01T12:00:00+08:00",
        )
        assert home.status_code == 201, home.text
        too_early = await history(
            client,
            staff,
            cid,
            "status",
            to="deceased",
            occurred_at="2015-02-10T12:00:00+08:00",
            reason="病故（档案）",
        )
        assert too_early.status_code == 400
        assert "placements starting after" in too_early.json()["detail"]
        response = await history(
            client,
            staff,
            cid,
            "status",
            to="deceased",
            occurred_at="2016-02-10T12:00:00+08:00",
            reason="病故（档案）",
        )
        assert response.status_code == 201, response.text
        then = (await client.get("/api/reports/leavings?month=2016-02", headers=staff)).json()
        now = (await client.get("/api/reports/leavings?month=2024-05", headers=staff)).json()
        assert (then["total"], now["total"]) == (1, 0)
        placements = (await client.get(f"/api/cases/{cid}/placements", headers=staff)).json()
        assert placements["current"] is None
        assert placements["items"][-1]["ended_at"] == "2016-02-10T04:00:00Z"
