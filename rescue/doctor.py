"""Configuration errors in one line, and ``rescue doctor``.

A malformed setting stops every entry point (API, worker, CLI) with one line on
stderr naming the variable, what was wrong and an example of a good value
(:class:`rescue.settings.SettingsError`), exit status 2, no traceback; secrets
are never repeated (a ``DATABASE_URL``'s password shows as ``***``).

``rescue doctor`` checks every setting and every backing service the current
environment points at, and prints for each problem what is wrong and how to fix
it; exit status 1 when anything is wrong.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

from rescue.settings import Settings, SettingsError, redact_url

__all__ = ["Finding", "diagnose", "exit_with"]

#: Exit status for a configuration error (as for a usage error).
EXIT_CONFIG = 2
#: Exit status when a backing service is unreachable (as `rescue doctor` with a problem).
EXIT_SERVICE = 1
#: The scan kernel's paths as `rescue doctor` names them (rescue.matching.scan.path).
KERNEL_PATH_NAMES = {
    "avxvnni": "AVX-VNNI",
    "avx512vnni": "AVX512-VNNI",
    "avx2": "AVX2",
    "portable": "portable C",
}


def exit_with(exc: SettingsError) -> NoReturn:
    """Print ``exc`` as one line on stderr and exit with status 2."""
    print(f"configuration error: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_CONFIG)


@dataclass(frozen=True)
class Finding:
    """One thing checked: ``ok``, what was found, and how to fix it when not ok."""

    what: str
    ok: bool
    detail: str
    fix: str = ""


def _settings_findings() -> tuple[Settings | None, list[Finding]]:
    """Load the settings; on an error, load each variable's group alone so that
    every malformed variable is reported, not only the first."""
    from rescue.settings import load_settings

    try:
        return load_settings(), [Finding("settings", True, "every variable is well-formed")]
    except SettingsError as first:
        findings = [Finding("settings", False, str(first), "correct the variable as shown")]
    # Report further malformed variables by clearing each bad one in turn.
    saved = dict(os.environ)
    try:
        for _ in range(30):
            bad = str(findings[-1].detail).split(" ", 1)[0]
            if bad not in os.environ:
                break
            del os.environ[bad]
            try:
                load_settings()
                break
            except SettingsError as exc:
                if str(exc) == findings[-1].detail:
                    break
                findings.append(Finding("settings", False, str(exc), "correct the variable"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return None, findings


async def _service_findings(settings: Settings) -> list[Finding]:
    from rescue.health import backlog, check_broker, check_database, check_store

    # Interactive: a slow answer is worth waiting for (a loaded host took > 5 s).
    timeout = max(settings.ops.health_timeout_seconds, 15.0)
    found: list[Finding] = []
    db = await check_database(timeout)
    where = redact_url(settings.database.url)
    found.append(
        Finding(
            "database",
            db.ok,
            f"{where} answered in {db.ms} ms" if db.ok else f"{where}: {db.error}",
            "start PostgreSQL or correct DATABASE_URL (user, password, host, port, database)",
        )
    )
    migrations = await _migrations() if db.ok else None
    if migrations is not None:
        found.append(migrations)
    if migrations is not None and migrations.ok:  # the tables exist
        queue = await backlog()
        found.append(
            Finding(
                "photo backlog",
                queue.pending == 0 or queue.oldest_age_seconds < 600,
                f"{queue.pending} photo(s) pending, oldest {queue.oldest_age_seconds:.0f} s",
                "start the workers (README 'Deployment'); then `rescue photos requeue`",
            )
        )
    elif migrations is not None:
        found.append(Finding("photo backlog", True, "not checked before `rescue migrate`"))
    if settings.storage.endpoint:
        store = await check_store(settings, timeout)
        found.append(
            Finding(
                "object store",
                store.ok,
                f"{settings.storage.endpoint} bucket {settings.storage.bucket!r} "
                + ("reachable" if store.ok else f"unusable: {store.error}"),
                "start MinIO, or correct S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_SECURE",
            )
        )
    else:
        found.append(
            Finding(
                "object store",
                True,
                "S3_ENDPOINT unset: `rescue serve` starts the embedded S3 server "
                f"on {settings.storage.embedded_host}:{settings.storage.embedded_port}",
            )
        )
    if settings.redis_url:
        broker = await check_broker(settings, timeout)
        found.append(
            Finding(
                "broker",
                broker.ok,
                redact_url(settings.redis_url)
                + (" answered" if broker.ok else f": {broker.error}"),
                "start Redis or correct REDIS_URL (redis://host:6379/0)",
            )
        )
    else:
        found.append(Finding("broker", True, "REDIS_URL unset: jobs run inside `rescue serve`"))
    return found


async def _migrations() -> Finding:
    from piccolo.apps.migrations.commands.check import CheckMigrationManager

    try:
        rows = await CheckMigrationManager(app_name="all").get_migration_statuses()
    except Exception as exc:  # noqa: BLE001 - reported as a finding
        return Finding("migrations", False, f"{type(exc).__name__}", "run `rescue migrate`")
    missing = [r.migration_id for r in rows if not r.has_ran]
    return Finding(
        "migrations",
        not missing,
        "all applied" if not missing else f"{len(missing)} not applied",
        "run `rescue migrate`",
    )


def _static_findings(settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    storage = settings.storage
    if storage.endpoint and storage.secret_key == "rescue-dev-secret-change-me":  # noqa: S105 - the dev default
        found.append(
            Finding(
                "S3_SECRET_KEY",
                False,
                "the development secret is used with a real object store",
                "set S3_ACCESS_KEY and S3_SECRET_KEY to the MinIO credentials",
            )
        )
    if storage.public_url is None and storage.embedded_host not in ("127.0.0.1", "localhost"):
        found.append(
            Finding(
                "S3_PUBLIC_URL",
                False,
                "the embedded S3 server listens beyond loopback but photo links name 127.0.0.1",
                "set S3_PUBLIC_URL=http://<this PC's address>:<S3_EMBEDDED_PORT>",
            )
        )
    if settings.database.is_sqlite and settings.redis_url:
        found.append(
            Finding(
                "DATABASE_URL",
                False,
                "SQLite with separate workers (REDIS_URL): they cannot share the file safely",
                "use PostgreSQL with REDIS_URL, or unset REDIS_URL for the embedded set-up",
            )
        )
    from rescue.matching import scan

    found.append(
        Finding(
            "gallery scan",
            scan.native(),
            f"native kernel ({KERNEL_PATH_NAMES[scan.path() or 'portable']})"
            if scan.native()
            else f"{scan.LIBRARY.name} is missing: numpy (slower)",
            "run make install on a machine with a C compiler (cc)",
        )
    )
    data_dir = settings.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        writable = os.access(data_dir, os.W_OK)
    except OSError:
        writable = False
    found.append(
        Finding(
            "DATA_DIR",
            writable,
            f"{data_dir} " + ("is writable" if writable else "is not writable"),
            "set DATA_DIR to a folder this user may write",
        )
    )
    return found


def diagnose() -> list[Finding]:
    """Every check: settings, then (when they load) the backing services."""
    settings, found = _settings_findings()
    if settings is None:
        return found
    found += _static_findings(settings)
    try:
        found += asyncio.run(_service_findings(settings))
    except Exception as exc:  # noqa: BLE001 - a check broke: report it, never a traceback
        found.append(Finding("services", False, f"{type(exc).__name__}", "see the log"))
    return found
