"""The ``rescue`` command line (click).

rescue serve                      run the API (embedded S3 + in-process worker by default)
rescue migrate                    apply database migrations
rescue users create NAME --role R print a new API token for a new user
rescue users set-password NAME    set a password (prompted, or read from stdin)
rescue photos requeue             re-queue photos left pending
rescue rematch [--now]            re-match every processed photo (threshold/model change)
rescue calibrate FOLDER           measure face-distance bands on a labelled folder, use them
rescue retention run              delete face data and photos past retention now
rescue retention schedule         run the scheduler: retention, deadlines, recovery sweep (blocking)
rescue deadlines apply            move cases over 10 days unidentified to stranded
rescue deadlines list [--overdue] print due and overdue deadline items
rescue calendar load FILE         load a year's official holiday schedule (JSON)
rescue calendar list              years the working-day calendar knows
rescue doctor                     check every setting and backing service, say how to fix
rescue worker [--processes N]     run Dramatiq workers (production; logs in the one format)
rescue backup FOLDER              embedded set-up: database + objects, sha256 manifest
rescue restore FOLDER             into an empty DATA_DIR, every sha256 checked
rescue rematch list|cancel ID     re-match runs
rescue import FILE --kind K --name N --station S [--dry-run]
                                  compare an external list (CSV/xlsx), with a progress bar
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rescue.imports.templates import ListKind
from rescue.settings import SettingsError, get_settings

if TYPE_CHECKING:
    from media.storage import ObjectStore

__all__ = ["main"]


class _Group(click.Group):
    """A malformed setting ends any command with one line, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            settings = get_settings()
        except SettingsError as exc:
            if ctx.protected_args[:1] == ["doctor"]:
                return super().invoke(ctx)
            from rescue.doctor import exit_with

            exit_with(exc)
        from rescue.logs import configure_logging

        configure_logging(settings.ops)
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            from rescue.doctor import exit_with

            exit_with(exc)
        except Exception as exc:
            # A backing service down or missing (database unreachable, no such
            # database): one line naming it and where to look, never a traceback.
            from rescue.errors import is_unavailable

            missing_db = type(exc).__name__ == "InvalidCatalogNameError"
            if not (is_unavailable(exc) or missing_db or isinstance(exc, OSError)):
                raise
            from urllib.parse import urlsplit

            from rescue.doctor import EXIT_SERVICE
            from rescue.settings import redact_url

            said = " ".join(str(exc).split())[:200]
            for secret in (urlsplit(settings.database.url).password, settings.redis_url):
                said = said.replace(secret, "***") if secret else said
            click.echo(
                f"error: a backing service is unavailable ({type(exc).__name__}: {said}); "
                f"database {redact_url(settings.database.url)}; "
                "run `rescue doctor` to see what is wrong and how to fix it",
                err=True,
            )
            raise SystemExit(EXIT_SERVICE) from None


async def _apply_migrations() -> tuple[bool, str, int, int]:
    """Run the migrations not yet applied, once; ``(success, Piccolo's message,
    applied now, known in all)``. Nothing is run when none is pending."""
    from piccolo.apps.migrations.commands.check import CheckMigrationManager
    from piccolo.apps.migrations.commands.forwards import run_forwards

    statuses = await CheckMigrationManager(app_name="all").get_migration_statuses()
    pending = sum(1 for status in statuses if not status.has_ran)
    if not pending:
        return True, "", 0, len(statuses)
    result = await run_forwards(app_name="all")
    return result.success, result.message or "", pending, len(statuses)


def _migrate(*, announce: bool = False) -> None:
    """Apply pending migrations and say what was done in one line (the catalogue's).

    Piccolo's own progress lines are held back: on a fresh database they contradict
    each other ("32 migrations already complete", then "32 migrations not yet run":
    Piccolo 1.x counts every known migration as complete). They go to stderr only
    when a migration fails, with the error.

    With ``announce`` (``rescue migrate``, ``rescue serve``) the line goes to
    stdout whatever was done; otherwise to stderr and only when migrations were
    applied (stdout is the command's result, e.g. the token of ``users create``).

    Raises:
        click.ClickException: a migration failed (Piccolo reported no success).
    """
    import contextlib
    import io

    from rescue.i18n import _

    progress = io.StringIO()
    try:
        with contextlib.redirect_stdout(progress):
            success, message, applied, total = asyncio.run(_apply_migrations())
    except BaseException:
        sys.stderr.write(progress.getvalue())
        raise
    if not success:
        sys.stderr.write(progress.getvalue())
        raise click.ClickException(_("Database migration failed: {reason}", reason=message))
    if applied and applied == total:
        line = _("Database created: {count} migrations applied.", count=applied)
    elif applied:
        line = _(
            "Database updated: {count} new migrations applied ({total} in all).",
            count=applied,
            total=total,
        )
    else:
        line = _("Database up to date: all {total} migrations were applied before.", total=total)
    if announce or applied:
        click.echo(line, err=not announce)


@click.group(cls=_Group)
def main() -> None:
    """Rescue station service: intake, family search, matching, reunion."""


@main.command()
def migrate() -> None:
    """Apply database migrations (idempotent); one line says what was done."""
    _migrate(announce=True)


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
    from datetime import UTC, datetime

    from rescue.instance import AlreadyRunning, InstanceLock

    lock = InstanceLock(settings.data_dir)
    try:
        lock.acquire(
            api=f"http://{host}:{port}",
            s3=settings.storage.endpoint or f"127.0.0.1:{settings.storage.embedded_port}",
            started=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from exc
    _migrate(announce=True)
    s3 = None
    if not settings.storage.endpoint:
        from media.s3server import EmbeddedS3

        s3 = EmbeddedS3(
            data_dir=settings.data_dir / "s3",
            access_key=settings.storage.access_key,
            secret_key=settings.storage.secret_key,
            s3_port=settings.storage.embedded_port,
            bind=settings.storage.embedded_host,
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
        # Logging is already set up (rescue.logs); uvicorn must not install its own.
        uvicorn.run(
            "rescue.app:create_app",
            factory=True,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
        )
    finally:
        if s3 is not None:
            click.echo("stopping the embedded S3 server (it takes up to ~15 s) …")
            s3.stop()
            click.echo("stopped")
        lock.release()


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("dramatiq_args", nargs=-1, type=click.UNPROCESSED)
def worker(dramatiq_args: tuple[str, ...]) -> None:
    """Run the Dramatiq workers: ``dramatiq workers.broker workers.actors`` with the
    given options (e.g. ``--processes 2 --threads 2``; ``rescue worker --help``).

    The same as calling ``dramatiq`` directly, except that the supervising process
    logs in the service's one format too, and Dramatiq's own shutdown wait is
    ``WORKER_STOP_SECONDS`` (workers.lifecycle enforces it either way).
    """
    settings = get_settings()
    stop_ms = int(settings.ops.worker_stop_seconds * 1000)
    # Dramatiq's Prometheus middleware shares its counters through a folder
    # (default /tmp/dramatiq-prometheus, shared by every Dramatiq on the host and
    # never emptied): give this deployment's workers their own, emptied at start.
    if "dramatiq_prom_db" not in os.environ:
        prom_db = settings.data_dir / "dramatiq-prometheus"
        with contextlib.suppress(FileNotFoundError):
            for stale in prom_db.iterdir():
                stale.unlink()
        prom_db.mkdir(parents=True, exist_ok=True)
        os.environ["dramatiq_prom_db"] = str(prom_db)  # noqa: SIM112 - Dramatiq's name
    # (before importing Dramatiq: its Prometheus middleware reads the folder then)
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    args = make_argument_parser().parse_args(
        [
            "workers.broker",
            "workers.actors",
            "--worker-shutdown-timeout",
            str(stop_ms),
            *list(dramatiq_args),
        ]
    )
    sys.exit(dramatiq_main(args))


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


def _read_password(given: str | None) -> str:
    """The new password: ``--password`` if given; else typed at a terminal (hidden,
    asked twice, through getpass); else the first line of standard input without its
    line ending (a pipe or a file: getpass cannot hide what it does not show and
    warns about it, so it is not used there).

    Raises:
        click.UsageError: standard input is not a terminal and its first line is empty.
    """
    from rescue.i18n import _

    if given is not None:
        return given
    stdin = sys.stdin
    if stdin.isatty():
        return str(
            click.prompt(
                _("New password"),
                hide_input=True,
                confirmation_prompt=_("New password again"),
            )
        )
    password = stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise click.UsageError(
            _(
                "No password on standard input: give it as the first line "
                "(or run the command at a terminal to type it)."
            )
        )
    return password


@users.command("set-password")
@click.argument("name")
@click.option(
    "--password",
    default=None,
    help="the password (default: typed at a terminal, or the first line of stdin)",
)
def set_password(name: str, password: str | None) -> None:
    """Set user NAME's password (Argon2id-hashed; at least 12 characters).

    At a terminal the password is typed twice, hidden; piped in (``printf '%s\\n'
    "$PW" | rescue users set-password NAME``) the first line of standard input is
    the password, without its line ending.
    """
    from rescue.errors import DomainError
    from rescue.users.services import set_password as set_pw

    password = _read_password(password)
    _migrate()
    try:
        asyncio.run(set_pw(username=name, password=password))
    except DomainError as exc:
        raise click.ClickException(f"{exc.detail} ({exc.accepted})") from exc
    click.echo(f"password of {name} set; log in to the workbench at /login (API: POST /auth/login)")


@main.group()
def retention() -> None:
    """Deletion of face data and photos of closed cases and their matched notices,
    of closed online search requests, of old import runs' lists and rows, and of
    the old face deletion log (docs/privacy.md)."""


@retention.command("run")
def retention_run() -> None:
    """Delete now what is past retention (idempotent; safe from cron)."""
    from rescue.retention import run_retention
    from rescue.runtime import get_store

    report = asyncio.run(run_retention(settings=get_settings().retention, store=get_store()))
    click.echo(
        f"deleted {report.faces_deleted} face encoding(s) and "
        f"{report.photos_deleted} photo(s) of {len(report.cases)} case(s) and "
        f"{len(report.notices)} matched notice(s); closed {report.requests_closed} and "
        f"purged {report.requests_purged} online search request(s); purged "
        f"{len(report.import_runs)} import run(s) ({report.import_records_deleted} row(s) "
        f"deleted, {report.import_records_emptied} emptied, {report.import_objects_deleted} "
        f"object(s) removed); pruned {report.deletion_log_pruned} face deletion log entries"
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


def _embedded() -> bool:
    """No broker: work queued here would go to an in-memory queue that no worker
    reads (README "Embedded jobs"), so such commands do the work themselves."""
    return not get_settings().redis_url


def _use_running_store() -> None:
    """Embedded mode: point this process at the S3 server of the running
    ``rescue serve`` (none running: the work waits for its start-up)."""
    settings = get_settings()
    if settings.storage.endpoint:
        return
    from rescue.instance import InstanceLock

    running = InstanceLock(settings.data_dir).running()
    if running is None or not running.get("s3"):
        raise click.ClickException(
            "no `rescue serve` is running on this data folder; it processes every "
            "pending photo itself when it starts, so start it instead"
        )
    os.environ["S3_ENDPOINT"] = str(running["s3"])
    get_settings.cache_clear()


@photos.command("requeue")
def requeue() -> None:
    """Process again every photo still pending (the recovery sweep does this by
    itself for photos pending past PHOTO_REQUEUE_AFTER_SECONDS).

    With workers (REDIS_URL) the photos are queued for them; in the embedded
    set-up this command processes them itself, with a progress bar.
    """
    from rescue.photos.services import pending_photo_ids

    if not _embedded():
        from rescue.photos.services import queue_photos
        from workers.actors import send_photo

        async def send_all() -> int:
            return await queue_photos(photo_ids=await pending_photo_ids(), send=send_photo)

        click.echo(f"queued {asyncio.run(send_all())} pending photo(s) for the workers")
        return
    ids = asyncio.run(pending_photo_ids())
    _use_running_store()
    from rescue.matching import services as matching
    from rescue.runtime import get_galleries, get_store

    async def run() -> int:
        failed = 0
        with click.progressbar(length=len(ids), label="processing photos", file=sys.stderr) as bar:
            for photo_id in ids:
                try:
                    await matching.process_photo(
                        photo_id=photo_id,
                        store=get_store(),
                        settings=get_settings(),
                        galleries=get_galleries(),
                    )
                except Exception:  # noqa: BLE001 - counted; the photo stays pending
                    failed += 1
                bar.update(1)
        return failed

    failed = asyncio.run(run())
    click.echo(f"processed {len(ids) - failed} of {len(ids)} pending photo(s)")
    if failed:
        raise click.ClickException(f"{failed} photo(s) failed and stay pending; see the log")


@main.group(invoke_without_command=True)
@click.option("--now", is_flag=True, help="run here and wait, instead of queueing for the workers")
@click.pass_context
def rematch(ctx: click.Context, now: bool) -> None:
    """Re-match every processed photo (after MATCH_THRESHOLD or the model changed).

    With workers (REDIS_URL) the run is queued for them and its id printed;
    progress is at GET /api/admin/rematch/{id} and `rescue rematch list`. In the
    embedded set-up, or with --now, the run happens here, with a progress bar.
    `rescue rematch cancel ID` stops a queued or running run.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rescue.matching.rematch import get_rematch, run_rematch, start_rematch
    from rescue.runtime import get_galleries

    settings = get_settings()
    here = now or _embedded()

    async def enqueue(run_id: int) -> None:
        if not here:
            from workers.actors import rematch as actor

            actor.send(run_id)

    async def run() -> str:
        started = await start_rematch(by=None, settings=settings, enqueue=enqueue)
        if not here:
            return f"queued rematch run {started.id} over {started.total} photo(s) for the workers"
        with click.progressbar(
            length=started.total, label=f"rematch run {started.id}", file=sys.stderr
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.pos)

            status = await run_rematch(
                run_id=started.id, settings=settings, galleries=get_galleries(), progress=progress
            )
        done = await get_rematch(run_id=started.id)
        return (
            f"rematch run {done.id} {status}: {done.done}/{done.total} photo(s), "
            f"{done.candidates_touched} candidate(s) touched"
        )

    click.echo(asyncio.run(run()))


@rematch.command("list")
def rematch_list() -> None:
    """The latest re-matching runs, newest first."""
    from rescue.matching.rematch import list_rematches

    for run in asyncio.run(list_rematches(limit=20)):
        click.echo(
            f"{run.id:>5} {run.status:<9} {run.done}/{run.total} photo(s) "
            f"{run.candidates_touched} candidate(s) {run.created_at.isoformat(timespec='seconds')}"
        )


@rematch.command("cancel")
@click.argument("run_id", type=int)
def rematch_cancel(run_id: int) -> None:
    """Cancel queued or running run RUN_ID (it stops within 10 photos)."""
    from rescue.errors import DomainError
    from rescue.matching.rematch import cancel_rematch

    try:
        run = asyncio.run(cancel_rematch(run_id=run_id))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"rematch run {run.id} {run.status} at {run.done}/{run.total} photo(s)")


@main.command()
@click.option("--now", is_flag=True, help="run here and wait, instead of queueing for the workers")
def reencode(now: bool) -> None:
    """Re-encode photos whose faces another face model encoded, then re-match them.

    Run after the face model changed (rescue.matching.embedding.MODEL_NAME): until
    then those faces are searched by no one. With workers (REDIS_URL) the run is
    queued and its id printed (progress at GET /api/admin/reencode/{id}); in the
    embedded set-up, or with --now, it runs here with a progress bar.
    """
    from rescue.matching.reencode import run_reencode, start_reencode
    from rescue.matching.rematch import get_rematch
    from rescue.runtime import get_galleries, get_store

    settings = get_settings()
    here = now or _embedded()

    async def enqueue(run_id: int) -> None:
        if not here:
            from workers.actors import reencode as actor

            actor.send(run_id)

    async def run() -> str:
        started = await start_reencode(by=None, settings=settings, enqueue=enqueue)
        if not here:
            return (
                f"queued re-encoding run {started.id} over {started.total} photo(s) for the workers"
            )
        with click.progressbar(
            length=started.total, label=f"re-encoding run {started.id}", file=sys.stderr
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.pos)

            status = await run_reencode(
                run_id=started.id,
                settings=settings,
                store=get_store(),
                galleries=get_galleries(),
                progress=progress,
            )
        done = await get_rematch(run_id=started.id)
        return (
            f"re-encoding run {done.id} {status}: {done.done}/{done.total} photo(s) with "
            f"{done.model}, {done.candidates_touched} candidate(s) touched"
            + (f"; {done.error}" if done.error else "")
        )

    click.echo(asyncio.run(run()))


@contextlib.contextmanager
def _object_store(*, restoring: bool) -> Iterator[ObjectStore]:
    """The bucket to back up from or restore into: ``S3_ENDPOINT``; else the S3
    server of the ``rescue serve`` running on DATA_DIR (backup only); else an
    embedded S3 server started here on DATA_DIR/s3 for the purpose."""
    from media.s3server import EmbeddedS3, free_port
    from media.storage import ObjectStore
    from rescue.instance import AlreadyRunning, InstanceLock

    settings = get_settings()
    if settings.storage.endpoint:
        yield ObjectStore.from_settings(settings.storage, settings.storage.endpoint)
        return
    lock = InstanceLock(settings.data_dir)
    running = lock.running()
    if running is not None and not restoring and running.get("s3"):
        yield ObjectStore.from_settings(settings.storage, str(running["s3"]))
        return
    try:
        lock.acquire(api="(backup/restore in progress)")
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from exc
    s3 = EmbeddedS3(
        data_dir=settings.data_dir / "s3",
        access_key=settings.storage.access_key,
        secret_key=settings.storage.secret_key,
        s3_port=free_port(),
    )
    try:
        s3.start()
        yield ObjectStore.from_settings(settings.storage, s3.endpoint)
    finally:
        s3.stop()
        lock.release()


@main.command("backup")
@click.argument("folder", type=click.Path(path_type=Path))
def backup_command(folder: Path) -> None:
    """Back up the embedded database and every photo and document to FOLDER (new or
    empty), consistently, also while `rescue serve` runs. PostgreSQL/MinIO: see
    README "Backup and restore"."""
    from rescue.backup import BackupError, backup

    with _object_store(restoring=False) as store:
        try:
            report = backup(settings=get_settings(), store=store, folder=folder)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"backed up the database and {report.objects} object(s) ({report.bytes} bytes) "
        f"to {report.folder}; sha256 of every file in {report.folder / 'manifest.json'}"
    )
    if report.missing:
        click.echo(
            f"warning: {len(report.missing)} object(s) named by the database were already "
            "deleted (retention) and are listed under 'missing'",
            err=True,
        )


@main.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore_command(folder: Path) -> None:
    """Restore backup FOLDER into DATA_DIR (which must have no database yet), after
    checking every file's sha256; each object is read back and checked."""
    from rescue.backup import BackupError, read_manifest, restore

    try:
        total = len(read_manifest(folder)["objects"])
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    with _object_store(restoring=True) as store:
        try:
            with click.progressbar(length=total, label="objects", file=sys.stderr) as bar:
                count = restore(
                    settings=get_settings(),
                    store=store,
                    folder=folder,
                    progress=lambda n: bar.update(n - bar.pos),
                )
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    _migrate()
    click.echo(
        f"restored the database and {count} object(s) into {get_settings().data_dir}, "
        "every sha256 checked; start it with `rescue serve`"
    )


@main.command()
def doctor() -> None:
    """Check every setting and backing service; print what is wrong and how to fix it."""
    from rescue.doctor import diagnose

    findings = diagnose()
    for f in findings:
        click.echo(f"{'ok     ' if f.ok else 'PROBLEM'} {f.what}: {f.detail}")
        if not f.ok and f.fix:
            click.echo(f"        fix: {f.fix}")
    if not all(f.ok for f in findings):
        raise SystemExit(1)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--only-set", default=None, help="use only the rows of labels.csv with this set")
@click.option("--source", default=None, help="where the photos come from (kept with the bands)")
@click.option("--dry-run", is_flag=True, help="print the report; store nothing")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write the calibration to this JSON file",
)
def calibrate(
    folder: Path, only_set: str | None, source: str | None, dry_run: bool, json_path: Path | None
) -> None:
    """Calibrate the face model on labelled photos of people like your own.

    FOLDER holds labels.csv (columns path, identity[, set, faces]; the layout of
    ../shared/faces/labels.csv) and the photos, gathered with consent. Every pair
    of photos gives a same-person or a different-person distance; from them come
    the confidence bands (strong / possible / weak at each gallery size) and the
    loose bound the matcher then uses for this model, a report of the false-match
    and miss rates they imply, and a rescore of every face candidate.
    """
    from rescue.matching.calibration import (
        calibrate as measure,
    )
    from rescue.matching.calibration import (
        encode_folder,
        pair_distances,
        save_calibration,
    )
    from rescue.matching.embedding import MODEL_NAME
    from rescue.matching.ledger import rescore_all

    settings = get_settings()
    try:
        faces = encode_folder(
            folder,
            detect_max_side=settings.matching.detect_max_side,
            upsample=settings.matching.detect_upsample,
            max_pixels=settings.upload.max_pixels,
            only_set=only_set,
        )
        genuine, impostor = pair_distances(faces.vectors, faces.identities)
        result = measure(
            genuine=genuine,
            impostor=impostor,
            model=MODEL_NAME,
            source=source
            or f"{folder.name}: {len(faces.paths)} photos of {len(set(faces.identities))} people",
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.report())
    if faces.without_face:
        click.echo(f"no face found in {len(faces.without_face)} photo(s): left out")
    if json_path is not None:
        import json

        json_path.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    if dry_run:
        return

    async def store() -> tuple[int, int]:
        return await save_calibration(result), await rescore_all()

    row_id, rescored = asyncio.run(store())
    click.echo(f"stored as calibration {row_id} for {MODEL_NAME}; {rescored} candidate(s) rescored")


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", required=True, type=click.Choice([k.value for k in ListKind]))
@click.option(
    "--name", "list_name", required=True, help="the list's name, e.g. 2026年11月公安失踪人员"
)
@click.option("--station", required=True, help="station responsible for warnings on notices")
@click.option("--dry-run", is_flag=True, help="only check the file; create nothing")
@click.option(
    "--photos",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="a ZIP of the photos the 照片 column names",
)
def import_list(
    path: str, kind: str, list_name: str, station: str, dry_run: bool, photos: str | None
) -> None:
    """Import an external list here: the dry run's findings, then the run with a
    progress bar (rows, rate, time left) on stderr; the summary on stdout.

    Exit status 1 when the file cannot be read (the reason on stderr).
    """
    import contextlib

    from rescue.errors import DomainError
    from rescue.imports.services import create_run, execute_run
    from rescue.runtime import get_store

    settings = get_settings()
    store = get_store()

    # The files are read as streams (the dry run does not hold them whole).
    stack = contextlib.ExitStack()
    data = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the stack
    zipped = stack.enter_context(open(photos, "rb")) if photos else None  # noqa: SIM115

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
                max_bytes=settings.upload.import_max_bytes,
                photos=zipped,
            )
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
        finally:
            stack.close()
        click.echo(
            f"run {checked.id}: {checked.total_rows} row(s), {checked.valid_rows} valid, "
            f"{checked.error_rows} with problems ({checked.encoding or checked.file_format})"
        )
        for e in checked.errors[:20]:
            click.echo(f"  row {e.row} {e.column}: {e.reason}", err=True)
        if dry_run:
            return
        done = await _run_with_bar(
            checked.id, checked.total_rows, "comparing", execute_run, store, eta=True
        )
        click.echo(
            f"run {done.id} {done.status.value}: {done.rows_done} row(s), "
            f"{done.warnings_raised} warning(s) raised"
        )

    asyncio.run(run())


@main.command("backlog")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--photos", type=click.Path(exists=True, dir_okay=False), help="ZIP of the photos named"
)
@click.option("--user", "username", required=True, help="the staff member entering the history")
@click.option("--dry-run", is_flag=True, help="only check the file; create nothing")
def backlog(path: str, photos: str | None, username: str, dry_run: bool) -> None:
    """Load a station's backlog of long-term residents (在站人员历史补录; template:
    docs/workflow.md "Backlog") as USER (station staff or admin; their station):
    the dry run's findings, then the run with a progress bar on stderr.

    Exit status 1 when the file cannot be read or the user may not (reason on stderr).
    """
    from pathlib import Path

    from rescue.backlog.services import create_run, execute_run
    from rescue.errors import DomainError
    from rescue.runtime import get_store
    from rescue.users.services import Principal
    from rescue.users.tables import Role, User

    data = Path(path).read_bytes()
    archive = Path(photos).read_bytes() if photos else None
    store = get_store()

    async def run() -> None:
        row = await User.select().where(User.username == username).first()
        if row is None or row["role"] not in (Role.station_staff.value, Role.admin.value):
            raise click.ClickException(f"no station staff or admin user {username!r}")
        by = Principal(
            user_id=row["id"], username=username, role=Role(row["role"]), station=row["station"]
        )
        try:
            checked = await create_run(
                filename=os.path.basename(path),
                data=data,
                photos=archive,
                station=row["station"],
                by=by,
                store=store,
            )
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc
        click.echo(
            f"run {checked.id}: {checked.total_rows} row(s), {checked.valid_rows} valid, "
            f"{checked.error_rows} with problems; would create {checked.would_create}"
        )
        for e in checked.errors[:50]:
            click.echo(f"  row {e.row} {e.column}: {e.reason}", err=True)
        if dry_run:
            return
        done = await _run_with_bar(checked.id, checked.total_rows, "loading", execute_run, store)
        click.echo(
            f"run {done.id} {done.status.value}: {done.rows_done} row(s), "
            f"{done.error_rows} left out"
        )

    asyncio.run(run())


async def _run_with_bar(  # type: ignore[no-untyped-def]
    run_id: int, total: int, label: str, execute, store, *, eta: bool = False
):
    """Mark a checked import run as running and carry it out with ``execute``
    (an ``execute_run(run_id=, store=, on_progress=)``), a progress bar on stderr."""
    from rescue.imports.tables import ImportRun

    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_eta=eta, show_pos=True
    ) as bar:
        seen = 0

        def progress(done: int, _total: int) -> None:
            nonlocal seen
            bar.update(done - seen)
            seen = done

        await ImportRun.update({ImportRun.status: "running", ImportRun.started_at: _now()}).where(
            ImportRun.id == run_id
        )
        return await execute(run_id=run_id, store=store, on_progress=progress)


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


@main.group("calendar")
def calendar_group() -> None:
    """The working-day calendar (State Council holiday schedules)."""


@calendar_group.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def calendar_load(path: str) -> None:
    """Load a year's official schedule from a JSON file::

        {"year": 2027, "source": "国务院办公厅关于2027年部分节假日安排的通知",
         "holidays": ["2027-01-01", ...], "workdays": ["2027-02-07", ...]}

    It replaces a loaded schedule of that year; deadlines use it at once.
    """
    import json
    from pathlib import Path

    import msgspec

    from rescue.alerts.calendar import load_schedule
    from rescue.alerts.schemas import HolidayScheduleIn
    from rescue.errors import InvalidInput

    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("year"), int):
        raise click.ClickException('the file must be a JSON object with an integer "year"')
    year = raw.pop("year")
    try:
        data = msgspec.convert(raw, HolidayScheduleIn)
        out = asyncio.run(load_schedule(year=year, data=data, by_user_id=None))
    except (msgspec.ValidationError, InvalidInput) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"loaded {out.year}: {len(out.holidays)} holidays, {len(out.workdays)} make-up working days"
    )


@calendar_group.command("list")
def calendar_list() -> None:
    """Print each year the calendar knows and its source."""
    from rescue.alerts.calendar import calendar_years

    for y in asyncio.run(calendar_years()):
        mark = " (estimated: weekends only)" if y.estimated else ""
        click.echo(f"{y.year} {y.source}{mark} {y.notice}".rstrip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
