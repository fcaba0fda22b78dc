"""A photo upload whose database connection breaks around the INSERT ends fully
stored or fully absent (issue 11, item 1): decided from the database, never from
the exception.

The service is called in this process (the test client serves the app on another
event loop, and the faults below need a connection pool on this one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.conftest import wait_for_photo
from tests.integration.helpers import new_case
from tests.support import OBAMA_A, photo


@asynccontextmanager
async def photo_insert_fault(when: str) -> AsyncIterator[list[int]]:
    """Terminate (``pg_terminate_backend``) the connection of every INSERT into
    ``photos``, at one of two moments.

    ``when="after_commit"``: an AFTER INSERT trigger records the inserting
    backend's pid in ``faults_cut`` (committed with the row). When the pooled
    connection is released after the INSERT, the pool's reset hook terminates
    that backend from another connection before resetting it, so the reset
    fails: the row is committed but the INSERT call raises. This is the moment
    of the reported loss ("while the INSERT is being released to the pool").

    ``when="before_commit"``: the trigger terminates its own backend: the INSERT
    is rolled back and the call raises.

    Yields the pids terminated after commit.
    """
    import asyncpg

    from rescue.db import postgres_config
    from rescue.photos.tables import Photo
    from rescue.settings import get_settings

    engine: Any = Photo._meta.db
    action = (
        "INSERT INTO faults_cut VALUES (pg_backend_pid())"
        if when == "after_commit"
        else "PERFORM pg_terminate_backend(pg_backend_pid())"
    )
    await engine.run_ddl("CREATE TABLE faults_cut (pid integer)")
    await engine.run_ddl(
        "CREATE FUNCTION faults_photo_insert() RETURNS trigger AS $$ BEGIN "
        f"{action}; RETURN NEW; END; $$ LANGUAGE plpgsql"
    )
    await engine.run_ddl(
        "CREATE TRIGGER faults_photo_insert AFTER INSERT ON photos "
        "FOR EACH ROW EXECUTE FUNCTION faults_photo_insert()"
    )
    admin = await asyncpg.connect(**postgres_config(get_settings().database.url))
    cut: list[int] = []

    async def reset(connection: Any) -> None:
        pid = connection.get_server_pid()
        if await admin.fetchval("DELETE FROM faults_cut WHERE pid = $1 RETURNING pid", pid):
            # Waits (up to 10 s) until the backend is gone.
            assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
            cut.append(pid)
        await connection.reset()

    await engine.start_connection_pool(min_size=1, max_size=2, reset=reset)
    try:
        yield cut
    finally:
        await engine.close_connection_pool()
        await admin.close()
        await engine.run_ddl("DROP TRIGGER faults_photo_insert ON photos")
        await engine.run_ddl("DROP FUNCTION faults_photo_insert()")
        await engine.run_ddl("DROP TABLE faults_cut")


async def _upload(case_id: int, data: bytes, principal: Any) -> Any:
    from rescue.photos.services import upload_photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from workers.actors import send_photo

    return await upload_photo(
        owner="case",
        owner_id=case_id,
        data=data,
        taken_on=None,
        by=principal,
        store=get_store(),
        limits=get_settings().upload,
        enqueue=send_photo,
    )


async def _objects_and_rows() -> tuple[set[str], set[str]]:
    from rescue.photos.tables import Photo
    from rescue.runtime import get_store

    store = get_store()
    objects = {o.object_name for o in store.client.list_objects(store.bucket, "photos/", True)}
    rows = {r["object_key"] for r in await Photo.select(Photo.object_key)}
    return objects, rows


async def test_connection_cut_after_commit_keeps_photo_and_object(client, staff, caplog):
    from rescue.users.services import authenticate

    case = await new_case(client, staff)
    principal = await authenticate(staff["Authorization"].split()[1])
    data = photo(OBAMA_A)
    objects_before, _ = await _objects_and_rows()
    async with photo_insert_fault("after_commit") as cut:
        stored = await _upload(case["id"], data, principal)
    assert len(cut) == 1  # the fault did happen, and the INSERT raised after committing:
    assert "was stored although recording it raised" in caplog.text
    assert stored.status == "pending"
    objects, rows = await _objects_and_rows()
    assert objects - objects_before == rows - objects_before == {*rows} - objects_before
    assert len(objects - objects_before) == 1  # one object, and its row refers to it
    done = await wait_for_photo(client, staff, stored.id)
    assert done["status"] == "processed"
    again = await client.post(
        f"/api/cases/{case['id']}/photos", files={"file": ("a.jpg", data)}, headers=staff
    )
    assert again.status_code == 409  # pointing at a live photo with its object
    assert again.json()["photo_id"] == stored.id


async def test_connection_terminated_before_commit_leaves_nothing_and_retry_works(client, staff):
    from rescue.errors import ServiceUnavailable
    from rescue.users.services import authenticate

    case = await new_case(client, staff)
    principal = await authenticate(staff["Authorization"].split()[1])
    data = photo(OBAMA_A)
    objects_before, rows_before = await _objects_and_rows()
    async with photo_insert_fault("before_commit"):
        with pytest.raises(ServiceUnavailable) as refused:
            await _upload(case["id"], data, principal)
    assert refused.value.extra["stored"] is False
    assert refused.value.extra["retry_after"] > 0
    assert await _objects_and_rows() == (objects_before, rows_before)  # nothing left behind
    retry = await client.post(
        f"/api/cases/{case['id']}/photos", files={"file": ("a.jpg", data)}, headers=staff
    )
    assert retry.status_code == 202, retry.text
