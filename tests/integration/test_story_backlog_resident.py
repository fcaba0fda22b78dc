"""Story (b) of issue 12: a long-term resident entered from the backlog.

Admitted in 2014, hospital stays and a welfare-home settlement in 2015 entered as
history through the backlog route (a table and a ZIP with the photo), matched in
2024 by a new notice with a photo of the same person, and no stale alerts from
the past on today's list. Identities from ../shared/faces/labels.csv: both
photos are ``barack_obama``.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime

from rescue import clock
from tests.integration.helpers import candidates, new_case, new_notice, upload_file
from tests.integration.test_backlog import HEADER, dry_run, photos_zip, run_to_end
from tests.support import FACES_DIR, OBAMA_A, OBAMA_B, photo

TODAY = datetime(2024, 6, 14, 1, 30, tzinfo=UTC)  # 2024-06-14 09:30 China time
ROW = (
    "DA-2014-031,,男,1961,,2014-03-01,城北汽车站,2014-03-02,落户安置,2015-09-01,"
    "福利院,市社会福利院,2015-06-01,"
    "医院|市第一人民医院|2014-05-10|2014-06-20;精神病院|市精神卫生中心|2015-01-05|2015-03-01,"
    "左眉有痣，身高约170，不语,四川口音,da-2014-031.jpg"
)


def identity(rel: str) -> str:
    with (FACES_DIR / "labels.csv").open(encoding="utf-8") as f:
        return next(r["identity"] for r in csv.DictReader(f) if r["path"] == rel)


async def test_backlog_resident_matched_by_a_new_notice_without_stale_alerts(client, staff):
    assert identity(OBAMA_A) == identity(OBAMA_B)  # the same person, two photos
    with clock.frozen(TODAY):
        # 1. The station loads its backlog: dry run, then the run.
        table = (HEADER + "\r\n" + ROW + "\r\n").encode("gbk")
        checked = await dry_run(
            client, staff, table, photos_zip(**{"da-2014-031.jpg": photo(OBAMA_A)})
        )
        assert checked.status_code == 201, checked.text
        run = checked.json()
        assert (run["valid_rows"], run["errors"]) == (1, [])
        assert run["would_create"]["cases"] == 1
        done = await run_to_end(client, staff, run["id"])
        assert done["status"] == "done", done["failure_reason"]

        listed = (await client.get("/api/cases?limit=10", headers=staff)).json()["items"]
        [resident] = listed
        case = (await client.get(f"/api/cases/{resident['id']}", headers=staff)).json()
        assert case["status"] == "settled"
        assert case["admitted_at"].startswith("2014-03-01T16:00")  # 2014-03-02 00:00 CST
        assert case["entered_later"] is True
        assert case["current_placement"]["kind"] == "welfare_home"
        placements = (
            await client.get(f"/api/cases/{case['id']}/placements", headers=staff)
        ).json()["items"]
        history = [(p["kind"], p["started_at"][:4]) for p in placements if p["entered_later"]]
        assert ("general_hospital", "2014") in history
        assert ("psychiatric_hospital", "2015") in history
        assert ("welfare_home", "2015") in history
        timeline = (await client.get(f"/api/cases/{case['id']}/timeline", headers=staff)).json()
        settled = next(e for e in timeline if e["to_status"] == "settled")
        assert settled["entered_later"] is True
        assert settled["occurred_at"].startswith("2015-09-01")
        assert settled["actor_id"] is not None

        # 2. No stale alerts: everything that fell due in 2014-2015 is historic,
        # shown on the case with its reason, and not on today's list.
        assert case["alerts"]
        assert all(a["historic"] and not a["overdue"] for a in case["alerts"])
        newcomer = await new_case(client, staff)  # admitted today: its deadlines run
        today = (await client.get("/api/alerts?limit=200", headers=staff)).json()["items"]
        assert {a["case_id"] for a in today} == {newcomer["id"]}
        overdue = (await client.get("/api/alerts?overdue=true", headers=staff)).json()
        assert overdue["total"] == 0

        # 3. In 2024 a family registers a notice with a photo of the same person;
        # the real worker processes it and matching proposes the resident.
        notice = await new_notice(
            client,
            staff,
            name="李建军",
            sex="male",
            date_of_birth="1961-05-01",
            missing_since="2014-02-20",
            last_seen_place="城北汽车站",
        )
        processed = await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
        assert processed["status"] == "processed"
        found = await candidates(client, staff, "notice", notice["id"])
        assert [c["case_id"] for c in found] == [case["id"]]
        assert [c["notice_id"] for c in await candidates(client, staff, "case", case["id"])] == [
            notice["id"]
        ]

        # Still no stale alerts after the match.
        today = (await client.get("/api/alerts?limit=200", headers=staff)).json()["items"]
        assert case["id"] not in {a["case_id"] for a in today}
