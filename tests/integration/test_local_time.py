"""The station's date and one timestamp convention (issue 12 item 5, issue 11
item 14): "today" is China's date; a datetime without a timezone is refused with
400; every timestamp in answers is UTC with ``Z``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from rescue import clock
from rescue.alerts.rules import CHINA_TZ
from tests.integration.helpers import admitted_days_ago, new_case, new_notice

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


async def test_an_action_dated_today_is_accepted_before_8_in_the_morning(client, staff, police):
    # 03:00 CST on 2 December is still 1 December in UTC.
    with clock.frozen(datetime(2026, 12, 2, 3, 0, tzinfo=CHINA_TZ)):
        cid = (await new_case(client, staff))["id"]
        for path, body in (
            ("announcements", {"channel": "全国救助寻亲网", "published_on": "2026-12-02"}),
            ("dna-requests", {"requested_on": "2026-12-02", "police_unit": "城北派出所"}),
        ):
            response = await client.post(f"/api/cases/{cid}/{path}", json=body, headers=staff)
            assert response.status_code == 201, response.text
        response = await client.post(
            f"/api/cases/{cid}/announcements",
            json={"channel": "全国救助寻亲网", "published_on": "2026-12-03"},
            headers=staff,
        )
        assert response.status_code == 400
        assert "future" in response.json()["detail"]
        await new_notice(client, police, missing_since="2026-12-02")


async def test_a_datetime_without_timezone_is_refused_everywhere(client, staff, admin):
    naive = "2026-11-30T10:00:00"
    response = await client.post("/api/cases", json={"found_at": naive}, headers=staff)
    assert response.status_code == 400
    assert "timezone" in response.text
    cid = (await new_case(client, staff))["id"]
    response = await client.post(
        f"/api/cases/{cid}/placements",
        json={"kind": "general_hospital", "facility": "医院", "started_at": naive},
        headers=staff,
    )
    assert response.status_code == 400
    assert "timezone" in response.text
    response = await client.post(
        f"/api/cases/{cid}/handover",
        files={"sheet": ("s.pdf", PDF, "application/pdf")},
        data={
            "receiving_party": "family",
            "receiver_name": "李某",
            "id_document_type": "居民身份证",
            "id_document_number": "110101199001011234",
            "id_document_checked": "true",
            "handed_over_at": naive,
            "place": "站内",
        },
        headers=staff,
    )
    assert response.status_code == 400, response.text
    response = await client.get(f"/api/audit?since={naive}", headers=admin)
    assert response.status_code == 400
    # With an offset (or Z) the same moments are accepted.
    response = await client.post(
        "/api/cases", json={"found_at": naive + "+08:00", "found_place": "G318"}, headers=staff
    )
    assert response.status_code == 201, response.text
    assert response.json()["found_at"] == "2026-11-30T02:00:00Z"


def _timestamps(value: Any, path: str = "$") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _timestamps(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _timestamps(v, f"{path}[{i}]")]
    if isinstance(value, str) and TIMESTAMP.match(value):
        return [(path, value)]
    return []


async def test_every_timestamp_in_answers_is_utc(client, staff):
    found = (clock.now() - timedelta(hours=5)).astimezone(CHINA_TZ).isoformat()
    case = await new_case(client, staff, found_at=found)
    cid = case["id"]
    await admitted_days_ago(cid, 1)
    start = (clock.now() - timedelta(minutes=30)).astimezone(CHINA_TZ).isoformat()
    response = await client.post(
        f"/api/cases/{cid}/placements",
        json={"kind": "general_hospital", "facility": "医院", "started_at": start},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        f"/api/cases/{cid}/handover",
        files={"sheet": ("s.pdf", PDF, "application/pdf")},
        data={
            "receiving_party": "family",
            "receiver_name": "李某",
            "id_document_type": "居民身份证",
            "id_document_number": "110101199001011234",
            "id_document_checked": "true",
            "handed_over_at": clock.now().astimezone(CHINA_TZ).isoformat(),
            "place": "站内",
        },
        headers=staff,
    )
    assert response.status_code == 201, response.text
    seen: list[tuple[str, str]] = []
    for path in (
        f"/api/cases/{cid}",
        f"/api/cases/{cid}/timeline",
        f"/api/cases/{cid}/placements",
        f"/api/cases/{cid}/handovers",
        f"/api/cases/{cid}/alerts",
        "/api/alerts",
    ):
        response = await client.get(path, headers=staff)
        assert response.status_code == 200, response.text
        seen += [(f"{path} {p}", v) for p, v in _timestamps(response.json())]
    assert len(seen) > 20
    wrong = [(p, v) for p, v in seen if not v.endswith("Z")]
    assert not wrong, wrong


async def test_openapi_says_a_timezone_is_required(client):
    schema = (await client.get("/schema/openapi.json")).json()
    text = str(schema["components"]["schemas"])
    assert "a time without an offset is refused" in text
