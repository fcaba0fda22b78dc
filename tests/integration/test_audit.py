"""The audit trail: a record per audited call, append-only, and failing closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import make_token
from tests.integration.helpers import new_case, new_notice, upload, upload_file
from tests.support import OBAMA_A, OBAMA_B, no_face_jpeg, photo


async def test_scripted_session_leaves_one_record_per_audited_call(client, staff, admin):
    from rescue.audit.tables import AuditRecord

    calls: list[tuple[str, str, int, bool]] = []  # method, path, status, audited

    async def call(method: str, path: str, audited: bool, **kwargs):
        response = await client.request(method, path, headers=staff, **kwargs)
        calls.append((method, path, response.status_code, audited))
        return response

    case = (
        await call("POST", "/api/cases", True, json={"sex": "male", "found_place": "G318"})
    ).json()
    notice = (
        await call("POST", "/api/notices", True, json={"name": "李四", "source": "family"})
    ).json()
    files = {"file": ("a.jpg", no_face_jpeg())}
    photo = (await call("POST", f"/api/cases/{case['id']}/photos", True, files=files)).json()
    await call("GET", f"/api/photos/{photo['id']}", True)
    await call("GET", f"/api/cases/{case['id']}/candidates", True)
    await call("GET", f"/api/notices/{notice['id']}/candidates", True)
    await call("GET", f"/api/cases/{case['id']}", False)
    await call("GET", "/api/cases", False)
    await call("GET", f"/api/notices/{notice['id']}", False)
    await call("GET", "/api/photos/987654321", True)  # a failed read is recorded too
    await call("POST", "/api/cases", True, json={"estimated_age": 500})  # so is a refused write
    await call(
        "POST",
        f"/api/cases/{case['id']}/announcement",
        True,
        json={"found_place": "城西", "photo_id": photo["id"]},
    )

    records = (
        await AuditRecord.select()
        .where(AuditRecord.role == "station_staff")
        .order_by(AuditRecord.id)
    )
    audited = [(m, p, s) for m, p, s, a in calls if a]
    assert [(r["method"], r["path"], r["status_code"]) for r in records] == audited
    staff_user = records[0]["user_id"]
    assert all(
        r["user_id"] == staff_user and r["username"].startswith("station_staff") for r in records
    )
    assert all(r["client"] == "testclient" for r in records)
    first = records[0]
    assert (first["kind"], first["resource_type"], first["created_id"], first["case_id"]) == (
        "write",
        "case",
        str(case["id"]),
        case["id"],
    )
    upload_record = records[2]
    assert upload_record["route"] == "/api/cases/{case_id}/photos"
    assert upload_record["created_id"] == str(photo["id"])
    assert upload_record["case_id"] == case["id"]
    read = records[3]
    assert (read["kind"], read["resource_type"], read["resource_id"], read["case_id"]) == (
        "read",
        "photo",
        str(photo["id"]),
        case["id"],
    )
    assert records[-3]["status_code"] == 404
    assert records[-2]["status_code"] == 400

    # Filters: by user, by case, by time; and the per-case trail.
    by_user = (await client.get(f"/api/audit?user_id={staff_user}&limit=200", headers=admin)).json()
    assert by_user["total"] == len(audited)
    by_case = (await client.get(f"/api/audit?case_id={case['id']}", headers=admin)).json()
    assert {r["case_id"] for r in by_case["items"]} == {case["id"]}
    per_case = (await client.get(f"/api/cases/{case['id']}/audit", headers=staff)).json()
    assert [r["id"] for r in per_case["items"]] == [r["id"] for r in by_case["items"]]
    assert per_case["total"] == 5  # create, upload, photo read, candidates read, announcement
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = await client.get("/api/audit", params={"since": future}, headers=admin)
    assert later.json()["total"] == 0
    earlier = await client.get("/api/audit", params={"until": future}, headers=admin)
    assert earlier.json()["total"] >= len(audited)


async def test_audit_trail_is_append_only_in_the_database():
    from rescue.audit.tables import AuditRecord

    await AuditRecord.insert(
        AuditRecord(kind="read", method="GET", route="/api/x", path="/api/x", status_code=200)
    )
    with pytest.raises(Exception, match="append-only"):
        await AuditRecord.update({AuditRecord.status_code: 500}).where(AuditRecord.id > 0)
    with pytest.raises(Exception, match="append-only"):
        await AuditRecord.delete().where(AuditRecord.id > 0)
    assert await AuditRecord.count() == 1


async def test_a_write_is_not_carried_out_when_its_record_cannot_be_written(client, staff):
    from rescue.audit.tables import AuditRecord
    from rescue.cases.tables import Case

    db = AuditRecord._meta.db
    await db.run_ddl("ALTER TABLE audit_records RENAME TO audit_records_away")
    try:
        response = await client.post(
            "/api/cases", json={"sex": "female", "found_place": "G318"}, headers=staff
        )
        read = await client.get("/api/photos/1", headers=staff)
        plain = await client.get("/api/cases", headers=staff)  # not audited: unaffected
    finally:
        await db.run_ddl("ALTER TABLE audit_records_away RENAME TO audit_records")
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert (body["error"], body["applied"]) == ("audit_failed", False)
    assert "id" not in body
    assert await Case.count() == 0  # the write was not carried out
    assert read.status_code == 503
    assert plain.status_code == 200


async def _refuse_write_records(db, *, at_commit: bool) -> None:
    """Make the database refuse write records: at their INSERT, or (a deferred
    constraint trigger) only when the transaction commits."""
    await db.run_ddl(
        "CREATE FUNCTION refuse_record() RETURNS trigger AS $$ BEGIN "
        "IF NEW.kind = 'write' THEN RAISE EXCEPTION 'record refused for the test'; END IF; "
        "RETURN NEW; END; $$ LANGUAGE plpgsql"
    )
    if at_commit:
        await db.run_ddl(
            "CREATE CONSTRAINT TRIGGER refuse_record AFTER INSERT ON audit_records "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_record()"
        )
    else:
        await db.run_ddl(
            "CREATE TRIGGER refuse_record BEFORE INSERT ON audit_records "
            "FOR EACH ROW EXECUTE FUNCTION refuse_record()"
        )


async def _allow_records(db) -> None:
    await db.run_ddl("DROP TRIGGER refuse_record ON audit_records")
    await db.run_ddl("DROP FUNCTION refuse_record()")


@pytest.mark.parametrize("at_commit", [False, True], ids=["at-insert", "at-commit"])
async def test_a_write_whose_record_fails_after_it_ran_is_undone(client, staff, at_commit):
    """The write ran, then its record failed (at its INSERT, or at COMMIT): the
    write is rolled back with it, and the answer says nothing was applied."""
    from rescue.audit.tables import AuditRecord
    from rescue.cases.tables import Case

    db = AuditRecord._meta.db
    await _refuse_write_records(db, at_commit=at_commit)
    try:
        response = await client.post(
            "/api/cases", json={"sex": "female", "found_place": "G318"}, headers=staff
        )
    finally:
        await _allow_records(db)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert (body["error"], body["applied"]) == ("audit_failed", False)
    assert await Case.count() == 0
    assert await AuditRecord.count().where(AuditRecord.kind == "write") == 0


async def test_a_photo_whose_record_fails_leaves_no_row_and_no_object(client, staff):
    """The upload stored its object and its row; the record failed at COMMIT:
    the row is rolled back and the object removed (no orphan either way)."""
    from rescue.audit.tables import AuditRecord
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store

    def objects() -> set[str]:
        store = get_store()
        return {o.object_name for o in store.client.list_objects(store.bucket, "photos/", True)}

    case = await new_case(client, staff)
    db = AuditRecord._meta.db
    before = objects()
    await _refuse_write_records(db, at_commit=True)
    try:
        response = await client.post(
            f"/api/cases/{case['id']}/photos",
            files={"file": ("a.jpg", photo(OBAMA_A), "image/jpeg")},
            headers=staff,
        )
    finally:
        await _allow_records(db)
    assert response.status_code == 503, response.text
    assert response.json()["applied"] is False
    assert await Photo.count() == 0
    assert objects() == before


async def test_a_write_record_is_completed_once_and_never_changed(client, staff):
    from rescue.audit.tables import AuditRecord

    case = await new_case(client, staff)
    row = await AuditRecord.select().where(AuditRecord.route == "/api/cases").first()
    assert (row["status_code"], row["created_id"], row["case_id"]) == (
        201,
        str(case["id"]),
        case["id"],
    )
    with pytest.raises(Exception, match="append-only"):
        await AuditRecord.update({AuditRecord.status_code: 500}).where(AuditRecord.id == row["id"])
    begun = await AuditRecord.insert(
        AuditRecord(kind="write", method="POST", route="/api/x", path="/api/x", status_code=0)
    ).returning(AuditRecord.id)
    with pytest.raises(Exception, match="append-only"):  # completing may not rewrite it
        await AuditRecord.update({AuditRecord.status_code: 200, AuditRecord.route: "/api/y"}).where(
            AuditRecord.id == begun[0]["id"]
        )


@pytest.mark.parametrize("bad_id", ["99999999999", "9" * 60])
async def test_an_invalid_id_on_a_write_is_recorded_not_audit_failed(client, staff, bad_id):
    from rescue.audit.tables import AuditRecord

    response = await client.post(
        f"/api/cases/{bad_id}/transitions", json={"to": "closed"}, headers=staff
    )
    assert response.json().get("error") != "audit_failed", response.text
    row = await AuditRecord.select().where(AuditRecord.route.like("%transitions")).first()
    assert row is not None
    assert row["status_code"] == response.status_code
    assert row["case_id"] is None  # an id that names nothing is not kept as the case


async def test_login_attempts_are_audited(client):
    from rescue.audit.tables import AuditRecord

    await client.post("/auth/login", json={"username": "ghost", "password": "x" * 12})
    row = await AuditRecord.select().where(AuditRecord.route == "/auth/login").first()
    assert row is not None
    assert (row["status_code"], row["user_id"], row["kind"]) == (401, None, "write")


async def test_audit_is_admin_only_but_per_case_for_staff(client, staff):
    police = {"Authorization": f"Bearer {await make_token('police_liaison')}"}
    case = await new_case(client, staff)
    assert (await client.get("/api/audit", headers=staff)).status_code == 403
    assert (await client.get(f"/api/cases/{case['id']}/audit", headers=police)).status_code == 403


async def test_matching_session_records_candidate_reads(client, staff, admin):
    """With a real match, reading candidates from both sides is on the case's trail."""
    notice = await new_notice(client, staff)
    await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    case = await new_case(client, staff)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    await client.get(f"/api/cases/{case['id']}/candidates", headers=staff)
    trail = (await client.get(f"/api/cases/{case['id']}/audit?limit=200", headers=admin)).json()
    routes = {r["route"] for r in trail["items"]}
    assert "/api/cases/{case_id}/candidates" in routes
    assert "/api/photos/{photo_id}" in routes  # polled while the worker processed it
    _ = upload


async def test_case_audit_and_handovers_of_a_missing_case_are_404(client, staff):
    for path in ("/api/cases/987654/audit", "/api/cases/987654/handovers"):
        response = await client.get(path, headers=staff)
        assert response.status_code == 404, (path, response.text)
        assert "987654" in response.json()["detail"]


async def test_staff_never_see_others_requests_made_before_their_case_existed(client, staff):
    """South staff probe ids that do not exist yet; when north later creates a case
    under one of those ids, north's case trail does not show south's probes."""
    from rescue.audit.tables import AuditRecord

    south = {"Authorization": f"Bearer {await make_token('station_staff', station='south')}"}
    first = await new_case(client, staff)
    probe_ids = range(first["id"] + 1, first["id"] + 4)
    for case_id in probe_ids:
        for method, path in (
            ("GET", f"/api/cases/{case_id}/audit"),
            ("POST", f"/api/cases/{case_id}/interviews"),
            ("PATCH", f"/api/cases/{case_id}"),
        ):
            response = await client.request(
                method, path, headers=south, **({} if method == "GET" else {"json": {}})
            )
            assert response.status_code in (400, 404), response.text
    assert await AuditRecord.count().where(AuditRecord.case_id.is_in(list(probe_ids))) == 0
    created = [await new_case(client, staff) for _ in probe_ids]
    assert {c["id"] for c in created} & set(probe_ids)
    for case in created:
        trail = await client.get(f"/api/cases/{case['id']}/audit", headers=staff)
        assert trail.status_code == 200
        assert {r["username"] for r in trail.json()["items"]} <= {
            r["username"] for r in trail.json()["items"] if r["role"] != "station_staff"
        } | {await _username(staff)}


async def _username(headers: dict[str, str]) -> str:
    import hashlib

    from rescue.users.tables import ApiToken

    digest = hashlib.sha256(headers["Authorization"].split()[1].encode()).hexdigest()
    row = await ApiToken.select(ApiToken.user.username).where(ApiToken.token_hash == digest).first()
    return str(row["user.username"])
