"""Story (a): the case as a district civil-affairs bureau reported it in 2023, on
the HTTP API with the real dates, the station's clock frozen and advanced day by
day (rescue.clock), real face photos and the real matching worker.

A man missing from home for ten years is hurt on a road on 29 September 2023,
goes from hospital to the station (西秀区) and on to a psychiatric hospital; DNA
and announcements find nobody; he is settled at the welfare home early, with a
recorded approval; on 13 October a police face comparison matches a notice
registered by another county's station (关岭县); two family confirmations;
escorted 100+ km and handed over at the destination station, which
countersigns; identity recorded; closed; biometric data retired and the
decision kept."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rescue import clock
from tests.conftest import make_token
from tests.integration.helpers import (
    decide,
    family_confirmation,
    new_case,
    new_notice,
    submit_candidate,
    upload_file,
)
from tests.support import FACES_DIR, OBAMA_A, OBAMA_B, no_face_jpeg

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
A, B = "西秀区", "关岭县"


def _same_identity(*paths: str) -> str:
    """The one identity labels.csv gives all ``paths`` (the test's premise)."""
    with open(FACES_DIR / "labels.csv", newline="") as fh:
        labels = {row["path"]: row["identity"] for row in csv.DictReader(fh)}
    identities = {labels[p] for p in paths}
    assert len(identities) == 1, identities
    return identities.pop()


def _until(day: date, hour: int = 10) -> None:
    """Advance the frozen clock one day at a time to ``day`` at ``hour`` (CST)."""
    target = datetime(day.year, day.month, day.day, hour, tzinfo=clock.station_tz())
    assert clock.now() <= target, (clock.now(), target)
    while clock.now() + timedelta(days=1) <= target:
        clock.advance(86400)
    clock.advance((target - clock.now()).total_seconds())


async def _ok(response: Any, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


async def test_district_case_2023(client):
    _same_identity(OBAMA_A, OBAMA_B)
    with clock.frozen(datetime(2023, 9, 29, 12, 0, tzinfo=UTC)):  # 20:00 at the station
        a = {"Authorization": f"Bearer {await make_token('station_staff', station=A)}"}
        b = {"Authorization": f"Bearer {await make_token('station_staff', station=B)}"}
        police = {"Authorization": f"Bearer {await make_token('police_liaison', station=A)}"}
        reviewer = {"Authorization": f"Bearer {await make_token('reviewer', station=A)}"}

        # Ten years earlier his family reported him at 关岭县; the station there
        # registered the notice (no photo then).
        notice = await new_notice(
            client,
            b,
            name="王某某",
            source="station",
            sex="male",
            missing_since="2013-08-01",
            last_seen_place="贵州省安顺市关岭县",
            reporter_name="王某之子",
        )
        assert notice["station"] == B

        # 29 September: hurt on a road, treated at hospital, brought to the station.
        case = await new_case(
            client,
            a,
            estimated_age=55,
            found_place="G320 国道西秀区段 (交通事故受伤)",
            found_at="2023-09-29T08:30:00+08:00",
            brought_by="交警大队, 经市人民医院救治后送站",
            description="头部外伤已处理; 言语不清",
        )
        cid = case["id"]
        assert clock.local(datetime.fromisoformat(case["admitted_at"])).date() == date(2023, 9, 29)
        case_photo = await upload_file(client, a, "case", cid, OBAMA_A)
        assert case_photo["status"] == "processed"

        # 30 September: quick check fails; announcement and DNA request.
        _until(date(2023, 9, 30))
        await _ok(
            await client.post(
                f"/api/cases/{cid}/transitions",
                json={"to": "searching", "reason": "指纹、人像快查无结果"},
                headers=a,
            )
        )
        await _ok(
            await client.post(
                f"/api/cases/{cid}/announcements",
                json={"channel": "全国救助寻亲网", "published_on": "2023-09-30"},
                headers=a,
            ),
            201,
        )
        dna = await _ok(
            await client.post(
                f"/api/cases/{cid}/dna-requests",
                json={"requested_on": "2023-09-30", "police_unit": "西秀分局"},
                headers=a,
            ),
            201,
        )

        # 2 October: on to the psychiatric hospital.
        _until(date(2023, 10, 2))
        await _ok(
            await client.post(
                f"/api/cases/{cid}/placements",
                json={
                    "kind": "psychiatric_hospital",
                    "facility": "市第三人民医院",
                    "reason": "精神症状, 需专科治疗",
                },
                headers=a,
            ),
            201,
        )

        # 8 October: the DNA database finds nobody.
        _until(date(2023, 10, 8))
        await _ok(
            await client.post(
                f"/api/dna-requests/{dna['id']}/result",
                json={"result_on": "2023-10-08", "result": "打拐DNA库比对无结果"},
                headers=police,
            )
        )

        # 10 October: over ten days in care, still unknown: stranded; settlement proposed.
        _until(date(2023, 10, 10))
        for to, why in (("stranded", "入站超过10天仍未查明身份"), ("settlement_pending", "报批")):
            await _ok(
                await client.post(
                    f"/api/cases/{cid}/transitions", json={"to": to, "reason": why}, headers=a
                )
            )

        # 11 October: welfare home; settled early with the recorded approval.
        _until(date(2023, 10, 11))
        await _ok(
            await client.post(
                f"/api/cases/{cid}/placements",
                json={"kind": "welfare_home", "facility": "市社会福利院"},
                headers=a,
            ),
            201,
        )
        early = await client.post(
            f"/api/cases/{cid}/transitions", json={"to": "settled", "reason": "x"}, headers=a
        )
        assert early.status_code == 409
        assert "settlement-approvals" in early.json()["requires"]
        await _ok(
            await client.post(
                f"/api/cases/{cid}/settlement-approvals",
                files={"document": ("批复.pdf", PDF, "application/pdf")},
                data={
                    "authority": "西秀区民政局",
                    "reference": "西民批〔2023〕31号",
                    "approved_on": "2023-10-11",
                },
                headers=a,
            ),
            201,
        )
        await _ok(
            await client.post(
                f"/api/cases/{cid}/transitions",
                json={"to": "settled", "reason": "提前落户安置 (已批准)"},
                headers=a,
            )
        )

        # 13 October: a police face comparison matches 关岭县's notice; the family's
        # photo on the notice is compared by the service's own worker too.
        _until(date(2023, 10, 13))
        lead = await submit_candidate(
            client,
            police,
            kind="police_face",
            values={"score": 0.96, "system": "公安人像比对系统", "report_number": "XX-2023-1013"},
            case_id=cid,
            notice_id=notice["id"],
        )
        candidate_id = lead["candidate"]["id"]
        notice_photo = await upload_file(client, b, "notice", notice["id"], OBAMA_B)
        assert notice_photo["status"] == "processed"
        detail = await _ok(await client.get(f"/api/candidates/{candidate_id}", headers=b))
        kinds = {e["kind"] for e in detail["evidence"]}
        assert {"police_face", "face"} <= kinds, kinds
        # 关岭县 verifies: its notice's candidate, the comparison and the summary.
        assert (
            await client.get(f"/api/candidates/{candidate_id}/compare", headers=b)
        ).status_code == 200
        summary = await _ok(await client.get(f"/api/cases/{cid}/shared", headers=b))
        assert summary["participation"] == ["notice_station"]
        assert (await client.get(f"/api/cases/{cid}", headers=b)).status_code == 403
        elsewhere = await _ok(await client.get("/api/stations/notices-elsewhere", headers=b))
        assert [x["candidate_id"] for x in elsewhere] == [candidate_id]

        # 14 and 16 October: two family confirmations; the reviewer confirms.
        _until(date(2023, 10, 14))
        await family_confirmation(client, reviewer, candidate_id, method="video_call")
        _until(date(2023, 10, 16))
        await family_confirmation(client, reviewer, candidate_id, method="visit")
        confirmed = await decide(
            client, reviewer, candidate_id, "confirm", "人像比对, 家属两次确认"
        )
        assert confirmed.status_code == 200, confirmed.text
        case_now = await _ok(await client.get(f"/api/cases/{cid}", headers=a))
        assert case_now["status"] == "identified"

        # 18 October: return plan, escorted ~120 km to 关岭县's station.
        _until(date(2023, 10, 18))
        plan = await _ok(
            await client.post(
                f"/api/cases/{cid}/return-plan",
                json={
                    "destination": "贵州省安顺市关岭县救助管理站 (约120公里)",
                    "destination_station": B,
                    "transport": "站车护送",
                    "escort_staff": ["王芳", "刘强"],
                    "planned_on": "2023-10-19",
                },
                headers=a,
            ),
            201,
        )
        assert plan["destination_station"] == B
        incoming = await _ok(await client.get("/api/stations/incoming", headers=b))
        assert [x["case_id"] for x in incoming] == [cid]

        # 19 October: handed over at the destination station, which receives and countersigns.
        _until(date(2023, 10, 19), hour=15)
        handover = await _ok(
            await client.post(
                f"/api/cases/{cid}/handover",
                files={"sheet": ("交接单.jpg", no_face_jpeg(), "application/octet-stream")},
                data={
                    "receiving_party": "origin_station",
                    "receiver_name": "关岭县救助管理站 值班员",
                    "id_document_type": "工作证",
                    "id_document_number": "GL-2023-05",
                    "id_document_checked": "true",
                    "handed_over_at": "2023-10-19T14:30:00+08:00",
                    "place": "关岭县救助管理站",
                },
                headers=a,
            ),
            201,
        )
        hid = handover["id"]
        closing = {"to": "escorted_home", "reason": "护送返乡, 交接完毕"}
        waiting = await client.post(f"/api/cases/{cid}/transitions", json=closing, headers=a)
        assert waiting.status_code == 409
        assert "countersign" in waiting.json()["requires"]
        assert (
            await client.post(f"/api/handovers/{hid}/countersign", json={}, headers=a)
        ).status_code == 403
        await _ok(
            await client.post(
                f"/api/handovers/{hid}/reception",
                json={
                    "received_at": "2023-10-19T14:40:00+08:00",
                    "received_by_name": "关岭县站 值班员",
                    "notes": "其子到站等候",
                },
                headers=b,
            )
        )
        signed = await _ok(
            await client.post(
                f"/api/handovers/{hid}/countersign", json={"note": "已接收"}, headers=b
            )
        )
        assert clock.local(datetime.fromisoformat(signed["countersigned_at"])).date() == date(
            2023, 10, 19
        )

        # Identity recorded; the case closes.
        await _ok(
            await client.patch(
                f"/api/cases/{cid}/identity",
                json={
                    "reason": "户籍核实",
                    "confirmed_name": "王某某",
                    "id_number": "52042419700101123X",
                    "household_registration": "贵州省安顺市关岭县",
                },
                headers=a,
            )
        )
        await _ok(await client.post(f"/api/cases/{cid}/transitions", json=closing, headers=a))
        timeline = await _ok_list(client, f"/api/cases/{cid}/timeline", a)
        statuses = [e["to_status"] for e in timeline if e["kind"] == "status_changed"]
        assert statuses == [
            "searching",
            "stranded",
            "settlement_pending",
            "settled",
            "identified",
            "return_planned",
            "escorted_home",
        ]
        kinds = [e["kind"] for e in timeline]
        assert kinds.index("handover_received") < kinds.index("handover_countersigned")
        closed_at = clock.local(datetime.fromisoformat(timeline[-1]["at"])).date()
        assert closed_at == date(2023, 10, 19)
        assert (await client.get("/api/stations/incoming", headers=b)).json() == []
        # 集体户口注销: the liaison task of a settled person identified.
        tasks = await _ok_list(client, f"/api/tasks?case_id={cid}", police)
        assert [t["kind"] for t in tasks] == ["cancel_collective_household"]

        # Past the retention period (30 days after closing, the station's photos
        # too): biometric data retired on both sides, the decision and its evidence
        # summary kept (rescue.retention).
        from rescue.photos.tables import Face, Photo
        from rescue.retention import run_retention
        from rescue.runtime import get_store
        from rescue.settings import RetentionSettings

        before = await _ok(await client.get(f"/api/candidates/{candidate_id}", headers=reviewer))
        settings = RetentionSettings(face_days=30, photo_days=0, photo_days_by_station={A: 30})
        _until(date(2023, 11, 17))  # 29 days after closing: nothing goes
        report = await run_retention(settings=settings, store=get_store(), now=clock.now())
        assert (report.faces_deleted, report.photos_deleted) == (0, 0)
        _until(date(2023, 11, 20))  # 32 days
        report = await run_retention(settings=settings, store=get_store(), now=clock.now())
        assert cid in report.cases
        assert notice["id"] in report.notices
        for owner, owner_id in ((Face.case, cid), (Face.notice, notice["id"])):
            assert await Face.count().where(owner == owner_id) == 0
        for side, owner_id in ((Photo.case, cid), (Photo.notice, notice["id"])):
            assert await Photo.count().where(side == owner_id) == 0
        after = await _ok(await client.get(f"/api/candidates/{candidate_id}", headers=reviewer))
        kept = after["candidate"]
        assert kept["status"] == "confirmed"
        assert kept["case_photo_id"] is None
        assert kept["notice_photo_id"] is None
        assert kept["photos_deleted_at"] is not None
        summary = kept["retained_evidence"]
        assert summary["status"] == "confirmed"
        assert summary["best_distance"] == before["candidate"]["best_distance"]
        assert summary["case_photo_id"] == case_photo["id"]
        assert summary["notice_photo_id"] == notice_photo["id"]
        assert summary["decided_by"] is not None
        assert {e["kind"] for e in after["evidence"]} >= {"face", "police_face"}
        assert [r["decision"] for r in after["reviews"]][-1] == "confirm"
        assert len(after["family_confirmations"]) == 2
        timeline = await _ok_list(client, f"/api/cases/{cid}/timeline", a)
        assert {"faces_deleted", "photos_deleted"} <= {e["kind"] for e in timeline}
        # 关岭县 still sees its notice's decision (the candidate), not the case file.
        assert (await client.get(f"/api/candidates/{candidate_id}", headers=b)).status_code == 200
        assert (await client.get(f"/api/cases/{cid}", headers=b)).status_code == 403


async def _ok_list(client: Any, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())
