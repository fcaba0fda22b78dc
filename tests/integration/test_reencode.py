"""Re-encoding on a face model change (issue 16): faces of another model are
searched by no one; a re-encoding run (admin API, CLI) re-detects and re-encodes
the stored originals with the model in use, and re-matches them. The second model
is faked in the database (the recorded model of existing faces), not by mocking
face_recognition: the real worker, store and detector do the work."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import anyio.to_thread

from tests.integration.helpers import candidates, new_case, new_notice, upload_file
from tests.support import OBAMA_A, OBAMA_B

OLD_MODEL = "dlib_face_recognition_resnet_model_v0+hog"
PLAUSIBLE = {"missing_since": "2015-03-01", "age_when_missing": 45}


async def _faces() -> list[dict[str, Any]]:
    from rescue.photos.tables import Face

    return list(await Face.select(Face.id, Face.photo, Face.model, Face.encoding))


async def _wait(client: Any, admin: dict[str, str], run_id: int) -> dict[str, Any]:
    from tests.conftest import worker_alive, worker_log

    deadline = asyncio.get_running_loop().time() + 120
    while True:
        run = (await client.get(f"/api/admin/reencode/{run_id}", headers=admin)).json()
        if run["status"] in {"done", "failed", "cancelled"}:
            return dict(run)
        assert asyncio.get_running_loop().time() < deadline, run
        assert worker_alive(), worker_log()[-3000:]
        await asyncio.sleep(0.25)


async def test_stale_model_faces_are_not_searched_until_reencoded(client, staff, admin, reviewer):
    from rescue.matching.embedding import MODEL_NAME
    from rescue.photos.tables import Face

    case = await new_case(client, staff, sex="male", estimated_age=55)
    case_photo = await upload_file(client, staff, "case", case["id"], OBAMA_A)
    first = await new_notice(client, staff, **PLAUSIBLE)
    await upload_file(client, staff, "notice", first["id"], OBAMA_B)
    assert [c["notice_id"] for c in await candidates(client, staff, "case", case["id"])] == [
        first["id"]
    ]
    before = {f["photo"]: f for f in await _faces()}

    # The faces stored so far were encoded by an older model version.
    await Face.update({Face.model: OLD_MODEL}).where(Face.id > 0)

    # Meanwhile a new notice of the same person: the case's faces are of another
    # model, so they are neither searched nor used as probes.
    second = await new_notice(client, staff, **PLAUSIBLE)
    await upload_file(client, staff, "notice", second["id"], OBAMA_B)
    assert [c["notice_id"] for c in await candidates(client, staff, "case", case["id"])] == [
        first["id"]
    ]

    # Only admins start a run.
    assert (await client.post("/api/admin/reencode", headers=reviewer)).status_code == 403
    started = await client.post("/api/admin/reencode", headers=admin)
    assert started.status_code == 202, started.text
    run = started.json()
    assert (run["kind"], run["model"], run["total"]) == ("reencode", MODEL_NAME, 2)
    run = await _wait(client, admin, run["id"])
    assert run["status"] == "done", run
    assert (run["done"], run["total"], run["error"]) == (2, 2, "")

    after = await _faces()
    assert {f["model"] for f in after} == {MODEL_NAME}
    rewritten = {f["photo"]: f for f in after}
    for photo_id, old in before.items():
        new = rewritten[photo_id]
        assert new["id"] != old["id"]  # new rows: every gallery drops the old ones
        assert new["encoding"] == old["encoding"]  # same model really: same encoding
    # Re-matched: the second notice is now proposed for the case as well.
    found = await candidates(client, staff, "case", case["id"])
    assert {c["notice_id"] for c in found} == {first["id"], second["id"]}
    assert case_photo["id"] in {c["case_photo_id"] for c in found}

    # Nothing left to re-encode: a new run has no photos.
    again = (await client.post("/api/admin/reencode", headers=admin)).json()
    assert again["total"] == 0
    assert (await _wait(client, admin, again["id"]))["status"] == "done"


async def test_reencode_cli_runs_here_and_reports_unreadable_originals(client, staff, admin):
    from rescue.devservices import ROOT
    from rescue.matching.embedding import MODEL_NAME
    from rescue.photos.tables import Face, Photo

    case = await new_case(client, staff)
    await upload_file(client, staff, "case", case["id"], OBAMA_A)
    notice = await new_notice(client, staff, **PLAUSIBLE)
    lost = await upload_file(client, staff, "notice", notice["id"], OBAMA_B)
    await Face.update({Face.model: OLD_MODEL}).where(Face.id > 0)
    # One original is gone from the object store: its faces stay, unsearched.
    await Photo.update({Photo.object_key: "missing/none.jpg"}).where(Photo.id == lost["id"])

    def cli() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "rescue.cli", "reencode", "--now"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = await anyio.to_thread.run_sync(cli)
    assert f"done: 2/2 photo(s) with {MODEL_NAME}" in out, out
    assert f"1 photo(s) not re-encoded (original missing or unreadable): {lost['id']}" in out
    models = {f["photo"]: f["model"] for f in await _faces()}
    assert models[lost["id"]] == OLD_MODEL
    assert {m for p, m in models.items() if p != lost["id"]} == {MODEL_NAME}
