"""``rescue backup`` and ``rescue restore`` for the embedded set-up (SQLite + S3).

A backup is a folder::

    manifest.json   format, time, bucket, and the sha256 and size of every file
    rescue.db       the database, copied with SQLite's online backup API
    objects/<key>   every object of the bucket (photos, documents)

**Consistent while the service runs.** The database is copied first, with
SQLite's online backup API (a consistent snapshot even while the service
writes). Objects are written once under random keys and never changed, and a
photo's object is stored *before* its row (rescue.photos.services), so every
object the snapshot's rows name already exists when the objects are copied
next; objects added afterwards are copied too and are harmless. The only race
is retention deleting an object after the snapshot: the manifest then lists
it under ``missing`` and ``rescue backup`` says so.

**Restore** checks every file against the manifest's sha256 before writing
anything, refuses a data folder that already has a database or a running
instance, copies the database, loads every object into the object store (the
embedded one, started for the purpose, or ``S3_ENDPOINT``) and reads each back
to check its sha256.

PostgreSQL and MinIO deployments use their own tools (``pg_dump``/``pg_restore``,
``mc mirror``): README "Backup and restore".
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from media.storage import ObjectStore
from rescue.settings import Settings

__all__ = ["BackupError", "BackupReport", "backup", "restore", "sha256_file"]

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "rescue.db"


class BackupError(RuntimeError):
    """A backup or restore cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupReport:
    folder: Path
    objects: int
    bytes: int
    missing: list[str]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _object_path(folder: Path, key: str) -> Path:
    path = (folder / "objects" / key).resolve()
    if not path.is_relative_to((folder / "objects").resolve()):
        raise BackupError(f"object key {key!r} leaves the backup folder; the manifest is damaged")
    return path


def _require_sqlite(settings: Settings) -> Path:
    if not settings.database.is_sqlite:
        raise BackupError(
            "rescue backup/restore cover the embedded SQLite set-up; with PostgreSQL "
            "and MinIO use pg_dump/pg_restore and mc mirror (README 'Backup and restore')"
        )
    return Path(settings.database.sqlite_path)


def backup(
    *,
    settings: Settings,
    store: ObjectStore,
    folder: Path,
    progress: Callable[[int], None] | None = None,
) -> BackupReport:
    """Write a backup of the database and every object of ``store`` to ``folder``
    (new or empty). Raises BackupError."""
    source = _require_sqlite(settings)
    if not source.exists():
        raise BackupError(f"there is no database at {source} to back up")
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty; give a new folder for the backup")
    (folder / "objects").mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    target = folder / DATABASE
    with (
        sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src,
        sqlite3.connect(target) as dst,
    ):
        src.backup(dst)
    src.close()
    dst.close()
    objects: list[dict[str, Any]] = []
    total = 0
    for item in store.client.list_objects(store.bucket, recursive=True):
        key = str(item.object_name)
        response = store.client.get_object(store.bucket, key)
        try:
            data = response.read()
            content_type = response.headers.get("Content-Type", "application/octet-stream")
        finally:
            response.close()
            response.release_conn()
        path = _object_path(folder, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        objects.append(
            {
                "key": key,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "content_type": content_type,
            }
        )
        total += len(data)
        if progress is not None:
            progress(len(objects))
    missing = _missing_objects(target, {o["key"] for o in objects})
    manifest = {
        "format": FORMAT,
        "created_at": started.isoformat(),
        "bucket": store.bucket,
        "database": {
            "file": DATABASE,
            "sha256": sha256_file(target),
            "bytes": target.stat().st_size,
        },
        "objects": objects,
        "missing": missing,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return BackupReport(folder=folder, objects=len(objects), bytes=total, missing=missing)


def _missing_objects(database: Path, present: set[str]) -> list[str]:
    """Object keys the database names that the bucket no longer had."""
    keys: set[str] = set()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in tables:
            columns = {r[1] for r in db.execute(f'PRAGMA table_info("{table}")')}
            if "object_key" in columns:
                keys.update(
                    r[0]
                    for r in db.execute(f'SELECT object_key FROM "{table}"')  # noqa: S608 - names from sqlite_master
                    if r[0]
                )
    db.close()
    return sorted(keys - present)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, after checking every file it lists against its sha256."""
    try:
        manifest = dict(json.loads((folder / MANIFEST).read_text()))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder} has no readable {MANIFEST}; is it a backup folder?") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    database = folder / manifest["database"]["file"]
    if not database.exists() or sha256_file(database) != manifest["database"]["sha256"]:
        raise BackupError(f"{database} is missing or damaged (sha256 differs from the manifest)")
    for item in manifest["objects"]:
        path = _object_path(folder, item["key"])
        if not path.exists() or sha256_file(path) != item["sha256"]:
            raise BackupError(f"object {item['key']} is missing or damaged in the backup")
    return manifest


def restore(
    *,
    settings: Settings,
    store: ObjectStore,
    folder: Path,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Restore ``folder`` into the (empty) data folder's database and ``store``.
    Returns the number of objects restored and checked. Raises BackupError."""
    target = _require_sqlite(settings)
    manifest = read_manifest(folder)
    if target.exists():
        raise BackupError(
            f"{target} already exists; restore into an empty DATA_DIR (or move it aside first)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".restoring")
    shutil.copyfile(folder / manifest["database"]["file"], partial)
    store.ensure_bucket()
    for done, item in enumerate(manifest["objects"], start=1):
        data = _object_path(folder, item["key"]).read_bytes()
        store.put(item["key"], data, item.get("content_type") or "application/octet-stream")
        if hashlib.sha256(store.get(item["key"])).hexdigest() != item["sha256"]:
            raise BackupError(f"object {item['key']} did not read back intact from the store")
        if progress is not None:
            progress(done)
    partial.rename(target)  # the database appears only once every object is in place
    return len(manifest["objects"])
