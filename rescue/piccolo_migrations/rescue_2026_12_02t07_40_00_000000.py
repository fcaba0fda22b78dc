"""A unique index on ``cases.backlog_key`` (the key of a row loaded from a backlog
file): SQLite cannot ``ADD COLUMN ... UNIQUE``, so the column was added plain and
the uniqueness comes from this index, on both databases."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T07:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique index on cases.backlog_key"


async def _unique_backlog_key() -> None:
    from rescue.cases.tables import Case

    await Case.raw(
        "CREATE UNIQUE INDEX IF NOT EXISTS cases_backlog_key_unique ON cases (backlog_key)"
    )


async def _drop() -> None:
    from rescue.cases.tables import Case

    await Case.raw("DROP INDEX IF EXISTS cases_backlog_key_unique")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="rescue", description=DESCRIPTION)
    manager.add_raw(_unique_backlog_key)
    manager.add_raw_backwards(_drop)
    return manager
