from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T02:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit_records: a write's record is written first and completed once"

# A write's audit record is inserted before the write runs (status_code 0: "in
# progress") and completed once with its outcome (rescue.audit.middleware). The
# trail stays append-only: the one UPDATE allowed sets status_code from 0 and may
# fill in created_id and case_id when they were empty; every other column must
# stay as it was, and a completed record can never change again. DELETE stays
# refused.
_SAME = (
    "id", "at", "user_id", "username", "role", "kind", "method", "route", "path",
    "resource_type", "resource_id", "client",
)
_PG_CONDITION = (
    "OLD.status_code = 0 AND NEW.status_code <> 0"
    + "".join(f" AND NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _SAME)
    + " AND (OLD.created_id IS NULL OR NEW.created_id IS NOT DISTINCT FROM OLD.created_id)"
    + " AND (OLD.case_id IS NULL OR NEW.case_id IS NOT DISTINCT FROM OLD.case_id)"
)
_PG = [
    f"""
    CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND {_PG_CONDITION} THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_records is append-only (% refused)', TG_OP;
    END;
    $$ LANGUAGE plpgsql
    """,
]
_SQLITE_CONDITION = (
    "OLD.status_code = 0 AND NEW.status_code <> 0"
    + "".join(f" AND NEW.{c} IS OLD.{c}" for c in _SAME)
    + " AND (OLD.created_id IS NULL OR NEW.created_id IS OLD.created_id)"
    + " AND (OLD.case_id IS NULL OR NEW.case_id IS OLD.case_id)"
)
_SQLITE = [
    "DROP TRIGGER IF EXISTS audit_records_no_update",
    f"""
    CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
    WHEN NOT ({_SQLITE_CONDITION})
    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only (UPDATE refused)'); END
    """,
]


async def _complete_once() -> None:
    from piccolo.engine.postgres import PostgresEngine

    from rescue.audit.tables import AuditRecord

    engine = AuditRecord._meta.db
    for sql in _PG if isinstance(engine, PostgresEngine) else _SQLITE:
        await engine.run_ddl(sql)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="rescue", description=DESCRIPTION
    )

    manager.add_raw(_complete_once)

    return manager
