"""The working-day calendar past the package's last year (issue 12 item 4): no
request fails for a missing year; deadlines are computed with weekends only and
marked estimated until an administrator loads the State Council's schedule."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import anyio

from rescue import clock
from rescue.alerts.rules import CHINA_TZ
from rescue.devservices import ROOT
from tests.integration.helpers import new_case

RESCUE = str(Path(sys.executable).with_name("rescue"))
NEW_YEAR_2027 = {
    "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
    "workdays": [],
    "source": "国务院办公厅关于2027年部分节假日安排的通知 (test data)",
}


def dna_item(alerts: list[dict]) -> dict:
    return next(a for a in alerts if a["kind"] == "dna_request")


async def test_deadline_crossing_into_a_year_without_data(client, staff, admin):
    # Thu 2026-12-24 10:00 CST: 7 working days reach into 2027, which
    # chinese-calendar 1.11.0 does not know.
    with clock.frozen(datetime(2026, 12, 24, 10, tzinfo=CHINA_TZ)):
        case = await new_case(client, staff)  # intake must not fail
        cid = case["id"]
        item = dna_item(case["alerts"])
        # 12-25, 28, 29, 30, 31, then 2027-01-01 and 01-04 by weekends only.
        assert item["estimated"] is True
        assert item["due_at"] == "2027-01-04T16:00:00Z"
        for path in (f"/api/cases/{cid}", f"/api/cases/{cid}/alerts", "/api/alerts"):
            response = await client.get(path, headers=staff)
            assert response.status_code == 200, (path, response.text)
        listed = (await client.get("/api/alerts?kind=dna_request", headers=staff)).json()
        assert listed["items"][0]["estimated"] is True
        years = {y["year"]: y for y in (await client.get("/api/calendar", headers=staff)).json()}
        assert years[2026]["source"] == "package"
        assert years[2027]["estimated"] is True

        # Only an administrator loads a schedule; bad schedules are refused.
        refused = await client.put("/api/calendar/2027", json=NEW_YEAR_2027, headers=staff)
        assert refused.status_code == 403
        weekday = {**NEW_YEAR_2027, "workdays": ["2027-01-05"]}
        response = await client.put("/api/calendar/2027", json=weekday, headers=admin)
        assert response.status_code == 400
        other_year = {**NEW_YEAR_2027, "holidays": ["2028-01-01"]}
        response = await client.put("/api/calendar/2027", json=other_year, headers=admin)
        assert response.status_code == 400

        response = await client.put("/api/calendar/2027", json=NEW_YEAR_2027, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["source"] == "loaded"
        item = dna_item((await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json())
        # New Year's Day off: 12-25, 28, 29, 30, 31, 01-04, 01-05; official now.
        assert item["estimated"] is False
        assert item["due_at"] == "2027-01-05T16:00:00Z"


async def test_cli_loads_a_schedule(client, staff, tmp_path):
    path = tmp_path / "2027.json"
    path.write_text(json.dumps({"year": 2027, **NEW_YEAR_2027}), encoding="utf-8")
    result = await anyio.run_process([RESCUE, "calendar", "load", str(path)], cwd=ROOT)
    assert b"loaded 2027" in result.stdout
    years = {y["year"]: y for y in (await client.get("/api/calendar", headers=staff)).json()}
    assert years[2027]["source"] == "loaded"
    assert years[2027]["holidays"][0] == "2027-01-01"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"year": 2027, **NEW_YEAR_2027, "workdays": ["2027-01-06"]}))
    result = await anyio.run_process([RESCUE, "calendar", "load", str(bad)], cwd=ROOT, check=False)
    assert result.returncode != 0
    assert b"2027-01-06" in result.stderr  # the offending day, in the default locale
