"""``face_deletions.logged_at`` is set by the database, since the trigger on
``faces`` is the only writer: the column default on PostgreSQL; on SQLite (which
cannot add a column with a non-constant default) the trigger writes it. Existing
entries get the time of this migration, so they are pruned
``rescue.retention.DELETION_LOG_DAYS`` after it. (Piccolo runs a migration's raw
steps before its column changes, hence a migration of its own after the column's.)
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-03T01:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "face_deletions.logged_at filled by the database"

# Piccolo stores a timestamptz on SQLite as text, "YYYY-MM-DD HH:MM:SS[.ffffff]+00:00".
_SQLITE_NOW = "(datetime('now') || '+00:00')"
_SQLITE_TRIGGER = (
    "CREATE TRIGGER faces_log_deletion AFTER DELETE ON faces BEGIN "
    f"INSERT INTO face_deletions (face_id, logged_at) VALUES (OLD.id, {_SQLITE_NOW}); END"
)
_SQLITE_OLD_TRIGGER = (
    "CREATE TRIGGER faces_log_deletion AFTER DELETE ON faces "
    "BEGIN INSERT INTO face_deletions (face_id) VALUES (OLD.id); END"
)


async def _logged_at() -> None:
    from piccolo.engine.postgres import PostgresEngine

    from rescue.photos.tables import Face

    engine = Face._meta.db
    if isinstance(engine, PostgresEngine):
        await engine.run_ddl(
            "ALTER TABLE face_deletions ALTER COLUMN logged_at SET DEFAULT CURRENT_TIMESTAMP"
        )
        await engine.run_ddl(
            "UPDATE face_deletions SET logged_at = CURRENT_TIMESTAMP WHERE logged_at IS NULL"
        )
    else:
        await engine.run_ddl("DROP TRIGGER IF EXISTS faces_log_deletion")
        await engine.run_ddl(_SQLITE_TRIGGER)
        await engine.run_ddl(
            f"UPDATE face_deletions SET logged_at = {_SQLITE_NOW} WHERE logged_at IS NULL"
        )


async def _back() -> None:
    from piccolo.engine.postgres import PostgresEngine

    from rescue.photos.tables import Face

    engine = Face._meta.db
    if isinstance(engine, PostgresEngine):
        await engine.run_ddl("ALTER TABLE face_deletions ALTER COLUMN logged_at DROP DEFAULT")
    else:
        await engine.run_ddl("DROP TRIGGER IF EXISTS faces_log_deletion")
        await engine.run_ddl(_SQLITE_OLD_TRIGGER)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="rescue", description=DESCRIPTION)
    manager.add_raw(_logged_at)
    manager.add_raw_backwards(_back)
    return manager
