"""Database engine construction and lifecycle (PostgreSQL or embedded SQLite).

Concurrent writers on the embedded SQLite default (issue 11 item 8): SQLite
allows one writer at a time, and by default a second writer fails at once with
"database is locked". :class:`StationSQLiteEngine` makes writers wait instead:

- WAL journal (readers never block the writer nor the writer the readers);
- every connection waits up to ``SQLITE_BUSY_TIMEOUT_SECONDS`` for the lock
  (SQLite's busy handler);
- transactions start ``BEGIN IMMEDIATE``: the write lock is taken at the start,
  where the busy handler applies, instead of upgrading a read lock half-way
  (an upgrade that loses to another writer fails at once, whatever the timeout,
  https://sqlite.org/lang_transaction.html);
- a statement or transaction start that still finds the database locked (WAL
  snapshot conflicts are not covered by the busy handler) is retried until
  the same bound; after it, :class:`~rescue.errors.ServiceUnavailable` (503 with
  ``Retry-After``), never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType

from rescue.settings import DatabaseSettings, get_settings

log = logging.getLogger("rescue.db")

__all__ = [
    "StationPostgresEngine",
    "StationSQLiteEngine",
    "concurrently",
    "lock_rows",
    "make_engine",
    "postgres_config",
]


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def _busy(timeout: float) -> Exception:
    from rescue.errors import ServiceUnavailable
    from rescue.i18n import _

    return ServiceUnavailable(
        _(
            "the database stayed busy with other writes for {seconds} s; nothing was "
            "changed; try again",
            seconds=round(timeout),
        ),
        retry_after=max(1, round(timeout / 10)),
    )


class _Nested:
    """A transaction opened inside another one: a savepoint of the outer one.

    Piccolo makes a nested ``transaction()`` a no-op that never rolls back. Here
    every request's audited write runs in one transaction (rescue.audit.unit), so
    a service's own ``async with DB.transaction():`` is nested in it, and a
    service that raises inside its block must still leave nothing of the block
    behind: the block is a savepoint, rolled back on an exception and released
    otherwise. A failed statement on PostgreSQL aborts the whole transaction;
    rolling back to the savepoint makes it usable again (the 409 is then
    recorded with the request, not lost with it).
    """

    def __init__(self, parent: Any) -> None:
        self.parent = parent
        self.savepoint: Any = None

    async def __aenter__(self) -> Any:
        self.savepoint = await self.parent.savepoint()
        return self.parent

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            await self.savepoint.release()
            return False
        try:
            await self.savepoint.rollback_to()
        except Exception as undo:  # noqa: BLE001 - the original error is the one to raise
            log.warning("could not roll back to a savepoint after %r: %r", exc, undo)
        return False


class StationPostgresEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine whose nested transactions are savepoints."""

    def transaction(self, allow_nested: bool = True) -> Any:  # type: ignore[override]
        parent = self.current_transaction.get()
        if parent is not None and allow_nested:
            return _Nested(parent)
        return super().transaction(allow_nested=allow_nested)


class _ImmediateTransaction(SQLiteTransaction):
    """``BEGIN IMMEDIATE``, retried while the database is locked, up to the bound."""

    async def begin(self) -> None:
        engine = self.engine
        assert isinstance(engine, StationSQLiteEngine)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + engine.busy_timeout
        while True:
            try:
                await self.connection.execute(f"BEGIN {self.transaction_type.value}")
                return
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or loop.time() >= deadline:
                    await self.connection.close()
                    raise _busy(engine.busy_timeout) from exc
                await asyncio.sleep(0.05)


class StationSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine with WAL, a busy timeout, immediate transactions
    and bounded retries (see the module docstring)."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        super().__init__(path=path, timeout=busy_timeout)
        self.busy_timeout = busy_timeout
        with sqlite3.connect(path, timeout=busy_timeout) as connection:
            # Persistent in the file: every later connection uses the WAL.
            connection.execute("PRAGMA journal_mode=WAL")

    def transaction(  # type: ignore[override]
        self,
        transaction_type: TransactionType = TransactionType.immediate,
        allow_nested: bool = True,
    ) -> Any:
        parent = self.current_transaction.get()
        if parent is not None and allow_nested:
            return _Nested(parent)
        return _ImmediateTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )

    async def _run_in_new_connection(self, *args: Any, **kwargs: Any) -> Any:
        """One statement in its own (autocommit) transaction: on a lock still held
        after the busy timeout, or a WAL snapshot conflict, nothing was applied, so
        the statement is run again until the bound."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_timeout
        while True:
            try:
                return await super()._run_in_new_connection(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _locked(exc):
                    raise
                if loop.time() >= deadline:
                    raise _busy(self.busy_timeout) from exc
                await asyncio.sleep(0.05)


async def lock_rows(table: Any, ids: Any, *, strength: str = "NO KEY UPDATE") -> None:
    """Inside a transaction: lock ``table``'s rows with these ids, in id order.

    Writers that touch several rows (a case, its notice, its candidates) take
    their locks through this, parents first and each table's rows in id order,
    so two of them never wait on each other in a circle: the second waits, then
    finds the state changed and answers 409, instead of a PostgreSQL deadlock
    (issue 11 item 9). ``NO KEY UPDATE`` (what an UPDATE of non-key columns
    takes) still lets other transactions insert rows that refer to these.
    On SQLite a write transaction already holds the whole database
    (``BEGIN IMMEDIATE``): nothing to do.
    """
    wanted = sorted({int(i) for i in ids if i is not None})
    if not wanted or not isinstance(table._meta.db, PostgresEngine):
        return
    await (
        table.select(table.id).where(table.id.is_in(wanted)).order_by(table.id).lock_rows(strength)  # type: ignore[arg-type]
    )


async def concurrently(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Await ``calls`` at once where the database allows it, else one after the other.

    At once on PostgreSQL outside a transaction, each call's queries on their own
    pooled connections (a photo job's duplicate-intake check while the photo is
    matched: its queries wait on the database while the gallery scan keeps the
    CPUs busy, issue 16). One after the other, in order, on SQLite (one writer at
    a time) and inside a transaction (its one connection runs one statement at a
    time).

    Measured and not taken: a photo job's independent reads before and after its
    search run at once saved 1 ms of the ~58 ms a job spends beyond detection
    (bench.worker_step with BENCH_AB, 1 M faces, 41 alternating rounds).

    Returns:
        The calls' results, in the order of ``calls``.

    Raises:
        The first failure (in the order of ``calls``) as itself, never wrapped in
        an ``ExceptionGroup``, so that callers still recognise a database that
        went away (rescue.errors.is_unavailable: a worker then retries without
        counting the attempt). Run at once, the other calls run to their end
        first (one cancelled while it opened a connection would leave the
        connection unclosed: asyncpg warns when it is collected); one after the
        other, the later calls are not started.
    """
    from rescue.cases.tables import Case

    engine = Case._meta.db
    if (
        len(calls) < 2
        or not isinstance(engine, PostgresEngine)
        or engine.current_transaction.get() is not None
    ):
        return [await call() for call in calls]
    import anyio

    results: list[Any] = [None] * len(calls)
    failures: list[Exception | None] = [None] * len(calls)

    async def run(index: int, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[index] = await call()
        except Exception as exc:  # noqa: BLE001 - raised below, once all have ended
            failures[index] = exc

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(run, index, call)
    for failure in failures:
        if failure is not None:
            raise failure
    return results


def postgres_config(url: str) -> dict[str, object]:
    """asyncpg connection kwargs from a ``postgresql://user:pass@host:port/db`` URL."""
    parsed = urlparse(url)
    config: dict[str, object] = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "database": (parsed.path or "/").lstrip("/") or "postgres",
        "user": unquote(parsed.username) if parsed.username else "postgres",
    }
    if parsed.password:
        config["password"] = unquote(parsed.password)
    return config


def make_engine(database: DatabaseSettings | None = None) -> Engine:
    """Engine for ``DATABASE_URL``; the SQLite file's folder is created if needed."""
    database = database or get_settings().database
    if database.is_sqlite:
        from pathlib import Path

        path = Path(database.sqlite_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return StationSQLiteEngine(path=str(path), busy_timeout=database.sqlite_busy_timeout)
    return StationPostgresEngine(config=postgres_config(database.url))


async def start_pool(size: int, *, min_size: int = 10) -> bool:
    """Open the PostgreSQL connection pool of this process's engine, on the running
    event loop (asyncpg pools belong to one loop), with at most ``size``
    connections (``min(size, min_size)`` opened at once). Returns False, doing
    nothing, on SQLite or when ``size`` is 0 (every query then opens its own
    connection, a few milliseconds each).
    """
    from rescue.cases.tables import Case

    engine = Case._meta.db
    if not isinstance(engine, PostgresEngine) or size <= 0:
        return False
    # asyncpg opens min_size at once and refuses min > max.
    await engine.start_connection_pool(  # type: ignore[call-arg]
        min_size=min(size, min_size), max_size=size, reset=_keep_session
    )
    return True


async def _keep_session(connection: Any) -> None:
    """The pool's reset on release: nothing beyond asyncpg's own (it still rolls
    back a transaction left open). Piccolo takes a connection from the pool for
    each query, and asyncpg's default reset (``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL``) was one more round trip per query: 92 of a photo
    job's 193 statements, ~25 % of its database time (bench.worker_step). The
    service never changes session state on pooled connections (no advisory
    locks, LISTEN, session SET or cursors outside a transaction; the change
    feed LISTENs on a connection of its own, rescue.changes)."""


async def close_pool() -> None:
    """Close the pool opened by :func:`start_pool` (waits for connections in use)."""
    from rescue.cases.tables import Case

    engine = Case._meta.db
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()
