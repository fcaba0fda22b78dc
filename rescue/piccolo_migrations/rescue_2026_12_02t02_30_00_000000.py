from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "faces: log deleted face ids in face_deletions (trigger)"

# Every deleted face leaves its id in face_deletions (a row trigger, on SQLite and
# PostgreSQL), so a worker's gallery drops deleted faces by reading the log from
# its last position instead of counting the faces table per job
# (rescue.matching.services.SideGallery.refresh).
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION rescue_log_face_deletion() RETURNS trigger AS $$
BEGIN
    INSERT INTO face_deletions (face_id) VALUES (OLD.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER = (
    "CREATE TRIGGER faces_log_deletion AFTER DELETE ON faces "
    "FOR EACH ROW EXECUTE FUNCTION rescue_log_face_deletion()"
)
# TRUNCATE fires no row trigger: it logs face id 0, which makes galleries reload.
_PG_TRUNCATE_FUNCTION = """
CREATE OR REPLACE FUNCTION rescue_log_faces_truncate() RETURNS trigger AS $$
BEGIN
    INSERT INTO face_deletions (face_id) VALUES (0);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_PG_TRUNCATE_TRIGGER = (
    "CREATE TRIGGER faces_log_truncate AFTER TRUNCATE ON faces "
    "FOR EACH STATEMENT EXECUTE FUNCTION rescue_log_faces_truncate()"
)
_SQLITE_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS faces_log_deletion AFTER DELETE ON faces "
    "BEGIN INSERT INTO face_deletions (face_id) VALUES (OLD.id); END"
)


async def _deletion_log() -> None:
    from piccolo.engine.postgres import PostgresEngine

    from rescue.photos.tables import Face

    engine = Face._meta.db
    if isinstance(engine, PostgresEngine):
        await engine.run_ddl(_PG_FUNCTION)
        await engine.run_ddl(_PG_TRIGGER)
        await engine.run_ddl(_PG_TRUNCATE_FUNCTION)
        await engine.run_ddl(_PG_TRUNCATE_TRIGGER)
    else:
        await engine.run_ddl(_SQLITE_TRIGGER)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="rescue", description=DESCRIPTION
    )

    manager.add_raw(_deletion_log)

    return manager
