"""The ``rescue`` command line (click).

rescue serve                      run the API (embedded S3 + in-process worker by default)
rescue migrate                    apply database migrations
rescue users create NAME --role R print a new API token for a new user
rescue users set-password NAME    set a password (prompted, or read from stdin)
rescue photos requeue             re-queue photos left pending
rescue rematch [--now]            re-match every processed photo (threshold/model change)
rescue retention run              delete face data and photos past retention now
rescue retention schedule         run the scheduler: retention, deadlines, recovery sweep (blocking)
rescue deadlines apply            move cases over 10 days unidentified to stranded
rescue deadlines list [--overdue] print due and overdue deadline items
rescue import FILE --kind K --name N --station S [--dry-run]
                                  compare an external list (CSV/xlsx), with a progress bar
"""

from __future__ import annotations

import asyncio
import os
import sys

import click

from rescue.imports.templates import ListKind
from rescue.settings import get_settings

__all__ = ["main"]


def _migrate() -> None:
    """Apply pending migrations; Piccolo's progress output goes to stderr."""
    import contextlib

    from piccolo.apps.migrations.commands.forwards import run_forwards

    with contextlib.redirect_stdout(sys.stderr):
        result = asyncio.run(run_forwards(app_name="all"))
    if not result.success:
        raise click.ClickException(f"migrations failed: {result.message}")


@click.group()
def main() -> None:
    """Rescue station service: intake, family search, matching, reunion."""


@main.command()
def migrate() -> None:
    """Apply database migrations (idempotent)."""
    _migrate()
    click.echo("database is up to date")


@main.command()
@click.option("--host", default=None, help="bind address (HOST, default 127.0.0.1)")
@click.option("--port", default=None, type=int, help="port (PORT, default 8000)")
def serve(host: str | None, port: int | None) -> None:
    """Run the API. Without S3_ENDPOINT an embedded S3 server (SeaweedFS) is
    started under DATA_DIR/s3 and stopped on exit."""
    import signal

    import uvicorn

    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit
    # so the embedded S3 server below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _migrate()
    s3 = None
    if not settings.storage.endpoint:
        from media.s3server import EmbeddedS3

        s3 = EmbeddedS3(
            data_dir=settings.data_dir / "s3",
            access_key=settings.storage.access_key,
            secret_key=settings.storage.secret_key,
            s3_port=settings.storage.embedded_port,
        )
        click.echo(f"starting embedded S3 server on {s3.endpoint} (data in {s3.data_dir}) …")
        try:
            s3.start()
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from exc
        os.environ["S3_ENDPOINT"] = s3.endpoint
        get_settings.cache_clear()
    try:
        click.echo(
            f"\n  API:    http://{host}:{port}/api\n"
            f"  Docs:   http://{host}:{port}/schema\n"
            f"  Data:   {settings.data_dir}  (database: {settings.database.url.split('@')[-1]})\n"
            "  Token:  .venv/bin/rescue users create NAME --role station_staff --station STATION\n"
            "          then send 'Authorization: Bearer <token>'\n"
        )
        uvicorn.run("rescue.app:create_app", factory=True, host=host, port=port, log_level="info")
    finally:
        if s3 is not None:
            click.echo("stopping the embedded S3 server (it takes up to ~15 s) …")
            s3.stop()
            click.echo("stopped")


@main.group()
def users() -> None:
    """Manage users and their tokens."""


@users.command("create")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["station_staff", "police_liaison", "reviewer", "admin"]),
)
@click.option(
    "--station", default="", help="the station the user belongs to (required for station staff)"
)
@click.option(
    "--scope",
    default="",
    help="reviewers, police liaison: stations covered besides their own (a,b or *)",
)
def create_user(name: str, role: str, station: str, scope: str) -> None:
    """Create user NAME and print a new API token (shown once)."""
    if role == "station_staff" and not station.strip():
        raise click.UsageError("station staff belong to a station: add --station NAME")
    from rescue.errors import DomainError
    from rescue.users.services import create_user as create
    from rescue.users.services import issue_token

    _migrate()

    async def run() -> str:
        user_id = await create(username=name, role=role, station=station, scope=scope)
        return await issue_token(
            user_id=user_id, ttl_days=get_settings().token_ttl_days, label="cli"
        )

    try:
        token = asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(token)


@users.command("set-password")
@click.argument("name")
@click.password_option("--password", prompt="Password", help="read from the prompt or stdin")
def set_password(name: str, password: str) -> None:
    """Set user NAME's password (Argon2id-hashed; at least 12 characters)."""
    from rescue.errors import DomainError
    from rescue.users.services import set_password as set_pw

    _migrate()
    try:
        asyncio.run(set_pw(username=name, password=password))
    except DomainError as exc:
        raise click.ClickException(f"{exc.detail} ({exc.accepted})") from exc
    click.echo(f"password of {name} set; log in with POST /auth/login")


@main.group()
def retention() -> None:
    """Deletion of face data and photos of closed cases (docs/privacy.md)."""


@retention.command("run")
def retention_run() -> None:
    """Delete now what is past retention (idempotent; safe from cron)."""
    from rescue.retention import run_retention
    from rescue.runtime import get_store

    report = asyncio.run(run_retention(settings=get_settings().retention, store=get_store()))
    click.echo(
        f"deleted {report.faces_deleted} face encoding(s) and "
        f"{report.photos_deleted} photo(s) of {len(report.cases)} case(s)"
    )


@retention.command("schedule")
def retention_schedule() -> None:
    """Run the scheduler that sends the retention job daily, the deadline job
    hourly and the recovery sweep every RECOVERY_SWEEP_SECONDS (blocking)."""
    from rescue.scheduler import RETENTION_CRON, build_scheduler

    click.echo(
        f"retention scheduled daily at {RETENTION_CRON}, recovery sweep every "
        f"{get_settings().recovery.sweep_seconds} s; Ctrl-C to stop"
    )
    build_scheduler(blocking=True).start()


@main.group()
def photos() -> None:
    """Photo maintenance."""


@photos.command("requeue")
def requeue() -> None:
    """Queue face processing again for every photo still pending (the recovery
    sweep does this by itself for photos pending past PHOTO_REQUEUE_AFTER_SECONDS)."""
    from rescue.photos.services import pending_photo_ids, queue_photos
    from workers.actors import send_photo

    async def run() -> int:
        return await queue_photos(photo_ids=await pending_photo_ids(), send=send_photo)

    click.echo(f"queued {asyncio.run(run())} pending photo(s)")


@main.command()
@click.option("--now", is_flag=True, help="run here and wait, instead of queueing for the workers")
def rematch(now: bool) -> None:
    """Re-match every processed photo (after MATCH_THRESHOLD or the model changed).

    Queues a run for the Dramatiq workers and prints its id; progress is at
    GET /api/admin/rematch/{id}. With --now the run happens in this process.
    """
    from rescue.matching.rematch import get_rematch, run_rematch, start_rematch
    from rescue.runtime import get_galleries

    settings = get_settings()

    async def enqueue(run_id: int) -> None:
        if not now:
            from workers.actors import rematch as actor

            actor.send(run_id)

    async def run() -> str:
        started = await start_rematch(by=None, settings=settings, enqueue=enqueue)
        if not now:
            return f"queued rematch run {started.id} over {started.total} photo(s)"
        status = await run_rematch(run_id=started.id, settings=settings, galleries=get_galleries())
        done = await get_rematch(run_id=started.id)
        return (
            f"rematch run {done.id} {status}: {done.done}/{done.total} photo(s), "
            f"{done.candidates_touched} candidate(s) touched"
        )

    click.echo(asyncio.run(run()))


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", required=True, type=click.Choice([k.value for k in ListKind]))
@click.option(
    "--name", "list_name", required=True, help="the list's name, e.g. 2026年11月公安失踪人员"
)
@click.option("--station", required=True, help="station responsible for warnings on notices")
@click.option("--dry-run", is_flag=True, help="only check the file; create nothing")
def import_list(path: str, kind: str, list_name: str, station: str, dry_run: bool) -> None:
    """Import an external list here: the dry run's findings, then the run with a
    progress bar (rows, rate, time left) on stderr; the summary on stdout.

    Exit status 1 when the file cannot be read (the reason on stderr).
    """
    from pathlib import Path

    from rescue.errors import DomainError
    from rescue.imports.services import create_run, execute_run
    from rescue.runtime import get_store

    settings = get_settings()
    data = Path(path).read_bytes()
    store = get_store()

    async def run() -> None:
        try:
            checked = await create_run(
                kind=ListKind(kind),
                list_name=list_name,
                filename=os.path.basename(path),
                data=data,
                station=station,
                by=None,
                store=store,
                max_bytes=settings.upload.max_bytes,
            )
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
        click.echo(
            f"run {checked.id}: {checked.total_rows} row(s), {checked.valid_rows} valid, "
            f"{checked.error_rows} with problems ({checked.encoding or checked.file_format})"
        )
        for e in checked.errors[:20]:
            click.echo(f"  row {e.row} {e.column}: {e.reason}", err=True)
        if dry_run:
            return
        with click.progressbar(
            length=checked.total_rows,
            label="comparing",
            file=sys.stderr,
            show_eta=True,
            show_pos=True,
        ) as bar:
            seen = 0

            def progress(done: int, total: int) -> None:
                nonlocal seen
                bar.update(done - seen)
                seen = done

            from rescue.imports.tables import ImportRun

            await ImportRun.update(
                {ImportRun.status: "running", ImportRun.started_at: _now()}
            ).where(ImportRun.id == checked.id)
            done = await execute_run(run_id=checked.id, store=store, on_progress=progress)
        click.echo(
            f"run {done.id} {done.status.value}: {done.rows_done} row(s), "
            f"{done.warnings_raised} warning(s) raised"
        )

    asyncio.run(run())


def _now():  # type: ignore[no-untyped-def]
    from rescue import clock

    return clock.now()


@main.group()
def deadlines() -> None:
    """Deadlines (see docs/workflow.md)."""


@deadlines.command("apply")
def deadlines_apply() -> None:
    """Move every admitted/searching case past its stranded deadline (10 days in care,
    unidentified, per the 2015 意见) to stranded, with a system timeline event.
    Idempotent: run it daily (cron) or send the ``apply_deadlines`` actor."""
    from rescue.alerts.services import apply_stranded

    moved = asyncio.run(apply_stranded())
    click.echo(f"moved {len(moved)} case(s) to stranded" + (f": {moved}" if moved else ""))


@deadlines.command("list")
@click.option("--station", default=None)
@click.option("--overdue", is_flag=True, help="only overdue items")
def deadlines_list(station: str | None, overdue: bool) -> None:
    """Print due and overdue items, soonest first."""
    from rescue.alerts.services import list_alerts

    page = asyncio.run(list_alerts(station=station, overdue_only=overdue, limit=10_000))
    for a in page.items:
        flag = "OVERDUE" if a.overdue else "due    "
        click.echo(f"{flag} {a.due_at.isoformat()} {a.case_reference} {a.kind.value}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
