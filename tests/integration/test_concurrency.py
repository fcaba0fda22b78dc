"""Concurrent clients on a served app, on SQLite (the embedded default) and on
PostgreSQL (issue 11 items 8 and 9).

Writers wait for each other instead of failing: no 5xx, every acknowledged
write is stored once, and concurrent creation of one unique thing is one 201
and the rest 409, on both databases.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import cli_token, serve, sqlite_env

WRITERS = 6
ROUNDS = 4


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``rescue serve`` on a fresh SQLite file; admin and staff tokens from the CLI."""
    data_dir = tmp_path_factory.mktemp("sqlite-app")
    env = sqlite_env(data_dir)
    with serve(env, data_dir / "serve.log") as base:
        yield {
            "base": base,
            "admin": cli_token(env, "sqlite-admin", "admin"),
            "staff": cli_token(env, "sqlite-staff", "station_staff"),
            "db": data_dir / "rescue.db",
        }


@pytest.fixture(scope="module")
def pg_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The production shape: PostgreSQL with a connection pool, the tests' S3 and Redis."""
    from media.s3server import free_port

    env = {k: v for k, v in os.environ.items() if k != "DB_POOL_MAX"}
    env["S3_BUCKET"] = f"concurrency-{free_port()}"  # its objects stay out of later tests
    data_dir = tmp_path_factory.mktemp("pg-app")
    with serve(env, data_dir / "serve.log") as base:
        yield {"base": base}


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite":
        return dict(request.getfixturevalue("sqlite_app"))
    from tests.conftest import make_token

    served = dict(request.getfixturevalue("pg_app"))
    served["admin"] = await make_token("admin")
    served["staff"] = await make_token("station_staff")
    return served


def _client(app: dict[str, Any], role: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=app["base"],
        headers={"Authorization": f"Bearer {app[role]}", "Accept-Language": "en"},
        timeout=60,
    )


def _writes(case_id: int, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    from rescue import clock

    # Actions are dated inside the case's stay: the station's today (the served
    # app reads the same clock; a case admitted today admits no earlier date).
    day = clock.today().isoformat()
    return [
        ("POST", f"/api/cases/{case_id}/interviews", {"held_on": day, "notes": f"interview {n}"}),
        (
            "POST",
            f"/api/cases/{case_id}/police-checks",
            {"check_type": "fingerprint", "checked_on": day, "result": f"check {n}"},
        ),
        (
            "POST",
            f"/api/cases/{case_id}/dna-requests",
            {"requested_on": day, "police_unit": "城关派出所", "sample_id": f"S-{n}"},
        ),
        (
            "POST",
            f"/api/cases/{case_id}/filings",
            {"kind": "extension_filing", "on_date": day, "reference": f"F-{n}"},
        ),
        (
            "POST",
            f"/api/cases/{case_id}/announcements",
            {"channel": "newspaper", "published_on": day, "reference": f"A-{n}"},
        ),
        ("PATCH", f"/api/cases/{case_id}", {"height_cm": 150 + n, "reason": f"measured {n}"}),
    ]


async def test_parallel_writers_on_one_case(app):
    """Six kinds of write to one case at once, several rounds: all stored, none 5xx."""
    async with _client(app, "staff") as api:
        created = await api.post("/api/cases", json={"sex": "male", "estimated_age": 60})
        assert created.status_code == 201, created.text
        case_id = created.json()["id"]
        statuses: Counter[int] = Counter()
        for round_no in range(ROUNDS):
            calls = _writes(case_id, round_no)[:WRITERS]
            answers = await asyncio.gather(
                *(api.request(method, path, json=body) for method, path, body in calls)
            )
            for (method, path, _), answer in zip(calls, answers, strict=True):
                statuses[answer.status_code] += 1
                assert answer.status_code < 500, (method, path, answer.text)
                assert answer.status_code in (200, 201), (method, path, answer.text)
        actions = (await api.get(f"/api/cases/{case_id}/search-actions")).json()
        refs = Counter(a["kind"] for a in actions)
        # one of each kind per round, none lost, none doubled
        assert refs == {
            "interview": ROUNDS,
            "police_check": ROUNDS,
            "dna_request": ROUNDS,
            "extension_filing": ROUNDS,
            "announcement": ROUNDS,
        }, refs
        case = (await api.get(f"/api/cases/{case_id}")).json()
        assert case["height_cm"] == 150 + ROUNDS - 1
        assert statuses[200] + statuses[201] == ROUNDS * WRITERS


async def test_parallel_creation_of_one_username(app):
    """20 admins' requests create one name at once: one 201, nineteen 409, one row."""
    name = f"zhang-{secrets.token_hex(3)}"
    async with _client(app, "admin") as api:
        answers = await asyncio.gather(
            *(
                api.post(
                    "/api/admin/users",
                    json={"username": name, "role": "station_staff", "station": "north"},
                )
                for _ in range(20)
            )
        )
        codes = Counter(a.status_code for a in answers)
        assert codes == {201: 1, 409: 19}, [a.text for a in answers if a.status_code >= 500]
        conflict = next(a for a in answers if a.status_code == 409).json()
        assert conflict["error"] == "conflict"
        assert name in conflict["detail"]
        users = (await api.get("/api/admin/users", params={"limit": 200})).json()["items"]
        assert [u["username"] for u in users].count(name) == 1


async def test_sqlite_writer_waits_for_a_long_transaction(sqlite_app):
    """A write lock held by another process for 1.5 s: the API's write waits and
    succeeds (the busy timeout is 15 s), it does not answer 'database is locked'."""
    import sqlite3
    import threading
    import time

    db = Path(sqlite_app["db"])
    held = threading.Event()

    def hold_lock() -> None:
        connection = sqlite3.connect(db, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(1.5)
        connection.execute("COMMIT")
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert held.wait(30)
        async with _client(sqlite_app, "staff") as api:
            created = await api.post("/api/cases", json={"sex": "female", "estimated_age": 30})
        assert created.status_code == 201, created.text
    finally:
        holder.join()


async def test_parallel_reviewers_confirm_two_candidates_of_one_case(pg_app):
    """Two reviewers confirm different candidates of one case at the same moment,
    repeated: one 200, one 409 each time, never a deadlock 500 (issue 11 item 9)."""
    from tests.conftest import make_token
    from tests.integration.helpers import (
        family_confirmation,
        new_case,
        new_notice,
        submit_candidate,
    )

    served = {
        **pg_app,
        "staff": await make_token("station_staff"),
        "r1": await make_token("reviewer"),
        "r2": await make_token("reviewer"),
    }
    async with (
        _client(served, "staff") as staff_api,
        _client(served, "r1") as first,
        _client(served, "r2") as second,
    ):
        outcomes = []
        for attempt in range(8):
            case = await new_case(staff_api, {})
            pair = []
            for n in range(2):
                notice = await new_notice(staff_api, {}, name=f"寻人{attempt}-{n}")
                candidate = await submit_candidate(
                    staff_api,
                    {},
                    kind="staff",
                    values={"summary": f"looks alike {n}"},
                    case_id=case["id"],
                    notice_id=notice["id"],
                )
                cid = candidate["candidate"]["id"] if "candidate" in candidate else candidate["id"]
                await family_confirmation(first, {}, cid)
                pair.append(cid)
            answers = await asyncio.gather(
                first.post(
                    f"/api/candidates/{pair[0]}/decision",
                    json={"decision": "confirm", "reason": "same person"},
                ),
                second.post(
                    f"/api/candidates/{pair[1]}/decision",
                    json={"decision": "confirm", "reason": "same person"},
                ),
            )
            codes = sorted(a.status_code for a in answers)
            assert codes == [200, 409], [a.text for a in answers]
            outcomes.append(codes)
            statuses = sorted(
                [
                    (await first.get(f"/api/candidates/{cid}")).json()["candidate"]["status"]
                    for cid in pair
                ]
            )
            assert statuses == ["confirmed", "superseded"]
            case_now = (await staff_api.get(f"/api/cases/{case['id']}")).json()
            assert case_now["status"] == "identified"
        assert len(outcomes) == 8
