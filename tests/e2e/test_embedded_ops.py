"""The embedded default (``make run``) operated as a station would: one instance per
data folder, CLI jobs that really run, re-match runs listed, and a backup of the
running instance restored into a new data folder with every record and object back."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path

import httpx

from media.s3server import free_port
from tests.e2e.test_http_only import BIN, ROOT, _chain, _stop, _token, _wait_up


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("S3_", "DATABASE_URL", "REDIS_URL", "INPROCESS_WORKER", "BROKER_", "DB_POOL")
        )
    }
    env.update(DATA_DIR=str(data_dir), PORT=str(free_port()), S3_EMBEDDED_PORT=str(free_port()))
    return env


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "rescue"), "serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{env['PORT']}"
    _wait_up(base, proc, log, within=180)
    return proc, base


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "rescue"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _rows(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        tables = sorted(
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")
        )
        rows = {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}  # noqa: S608
    db.close()
    return rows


def test_embedded_one_instance_jobs_backup_and_restore(tmp_path):
    env = _embedded_env(tmp_path / "var")
    proc, base = _serve(env, tmp_path / "serve.log")
    try:
        # A second start on the same data folder says where the first one serves.
        second_env = {**env, "PORT": str(free_port()), "S3_EMBEDDED_PORT": str(free_port())}
        second = _cli(second_env, "serve")
        assert second.returncode != 0
        assert "already running" in second.stderr
        assert base in second.stderr
        assert "Traceback" not in second.stderr

        token = _token(env, "embedded-ops")
        _chain(base, token)
        headers = {"Authorization": f"Bearer {token}"}

        # A photo left pending (as after a crash): `photos requeue` processes it here.
        database = tmp_path / "var" / "rescue.db"
        with sqlite3.connect(database) as db:
            photo_id = db.execute("SELECT id FROM photos ORDER BY id LIMIT 1").fetchone()[0]
            db.execute("UPDATE photos SET status = 'pending' WHERE id = ?", (photo_id,))
        db.close()
        requeued = _cli(env, "photos", "requeue")
        assert requeued.returncode == 0, requeued.stderr
        assert "processed 1 of 1 pending photo(s)" in requeued.stdout
        assert "queued" not in requeued.stdout
        assert httpx.get(f"{base}/api/photos/{photo_id}", headers=headers).json()["status"] == (
            "processed"
        )

        # Re-match runs here, to the end, and is listed.
        rematched = _cli(env, "rematch")
        assert rematched.returncode == 0, rematched.stderr
        assert " done: 3/3 photo(s)" in rematched.stdout
        assert "queued" not in rematched.stdout
        listed = _cli(env, "rematch", "list")
        assert " done " in listed.stdout
        run_id = listed.stdout.split()[0]
        refused = _cli({**env, "DEFAULT_LOCALE": "en"}, "rematch", "cancel", run_id)
        assert refused.returncode == 1
        assert "already done" in refused.stderr
        in_chinese = _cli(env, "rematch", "cancel", run_id)  # the default language
        assert "已是 done 状态" in in_chinese.stderr

        # Back up the running instance.
        backup = _cli(env, "backup", str(tmp_path / "backup"))
        assert backup.returncode == 0, backup.stderr
        before = _rows(database)
        photos = {
            r[0]: r
            for r in sqlite3.connect(database).execute("SELECT object_key, sha256 FROM photos")
        }
    finally:
        _stop(proc)

    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert {o["key"] for o in manifest["objects"]} >= set(photos)
    assert manifest["missing"] == []

    # A damaged backup is refused before anything is written.
    restored_env = _embedded_env(tmp_path / "restored")
    victim = tmp_path / "backup" / "objects" / manifest["objects"][0]["key"]
    original = victim.read_bytes()
    victim.write_bytes(original + b"x")
    damaged = _cli(restored_env, "restore", str(tmp_path / "backup"))
    assert damaged.returncode == 1
    assert "damaged" in damaged.stderr
    assert not (tmp_path / "restored" / "rescue.db").exists()
    victim.write_bytes(original)

    restored = _cli(restored_env, "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    assert _rows(tmp_path / "restored" / "rescue.db") == before  # every record

    # Every object is back with its sha256, served by the restored instance.
    proc, base = _serve(restored_env, tmp_path / "serve-restored.log")
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with sqlite3.connect(tmp_path / "restored" / "rescue.db") as db:
            photo_rows = db.execute("SELECT id, sha256 FROM photos").fetchall()
        db.close()  # a reader left open would block the server's audit writes
        for photo_id, digest in photo_rows:
            detail = httpx.get(f"{base}/api/photos/{photo_id}", headers=headers).json()
            data = httpx.get(detail["url"], timeout=10).content
            assert hashlib.sha256(data).hexdigest() == digest
        # And every object of the bucket, photos and documents alike.
        from media.storage import ObjectStore
        from rescue.settings import load_settings

        storage = load_settings().storage
        store = ObjectStore.from_settings(
            replace(
                storage,
                access_key="rescue-dev",
                secret_key="rescue-dev-secret-change-me",
                bucket="rescue-photos",
            ),
            f"127.0.0.1:{restored_env['S3_EMBEDDED_PORT']}",
        )
        for item in manifest["objects"]:
            assert hashlib.sha256(store.get(item["key"])).hexdigest() == item["sha256"]
    finally:
        _stop(proc)
