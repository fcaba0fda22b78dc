"""Statistics against a small data set whose answers are worked out by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import make_token

CST = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST)


async def _case(ref: str, station: str, admitted: str) -> int:
    from rescue.cases.tables import Case

    rows = await Case.insert(
        Case(
            reference=ref,
            placeholder_name=f"无名氏-{ref}",
            station=station,
            admitted_at=at(admitted),
        )
    ).returning(Case.id)
    return int(rows[0]["id"])


async def _candidate(
    case_id: int, notice_id: int, status: str, created: str, decided: str | None, kinds: list[str]
) -> int:
    from rescue.matching.tables import Candidate, CandidateEvidence

    rows = await Candidate.insert(
        Candidate(
            case=case_id,
            notice=notice_id,
            pair_key=f"{case_id}-{notice_id}",
            status=status,
            created_at=at(created),
            decided_at=at(decided) if decided else None,
        )
    ).returning(Candidate.id)
    candidate_id = int(rows[0]["id"])
    for kind in kinds:
        await CandidateEvidence.insert(CandidateEvidence(candidate=candidate_id, kind=kind))
    return candidate_id


async def _event(case_id: int, to: str, when: str) -> None:
    from rescue.cases.events import CaseEvent

    await CaseEvent.insert(
        CaseEvent(case=case_id, kind="status_changed", to_status=to, at=at(when))
    )


async def _warning(
    run: int,
    record: int,
    station: str,
    key: str,
    raised: str,
    verified: str | None = None,
    outcome: str | None = None,
    candidate: int | None = None,
) -> None:
    from rescue.imports.tables import ImportWarning

    await ImportWarning.insert(
        ImportWarning(
            run=run,
            record=record,
            list_kind="police_missing",
            list_name="L",
            external_id=key,
            station=station,
            pair_key=key,
            raised_at=at(raised),
            verified_at=at(verified) if verified else None,
            outcome=outcome,
            candidate_id=candidate,
        )
    )


async def known_data_set() -> None:
    from rescue.imports.tables import ImportRecord, ImportRun
    from rescue.notices.tables import Notice

    notice = int(
        (await Notice.insert(Notice(name="n", source="family")).returning(Notice.id))[0]["id"]
    )
    a = await _case("A", "north", "2026-11-02T10:00")
    b = await _case("B", "north", "2026-11-03T10:00")
    c = await _case("C", "north", "2026-10-20T10:00")  # admitted before the period
    d = await _case("D", "north", "2026-11-10T10:00")
    await _case("E", "north", "2026-11-30T23:30")  # last evening of the period (station time)
    await _case("F", "north", "2026-12-01T00:10")  # after it
    g = await _case("G", "south", "2026-11-05T10:00")
    await _candidate(a, notice, "confirmed", "2026-11-04T09:00", "2026-11-05T10:00", ["face"])
    await _candidate(
        b, notice, "confirmed", "2026-11-04T09:00", "2026-11-13T10:00", ["face", "police_dna"]
    )
    c_candidate = await _candidate(
        c, notice, "confirmed", "2026-10-25T09:00", "2026-11-20T10:00", ["staff"]
    )
    await _candidate(d, notice, "rejected", "2026-11-11T09:00", "2026-11-12T09:00", ["face"])
    await _candidate(g, notice, "confirmed", "2026-11-05T12:00", "2026-11-06T10:00", ["face"])
    await _event(a, "identified", "2026-11-05T10:00")
    await _event(a, "handed_to_family", "2026-11-08T10:00")
    await _event(d, "stranded", "2026-11-21T01:00")
    await _event(c, "settled", "2026-11-25T10:00")
    await _event(g, "escorted_home", "2026-11-09T10:00")
    run = int(
        (
            await ImportRun.insert(
                ImportRun(
                    list_kind="police_missing",
                    list_name="L",
                    object_key="k",
                    file_sha256="x",
                    file_format="csv",
                )
            ).returning(ImportRun.id)
        )[0]["id"]
    )
    record = int(
        (
            await ImportRecord.insert(
                ImportRecord(run=run, row_number=1, row_key="r1", external_id="1")
            ).returning(ImportRecord.id)
        )[0]["id"]
    )
    await _warning(
        run, record, "north", "w1", "2026-11-15T10:00", "2026-11-20T09:00", "helped", c_candidate
    )
    await _warning(run, record, "north", "w2", "2026-11-16T10:00")
    await _warning(run, record, "north", "w3", "2026-10-10T10:00", "2026-11-02T10:00", "not_same")
    await _warning(run, record, "south", "w4", "2026-11-03T10:00")


async def test_statistics_of_a_known_data_set(client):
    await known_data_set()
    admin = {"Authorization": f"Bearer {await make_token('admin')}"}
    period = {"date_from": "2026-11-01", "date_to": "2026-11-30"}
    response = await client.get("/api/stats", params={**period, "station": "north"}, headers=admin)
    assert response.status_code == 200, response.text
    north: dict[str, Any] = response.json()
    assert north["stations"] == ["north"]
    assert north["admitted"] == 4  # A, B, D, E
    assert north["identified"] == 3  # A, B, C
    assert {k: v for k, v in north["identified_by_channel"].items() if v} == {
        "face_match": 1,
        "police_dna": 1,
        "external_list": 1,
    }
    assert north["median_days_to_identification"] == 10.0  # 3, 10, 31
    assert {k: v for k, v in north["days_to_identification"].items() if v} == {
        "2-3": 1,
        "8-10": 1,
        "31-90": 1,
    }
    assert north["became_stranded"] == 1
    assert north["settled"] == 1
    # Every official 离站方式 category is reported; handed to family is 接领返乡.
    assert set(north["left_by_outcome"]) == {
        "placement",
        "ticket_self_return",
        "terminated",
        "left_unauthorised",
        "escorted_return",
        "collected_return",
        "deceased",
        "other",
    }
    assert {k: v for k, v in north["left_by_outcome"].items() if v} == {"collected_return": 1}
    assert (north["candidates_proposed"], north["candidates_confirmed"]) == (3, 3)
    assert north["candidates_rejected"] == 1
    assert north["review_precision"] == 0.75
    assert (north["warnings_raised"], north["warnings_verified"], north["warnings_helped"]) == (
        2,
        2,
        1,
    )

    everywhere = (await client.get("/api/stats", params=period, headers=admin)).json()
    assert everywhere["stations"] is None
    assert everywhere["admitted"] == 5
    assert everywhere["identified"] == 4
    assert everywhere["identified_by_channel"]["face_match"] == 2
    assert {k: v for k, v in everywhere["left_by_outcome"].items() if v} == {
        "escorted_return": 1,
        "collected_return": 1,
    }
    assert everywhere["warnings_raised"] == 3

    # A station's staff see only their station, whatever they ask for.
    south_staff = {"Authorization": f"Bearer {await make_token('station_staff', station='south')}"}
    south = (
        await client.get("/api/stats", params={**period, "station": "north"}, headers=south_staff)
    ).json()
    assert south["stations"] == []
    assert south["admitted"] == 0
    mine = (await client.get("/api/stats", params=period, headers=south_staff)).json()
    assert (mine["admitted"], mine["identified"]) == (1, 1)

    csv_text = (
        await client.get("/api/stats/csv", params={**period, "station": "north"}, headers=admin)
    ).content.decode("utf-8-sig")
    assert "入站人数,4" in csv_text
    assert "查明途径：公安DNA比对,1" in csv_text
    assert "审核准确率,0.75" in csv_text
    assert "离站方式：接领返乡,1" in csv_text  # the official category, in Chinese
    backwards = await client.get(
        "/api/stats", params={"date_from": "2026-11-30", "date_to": "2026-11-01"}, headers=admin
    )
    assert backwards.status_code == 400


async def test_statistics_as_excel_with_chinese_headers(client):
    import io

    from openpyxl import load_workbook

    await known_data_set()
    admin = {"Authorization": f"Bearer {await make_token('admin')}"}
    period = {"date_from": "2026-11-01", "date_to": "2026-11-30", "station": "north"}
    response = await client.get("/api/stats/xlsx", params=period, headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    sheet = book["统计"]
    rows = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ("指标", "数值")
    figures = dict(rows[1:])
    assert figures["入站人数"] == 4
    assert figures["查明身份人数"] == 3
    assert figures["查明途径：公安DNA比对"] == 1
    assert figures["审核准确率"] == 0.75
    bad = await client.get(
        "/api/stats/xlsx",
        params={"date_from": "2026-11-30", "date_to": "2026-11-01"},
        headers=admin,
    )
    assert bad.status_code == 400
    missing = await client.get("/api/stats", params={"date_to": "2026-11-30"}, headers=admin)
    assert missing.status_code == 400
    assert "date_from" in missing.json()["detail"]  # the left-out parameter is named
