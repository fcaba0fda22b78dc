from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T12:14:36:343101"
VERSION = "1.38.0"
DESCRIPTION = "audit_records append-only (rejects UPDATE and DELETE)"

# The audit trail is append-only: reject UPDATE and DELETE of its rows in the
# database itself (PostgreSQL and SQLite). TRUNCATE (table owner only) stays
# possible for test clean-up; production runs the app as a role without it.
_PG_APPEND_ONLY = [
    """
    CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_records is append-only (% refused)', TG_OP;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_records_append_only
    BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()
    """,
]
_SQLITE_APPEND_ONLY = [
    """
    CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only (UPDATE refused)'); END
    """,
    """
    CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only (DELETE refused)'); END
    """,
]


async def _append_only() -> None:
    from piccolo.engine.postgres import PostgresEngine

    from rescue.audit.tables import AuditRecord

    engine = AuditRecord._meta.db
    statements = _PG_APPEND_ONLY if isinstance(engine, PostgresEngine) else _SQLITE_APPEND_ONLY
    for sql in statements:
        await engine.run_ddl(sql)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="rescue", description=DESCRIPTION
    )

    manager.add_raw(_append_only)

    return manager
