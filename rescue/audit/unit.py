"""One transaction per audited write: the write and its audit record commit
together or not at all (issue 11 item 11; PIPL art. 51: a record of who
processed personal information, which must not miss an applied change).

:func:`open_unit` starts the request's transaction before the handler runs.
Every query of the handler joins it (Piccolo binds the open transaction to the
request's context); a service's own ``async with DB.transaction():`` becomes a
savepoint of it (rescue.db). Then :class:`Unit` commits or rolls back, once,
the handler's changes with the audit record (rescue.audit.middleware).

What must not happen before the commit is registered on the unit:

- :func:`after_commit`: work handed to others that would see the changes
  (Dramatiq messages: workers.broker defers every enqueue of a request here,
  so a worker never looks for a row not yet committed);
- :func:`after_rollback`: undoing what the database cannot undo (an object
  stored in the object store for a row that was rolled back).

Outside a request (CLI, workers, scheduler) no unit is open: ``after_commit``
runs its work at once and ``after_rollback`` does nothing. One exception: a
backlog run loads each row in a unit of its own (rescue.backlog.services), so
that the row's photos are queued after it commits and removed if it rolls back.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

__all__ = ["Unit", "active", "after_commit", "after_rollback", "open_unit"]

log = logging.getLogger("rescue.audit")

_current: contextvars.ContextVar[Unit | None] = contextvars.ContextVar("rescue_unit", default=None)


class Unit:
    """The open transaction of one audited write and what waits on its outcome."""

    def __init__(self, engine: Engine, transaction: Any) -> None:
        self.engine = engine
        self.transaction = transaction
        self.on_commit: list[Callable[[], Any]] = []
        self.on_rollback: list[Callable[[], Awaitable[None]]] = []
        self._token: contextvars.Token[Unit | None] | None = None
        self._closed = False

    async def commit(self) -> None:
        """Commit. Raises what the database raised: then the outcome may be
        unknown (the connection failed during COMMIT); see the middleware."""
        await self.transaction.commit()

    async def rollback(self) -> None:
        """Roll back (never raises: a dead connection has rolled back already) and
        run the :func:`after_rollback` work."""
        try:
            await self.transaction.rollback()
        except Exception as exc:  # noqa: BLE001 - a lost connection rolls back on its own
            log.warning("rollback of a request's transaction failed: %r", exc)
        await self.undo()

    async def undo(self) -> None:
        """Run the :func:`after_rollback` work (each failure logged, none raised)."""
        for work in self.on_rollback:
            try:
                await work()
            except Exception:
                log.exception("undoing a rolled-back request's side effect failed")
        self.on_rollback.clear()
        self.on_commit.clear()

    async def close(self) -> None:
        """Give the connection back and leave the request's context (once)."""
        if self._closed:
            return
        self._closed = True
        connection = self.transaction.connection
        try:
            if isinstance(self.engine, PostgresEngine) and self.engine.pool is not None:
                await self.engine.pool.release(connection)
            else:
                await connection.close()
        except Exception as exc:  # noqa: BLE001 - a broken connection is dropped anyway
            log.warning("could not release a request's connection: %r", exc)
        self.engine.current_transaction.reset(self.transaction.context)
        if self._token is not None:
            _current.reset(self._token)

    def run_committed(self) -> None:
        """Run the :func:`after_commit` work (each failure logged, none raised:
        the recovery sweep queues photos whose message was not sent)."""
        for work in self.on_commit:
            try:
                work()
            except Exception:
                log.exception("work after a request's commit failed")
        self.on_commit.clear()
        self.on_rollback.clear()


async def open_unit(engine: Engine) -> Unit:
    """Begin the request's transaction and bind it (and the unit) to the context.

    Raises:
        Exception: the database could not start a transaction (nothing done).
    """
    transaction = engine.transaction()
    opened = await transaction.__aenter__()
    unit = Unit(engine, opened)
    unit._token = _current.set(unit)
    return unit


def active() -> bool:
    """True inside a request's audited write."""
    return _current.get() is not None


def after_commit(work: Callable[[], Any]) -> bool:
    """Run ``work()`` (synchronous) once the request's transaction has committed,
    before its answer is sent. Returns False (and does nothing) outside a unit:
    the caller then does the work itself."""
    unit = _current.get()
    if unit is None:
        return False
    unit.on_commit.append(work)
    return True


def after_rollback(work: Callable[[], Awaitable[None]]) -> None:
    """Run ``await work()`` if the request's transaction is rolled back (nothing
    outside a unit: a statement outside one commits on its own)."""
    unit = _current.get()
    if unit is not None:
        unit.on_rollback.append(work)
