"""Retention of import runs (IMPORT_RETENTION_DAYS; docs/privacy.md "Retention"):
a run's list file, photos ZIP, kept row photos and row records are deleted after
the period without activity; rows of warnings still open keep their data until
verified; the run's summary, the warnings' outcomes and the audit trail stay."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from rescue import clock
from tests.integration.helpers import new_case, new_notice, upload_file
from tests.integration.test_imports import HEADER, csv_bytes, dry_run, headers_of
from tests.integration.test_retention_evidence import _page
from tests.support import OBAMA_A, OBAMA_B, photo

DAY = 24 * 3600.0
DAYS = 30  # IMPORT_RETENTION_DAYS in these tests


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _run_keys(store: Any, run_id: int) -> dict[str, Any]:
    """The run's objects: list file, ZIP, problem-row list, kept row photos by row."""
    from rescue.imports.photos import photos_key
    from rescue.imports.services import skip_key
    from rescue.imports.tables import ImportRun

    row = await ImportRun.select(ImportRun.object_key).where(ImportRun.id == run_id).first()
    key = row["object_key"]
    rows = {int(k.rsplit("/", 1)[-1]): k for k in await store.akeys_under(f"{key}.rows")}
    return {"list": key, "zip": photos_key(key), "skip": skip_key(key), "rows": rows}


async def _execute(run_id: int, store: Any) -> None:
    from rescue.imports.services import execute_run
    from rescue.imports.tables import ImportRun

    await ImportRun.update({ImportRun.status: "running"}).where(ImportRun.id == run_id)
    done = await execute_run(run_id=run_id, store=store)
    assert done.status.value == "done", done


async def _records() -> dict[str, dict[str, Any]]:
    from rescue.imports.tables import ImportRecord

    return {
        r["external_id"]: {**r, "fields": _loads(r["fields"])} for r in await ImportRecord.select()
    }


async def test_a_finished_list_goes_after_the_period_and_open_warnings_keep_their_rows(client):
    """Rows: two face hits on a person in care (Z-1 stays open, Z-8 verified
    not_same), a name hit on a notice (verified no_action), a row that raises
    nothing, a problem row. After the period: every object but the open
    warning's row photo is gone, the verified rows are emptied, the quiet row is
    deleted; warnings, the run's counts and the audit trail stay. Verified
    later, the open warning's row and photo go at the next run."""
    from rescue.audit.tables import AuditRecord
    from rescue.imports.tables import ImportRun, ImportWarning
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings

    store = get_store()
    north = await headers_of("north")
    case = await new_case(client, north, sex="male", estimated_age=50)
    await upload_file(client, north, "case", case["id"], OBAMA_A)
    notice = await new_notice(
        client,
        north,
        name="李秀英",
        sex="female",
        age_when_missing=70,
        last_seen_place="城北汽车站",
    )
    rows = [
        "Z-1,某甲,男,,,11010519491231002X,,,,,奥巴马.jpg",  # face hit: stays open
        "Z-8,某乙,男,,,,,,,,奥巴马.jpg",  # face hit: verified not_same
        "P-2,李秀英,女,,70,,,城北汽车站,,,",  # name hit on the notice: verified no_action
        "P-3,王五,男,1980-01-01,,,,,,,",  # raises nothing
        "P-4,赵六,男,1980-13-01,,,,,,,",  # a problem row (bad date)
    ]
    response = await dry_run(
        client,
        north,
        csv_bytes(rows, header=HEADER + ",照片"),
        photos={"奥巴马.jpg": photo(OBAMA_B)},
        list_name="保留期名单",
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    assert response.json()["errors"]
    with clock.frozen(clock.now()):
        await _execute(run_id, store)
        from rescue.imports.services import _RunFiles

        run_row = await ImportRun.select(ImportRun.object_key).where(ImportRun.id == run_id)
        # This process's copies of the list and ZIP went when the run was done.
        assert run_row[0]["object_key"] not in _RunFiles._files
        warnings = {w["external_id"]: w for w in await ImportWarning.select()}
        assert set(warnings) == {"Z-1", "Z-8", "P-2"}
        for external_id, outcome, note in (
            ("Z-8", "not_same", "年龄不符"),
            ("P-2", "no_action", ""),
        ):
            verified = await client.post(
                f"/api/import-warnings/{warnings[external_id]['id']}/verify",
                json={"outcome": outcome, "note": note},
                headers=north,
            )
            assert verified.status_code == 200, verified.text
        before = (await client.get(f"/api/import-runs/{run_id}", headers=north)).json()
        keys = await _run_keys(store, run_id)
        records = await _records()
        z1_row, z8_row = records["Z-1"]["row_number"], records["Z-8"]["row_number"]
        assert set(keys["rows"]) == {z1_row, z8_row}  # the face hits' photos were kept
        objects = [keys["list"], keys["zip"], keys["skip"], *keys["rows"].values()]
        assert all([await store.aexists(k) for k in objects])
        audit_before = await AuditRecord.count()
        assert audit_before > 0
        settings = RetentionSettings(import_days=DAYS)

        clock.advance((DAYS - 1) * DAY)  # within the period: nothing goes
        report = await run_retention(settings=settings, store=store)
        assert report.import_runs == []
        assert all([await store.aexists(k) for k in objects])
        assert (await _records()).keys() == {"Z-1", "Z-8", "P-2", "P-3"}

        clock.advance(2 * DAY)  # past it
        report = await run_retention(settings=settings, store=store)
        assert report.import_runs == [run_id]
        assert (report.import_records_deleted, report.import_records_emptied) == (1, 2)
        assert report.import_objects_deleted == 4  # list, ZIP, problem rows, Z-8's photo
        for gone in (keys["list"], keys["zip"], keys["skip"], keys["rows"][z8_row]):
            assert not await store.aexists(gone), gone
        assert await store.aexists(keys["rows"][z1_row])  # the open warning's evidence
        records = await _records()
        assert records.keys() == {"Z-1", "Z-8", "P-2"}  # P-3 deleted
        assert records["Z-1"]["fields"]["id_number"] == "11010519491231002X"
        assert records["Z-8"]["fields"] == {}
        assert records["P-2"]["fields"] == {}
        assert await ImportWarning.count() == 3  # outcomes stay
        purged_at = clock.now()

        again = await run_retention(settings=settings, store=store)  # idempotent
        assert again.import_runs == []
        assert (
            again.import_records_deleted,
            again.import_records_emptied,
            again.import_objects_deleted,
        ) == (0, 0, 0)

    # The run's summary stays; its per-row problems (they quote cells) do not.
    after = (await client.get(f"/api/import-runs/{run_id}", headers=north)).json()
    for name in (
        "list_name",
        "list_kind",
        "station",
        "filename",
        "status",
        "total_rows",
        "valid_rows",
        "error_rows",
        "rows_done",
        "warnings_raised",
        "started_at",
        "finished_at",
        "created_at",
    ):
        assert after[name] == before[name], name
    assert after["errors"] == []
    assert after["purged_at"] is not None
    run = await ImportRun.select().where(ImportRun.id == run_id).first()
    assert run["purged_at"] == purged_at
    assert run["created_by"] is not None
    assert await AuditRecord.count() >= audit_before  # the trail is never touched
    start = await client.post(f"/api/import-runs/{run_id}/start", headers=north)
    assert start.status_code == 409
    assert "retention" in start.json()["detail"]
    page = await _page(client, "station_staff", f"/imports/{run_id}")
    assert 'id="run-purged"' in page
    assert "按保留规则删除" in page
    assert 'id="start-form"' not in page

    # Staff still see what they verify: the open warning shows its row.
    items = (await client.get("/api/import-warnings", headers=north)).json()["items"]
    shown = {w["external_id"]: w for w in items}
    assert shown["Z-1"]["record"]["name"] == "某甲"
    assert shown["Z-8"]["record"] == {}
    assert shown["Z-8"]["outcome"] == "not_same"
    assert shown["Z-8"]["note"] == "年龄不符"
    listed = await _page(client, "station_staff", "/warnings")
    assert "record-purged" in listed
    assert "某甲" in listed  # the open warning's row

    # Verified "helped": the row's kept photo goes on the notice made from the row
    # (so it is not needed afterwards); the next run releases the row and its photo.
    helped = await client.post(
        f"/api/import-warnings/{warnings['Z-1']['id']}/verify",
        json={"outcome": "helped", "note": "家属看照片确认"},
        headers=north,
    )
    assert helped.status_code == 200, helped.text
    candidate = (
        await client.get(f"/api/candidates/{helped.json()['candidate_id']}", headers=north)
    ).json()["candidate"]
    made = (await client.get(f"/api/notices/{candidate['notice_id']}", headers=north)).json()
    assert len(made["photos"]) == 1  # the row's photo, copied before the row goes
    with clock.frozen(purged_at + timedelta(days=1)):
        report = await run_retention(settings=settings, store=store)
        assert (report.import_records_emptied, report.import_objects_deleted) == (1, 1)
        assert report.import_runs == []
        assert not await store.aexists(keys["rows"][z1_row])
        assert (await _records())["Z-1"]["fields"] == {}
        again = await run_retention(settings=settings, store=store)
        assert (again.import_records_emptied, again.import_objects_deleted) == (0, 0)
    assert (
        len(
            (await client.get(f"/api/notices/{candidate['notice_id']}", headers=north)).json()[
                "photos"
            ]
        )
        == 1
    )  # the notice's own copy stays
    assert notice["id"] != candidate["notice_id"]


async def test_unstarted_failed_and_stopped_runs_go_after_the_period_without_activity(client):
    """Every status counts from the run's last activity (its own or a chunk's):
    a dry run never started, a failed run, a run stopped while running; a chunk
    that moved recently keeps its run. A purged run is neither started nor
    resumed, and a job queued before does nothing."""
    from rescue.imports.services import InjectedFailure, execute_run
    from rescue.imports.tables import ImportChunk, ImportRecord, ImportRun
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings

    store = get_store()
    north = await headers_of("north")
    quiet = [f"Q-{i},某{i},男,,40,,,,," for i in range(25)]
    checked = (await dry_run(client, north, csv_bytes(quiet[:3]))).json()
    failed = (await dry_run(client, north, csv_bytes(quiet))).json()
    stopped = (await dry_run(client, north, csv_bytes(quiet))).json()
    settings = RetentionSettings(import_days=DAYS)
    with clock.frozen(clock.now()):
        await ImportRun.update({ImportRun.status: "running"}).where(
            ImportRun.id.is_in([failed["id"], stopped["id"]])
        )
        with pytest.raises(InjectedFailure):
            await execute_run(run_id=failed["id"], store=store, batch_size=10, fail_after_batches=1)
        await execute_run(run_id=stopped["id"], store=store, stop_after=5)
        assert await ImportRecord.count().where(ImportRecord.run == failed["id"]) == 10
        keys = {r["id"]: await _run_keys(store, r["id"]) for r in (checked, failed, stopped)}

        clock.advance((DAYS + 1) * DAY)
        # The stopped run's chunk moved a day ago (another worker took it up): kept.
        await ImportChunk.update({ImportChunk.updated_at: clock.now() - timedelta(days=1)}).where(
            ImportChunk.run == stopped["id"]
        )
        report = await run_retention(settings=settings, store=store)
        assert report.import_runs == [checked["id"], failed["id"]]
        assert report.import_records_deleted == 10
        assert await ImportRecord.count().where(ImportRecord.run == failed["id"]) == 0
        assert await ImportRecord.count().where(ImportRecord.run == stopped["id"]) == 5
        for run_id in (checked["id"], failed["id"]):
            for name in ("list", "zip", "skip"):
                assert not await store.aexists(keys[run_id][name])
        assert await store.aexists(keys[stopped["id"]]["list"])
        chunks = await ImportChunk.select(ImportChunk.first_id).where(
            ImportChunk.run == failed["id"]
        )
        assert chunks
        assert all(c["first_id"] == "" for c in chunks)

        clock.advance((DAYS + 1) * DAY)  # now the stopped run too
        report = await run_retention(settings=settings, store=store)
        assert report.import_runs == [stopped["id"]]
        assert await ImportRecord.count() == 0
        assert not await store.aexists(keys[stopped["id"]]["list"])

    for run_id, status in ((checked["id"], "checked"), (failed["id"], "failed")):
        body = (await client.get(f"/api/import-runs/{run_id}", headers=north)).json()
        assert (body["status"], body["errors"]) == (status, [])
        assert body["purged_at"] is not None
        refused = await client.post(f"/api/import-runs/{run_id}/start", headers=north)
        assert refused.status_code == 409, refused.text
    assert (await client.get(f"/api/import-runs/{failed['id']}", headers=north)).json()[
        "rows_done"
    ] == 10  # the counts stay (summed over the chunks)
    queued = await execute_run(run_id=stopped["id"], store=store)  # a job queued before
    assert queued.status.value == "running"
    assert await ImportRecord.count() == 0


async def test_a_backlog_runs_file_and_photos_go_too(client, staff):
    from rescue.imports.tables import ImportRun
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings
    from tests.integration.test_backlog import STRANDED, photos_zip, table
    from tests.integration.test_backlog import dry_run as backlog_dry_run

    store = get_store()
    response = await backlog_dry_run(
        client, staff, table([STRANDED]), photos_zip(**{"b.jpg": photo(OBAMA_A)})
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    row = await ImportRun.select().where(ImportRun.id == run_id).first()
    objects = [row["object_key"], row["archive_key"]]
    assert all([await store.aexists(k) for k in objects])
    report = await run_retention(
        settings=RetentionSettings(import_days=DAYS),
        store=store,
        now=clock.now() + timedelta(days=DAYS + 1),
    )
    assert report.import_runs == [run_id]
    assert report.import_objects_deleted == 2
    assert not any([await store.aexists(k) for k in objects])
    refused = await client.post(f"/api/backlog-runs/{run_id}/start", headers=staff)
    assert refused.status_code == 409
    page = await _page(client, "station_staff", f"/backlog/{run_id}")
    assert 'id="run-purged"' in page
    assert 'id="confirm-form"' not in page


async def test_an_unreachable_object_store_leaves_the_rows_as_they_were(client):
    """Objects go first: when the store fails, nothing in the database changed
    (the run is not marked, its rows keep their data) and the next run with
    the store back does it all."""
    from media.s3server import free_port
    from media.storage import ObjectStore, StorageUnavailable
    from rescue.imports.tables import ImportRecord, ImportRun
    from rescue.retention import run_retention
    from rescue.runtime import get_store
    from rescue.settings import RetentionSettings, get_settings

    store = get_store()
    north = await headers_of("north")
    run = (await dry_run(client, north, csv_bytes(["Q-1,某甲,男,,40,,,,,"]))).json()
    await _execute(run["id"], store)
    keys = await _run_keys(store, run["id"])
    down = ObjectStore.from_settings(
        replace(get_settings().storage, timeout_seconds=1, retries=0), f"127.0.0.1:{free_port()}"
    )
    settings = RetentionSettings(import_days=DAYS)
    later = clock.now() + timedelta(days=DAYS + 1)
    with pytest.raises(StorageUnavailable):
        await run_retention(settings=settings, store=down, now=later)
    row = await ImportRun.select(ImportRun.purged_at).where(ImportRun.id == run["id"]).first()
    assert row["purged_at"] is None
    assert await ImportRecord.count() == 1
    assert await store.aexists(keys["list"])
    report = await run_retention(settings=settings, store=store, now=later)
    assert report.import_runs == [run["id"]]
    assert await ImportRecord.count() == 0
    assert not await store.aexists(keys["list"])
