from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "change notifications for the per-process read caches (rescue.changes)"

# Every committed write to a table that an API process caches reads of sends
# NOTIFY rescue_changes with the table's name (once per statement; PostgreSQL
# delivers it at commit and folds duplicates within a transaction). Writers in
# any process (API, worker, CLI, psql) are covered without their cooperation.
# SQLite (embedded, one process) has no NOTIFY: the caches stay off there.
CHANNEL = "rescue_changes"
TABLES = ("users", "api_tokens", "notices", "photos")

_FUNCTION = f"""
CREATE OR REPLACE FUNCTION rescue_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


async def _notify_changes() -> None:
    from piccolo.engine.postgres import PostgresEngine

    from rescue.users.tables import User

    engine = User._meta.db
    if not isinstance(engine, PostgresEngine):
        return
    await engine.run_ddl(_FUNCTION)
    for table in TABLES:
        await engine.run_ddl(
            f"CREATE TRIGGER {table}_notify_change "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION rescue_notify_change()"
        )


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="rescue", description=DESCRIPTION
    )

    manager.add_raw(_notify_changes)

    return manager
