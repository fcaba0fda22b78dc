"""Retention of the face deletion log and of import runs (rescue.retention):
``face_deletions.logged_at`` (when the face was deleted; filled by the database,
next migration) and ``import_runs.purged_at`` (when the retention run deleted the
run's list objects and rows)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-03T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "face_deletions.logged_at, import_runs.purged_at (retention)"

_NULL_TIMESTAMP = {
    "default": None,
    "null": True,
    "primary_key": False,
    "unique": False,
    "index": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="rescue", description=DESCRIPTION)
    manager.add_column(
        table_class_name="FaceDeletion",
        tablename="face_deletions",
        column_name="logged_at",
        db_column_name="logged_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params=dict(_NULL_TIMESTAMP),
        schema=None,
    )
    manager.add_column(
        table_class_name="ImportRun",
        tablename="import_runs",
        column_name="purged_at",
        db_column_name="purged_at",
        column_class_name="Timestamptz",
        column_class=Timestamptz,
        params=dict(_NULL_TIMESTAMP),
        schema=None,
    )
    return manager
