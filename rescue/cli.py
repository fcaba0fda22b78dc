"""The ``rescue`` command line (click).

rescue serve                      run the API (embedded S3 + in-process worker by default)
rescue migrate                    apply database migrations
rescue users create NAME --role R print a new API token for a new user
rescue photos requeue             re-queue photos left pending
rescue deadlines apply            move cases over 10 days unidentified to stranded
rescue deadlines list [--overdue] print due and overdue deadline items
"""

from __future__ import annotations

import asyncio
import os
import sys

import click

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
    import uvicorn

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
        s3.start()
        os.environ["S3_ENDPOINT"] = s3.endpoint
        get_settings.cache_clear()
    try:
        click.echo(
            f"\n  API:    http://{host}:{port}/api\n"
            f"  Docs:   http://{host}:{port}/schema\n"
            f"  Data:   {settings.data_dir}  (database: {settings.database.url.split('@')[-1]})\n"
            "  Token:  .venv/bin/rescue users create NAME --role station_staff\n"
            "          then send 'Authorization: Bearer <token>'\n"
        )
        uvicorn.run("rescue.app:create_app", factory=True, host=host, port=port, log_level="info")
    finally:
        if s3 is not None:
            s3.stop()


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
@click.option("--station", default="", help="the station the user belongs to")
def create_user(name: str, role: str, station: str) -> None:
    """Create user NAME and print a new API token (shown once)."""
    from rescue.errors import DomainError
    from rescue.users.services import create_user as create
    from rescue.users.services import issue_token

    _migrate()

    async def run() -> str:
        user_id = await create(username=name, role=role, station=station)
        return await issue_token(
            user_id=user_id, ttl_days=get_settings().token_ttl_days, label="cli"
        )

    try:
        token = asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(token)


@main.group()
def photos() -> None:
    """Photo maintenance."""


@photos.command("requeue")
def requeue() -> None:
    """Queue face processing again for every photo still pending."""
    from rescue.photos.services import pending_photo_ids
    from workers.actors import process_photo

    ids = asyncio.run(pending_photo_ids())
    for photo_id in ids:
        process_photo.send(photo_id)
    click.echo(f"queued {len(ids)} pending photo(s)")


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
