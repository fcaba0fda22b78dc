"""Worker-process middleware: a bounded stop, and the job id in every log line.

**Stopping.** systemd (and most service managers) stop a service by sending
SIGTERM to its whole process group: the ``dramatiq`` parent forwards its own
SIGTERM to each worker process, which therefore receives two. Dramatiq's worker
process treats the second as "kill now" and raises ``SystemExit`` in its main
thread, skipping its shutdown hooks; the AsyncIO middleware's event-loop thread
is not a daemon thread, so the process then went on running jobs for minutes
(issue 15). :class:`StopWithin` replaces that handler in each worker process:

- the first SIGTERM (or SIGHUP) stops the worker the way Dramatiq does (no new
  jobs; queued-but-unstarted messages go back to Redis at once);
- later ones are only logged;
- a watchdog gives the running jobs ``WORKER_STOP_SECONDS`` to finish, then
  hands every unfinished one back to its queue (Redis ``requeue`` of this
  worker's unacknowledged messages, so another worker takes it at once instead
  of after the broker's 60 s heartbeat timeout) and ends the process.

Every actor is idempotent (delivery is at least once), so a job handed back
and run again elsewhere does no harm.

**Database pool.** :class:`DatabasePool` opens each worker process's PostgreSQL
connection pool (``WORKER_DB_POOL_MAX``) on the event loop its async jobs run on,
once at boot; without it every query of a job opened its own connection
(bench.worker_step: 2.3x the photo's detection + encoding time per job).

**Temporary copies of import runs.** :class:`TempCopySweep` runs, in each worker
process, the sweep of that process's private copies of import runs' list files
and photos ZIPs (rescue.imports.services.sweep_temp_copies) every
:data:`TEMP_SWEEP_SECONDS`, on the event loop its async jobs run on: copies no
chunk used for ``IMPORT_TEMP_IDLE_SECONDS``, and those of runs done or purged
by the retention run, are removed. Every process holds copies of its own, so
one scheduler's job could not reach them.

**Job context.** :class:`JobContext` binds the message id and actor name to
structlog's context variables for the duration of each job, so every log line
written by the job names it (rescue.logs).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

__all__ = [
    "TEMP_SWEEP_SECONDS",
    "DatabasePool",
    "JobContext",
    "JobMetrics",
    "StopWithin",
    "TempCopySweep",
    "serve_job_metrics",
]

log = logging.getLogger("rescue.worker")


class DatabasePool(Middleware):
    """A PostgreSQL connection pool per worker process, on the AsyncIO middleware's
    event loop (add this middleware after ``AsyncIO``).

    Args:
        size: most connections (``WORKER_DB_POOL_MAX``; 0: none, a connection per query).
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        from rescue.db import start_pool

        loop_thread = get_event_loop_thread()
        if loop_thread is not None and self.size > 0:
            # No connection opened at boot (min_size 0): a worker still starts while
            # PostgreSQL is down, and its jobs fail over as transient errors, as before.
            loop_thread.run_coroutine(start_pool(self.size, min_size=0))

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        import asyncio

        from dramatiq.asyncio import get_event_loop_thread

        from rescue.db import close_pool

        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            return
        try:  # best effort: the process is ending and PostgreSQL notices closed sockets
            loop_thread.run_coroutine(asyncio.wait_for(close_pool(), 5))
        except Exception:  # noqa: BLE001
            log.warning("worker: the database pool did not close in time")


#: How often each worker process sweeps its temporary copies of import runs'
#: files (seconds): a copy outlives its last use by at most
#: ``IMPORT_TEMP_IDLE_SECONDS`` plus this, and a done or purged run's by this.
TEMP_SWEEP_SECONDS = 60.0


class TempCopySweep(Middleware):
    """Each worker process sweeps its temporary copies of import runs' list files
    and photos ZIPs (rescue.imports.services.sweep_temp_copies) every ``every``
    seconds, on the AsyncIO middleware's event loop (the one its import jobs
    run on, whose locks the sweep shares with them; add this middleware after
    ``AsyncIO``). A daemon thread waits between sweeps; it stops with the
    worker. A failing sweep is logged and tried again at the next tick.

    Args:
        every: seconds between sweeps (:data:`TEMP_SWEEP_SECONDS`).
    """

    def __init__(self, every: float = TEMP_SWEEP_SECONDS) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._sweep_every, args=(loop_thread,), name="import-temp-sweep", daemon=True
        )
        self._thread.start()

    def _sweep_every(self, loop_thread: Any) -> None:
        from rescue.imports.services import sweep_temp_copies

        while not self._stop.wait(self.every):
            try:
                loop_thread.run_coroutine(sweep_temp_copies())
            except Exception:  # e.g. the loop stopping: next tick
                log.warning("worker: sweep of import temp copies failed", exc_info=True)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)


class StopWithin(Middleware):
    """Bounded, signal-safe stop of a ``dramatiq`` worker process.

    Args:
        seconds: how long running jobs may go on after SIGTERM.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._running: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._broker: dramatiq.Broker | None = None

    # --- signal handling (worker processes of the dramatiq CLI only) ---------------
    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._broker = broker
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(signum)
            signal.signal(signum, self._handler(previous))

    def _handler(self, previous: Any) -> Any:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self._stopping.is_set():
                log.info("worker already stopping", extra={"signal": signum})
                return
            self._stopping.set()
            log.info(
                "worker stopping",
                extra={
                    "signal": signum,
                    "jobs_running": len(self._running),
                    "within_s": self.seconds,
                },
            )
            threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()
            if callable(previous):
                previous(signum, frame)

        return on_signal

    def _watchdog(self) -> None:
        # Dramatiq's own shutdown normally ends the process first (this thread is a
        # daemon and dies with it); past the bound, whatever still runs or holds the
        # process (a job, a non-daemon thread) is ended here.
        time.sleep(self.seconds)
        with self._lock:
            unfinished = list(self._running.values())
        if unfinished:
            self._hand_back(unfinished)
        log.warning(
            "worker stop bound reached; exiting",
            extra={"handed_back": len(unfinished), "within_s": self.seconds},
        )
        logging.shutdown()
        os._exit(0)

    def _hand_back(self, messages: list[Any]) -> None:
        broker = self._broker
        requeue = getattr(broker, "do_requeue", None)
        if requeue is None:  # the in-process broker: start-up re-queues pending photos
            return
        for message in messages:
            redis_id = message.options.get("redis_message_id")
            if redis_id is None:
                continue
            try:
                requeue(message.queue_name, redis_id)
                log.info(
                    "job handed back to its queue",
                    extra={"job_id": message.message_id, "actor": message.actor_name},
                )
            except Exception:  # Redis gone: its heartbeat timeout re-queues them
                log.exception("could not hand a job back; the broker re-queues it later")

    # --- which jobs are running --------------------------------------------------
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self._running[message.message_id] = message

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._running.pop(message.message_id, None)

    after_skip_message = after_process_message


class JobContext(Middleware):
    """Binds ``job_id`` and ``actor`` to the log context of each job (rescue.logs)."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        import structlog

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(job_id=message.message_id, actor=message.actor_name)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        import structlog

        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


def serve_job_metrics() -> int:
    """Fork function of the ``dramatiq`` command: serve the job metrics of all its
    worker processes at ``WORKER_METRICS_HOST:WORKER_METRICS_PORT`` (Dramatiq's
    exposition server, with the address taken from rescue.settings)."""
    from dramatiq.middleware import prometheus

    from rescue.settings import get_settings

    ops = get_settings().ops
    prometheus.HTTP_HOST = ops.worker_metrics_host
    prometheus.HTTP_PORT = ops.worker_metrics_port
    return int(prometheus._run_exposition_server() or 0)


def _job_metrics_class() -> type[Middleware]:
    from dramatiq.middleware.prometheus import Prometheus

    class _JobMetrics(Prometheus):
        """Dramatiq's Prometheus middleware, silent outside worker processes (the
        API imports this broker to *send* jobs and has no job metrics to keep)."""

        booted = False

        @property
        def forks(self) -> list[Any]:
            return [serve_job_metrics]

        def after_process_boot(self, broker: dramatiq.Broker) -> None:
            super().after_process_boot(broker)
            self.booted = True

        def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
            if self.booted:
                super().after_worker_shutdown(broker, worker)

        def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
            if self.booted:
                super().after_nack(broker, message)

        def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: Any) -> None:
            if self.booted:
                super().after_enqueue(broker, message, delay)

        def before_delay_message(self, broker: dramatiq.Broker, message: Any) -> None:
            if self.booted:
                super().before_delay_message(broker, message)

        def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
            if self.booted:
                super().before_process_message(broker, message)

        def after_process_message(
            self,
            broker: dramatiq.Broker,
            message: Any,
            *,
            result: Any = None,
            exception: BaseException | None = None,
        ) -> None:
            if self.booted:
                super().after_process_message(broker, message, result=result, exception=exception)

        after_skip_message = after_process_message

    return _JobMetrics


def JobMetrics() -> Middleware:
    """Jobs by actor and outcome with durations (Dramatiq's Prometheus middleware:
    ``dramatiq_messages_total``, ``dramatiq_message_errors_total``,
    ``dramatiq_message_retries_total``, ``dramatiq_message_rejects_total``,
    ``dramatiq_message_duration_milliseconds``). Its module is imported here, on
    use, because prometheus_client must see ``PROMETHEUS_MULTIPROC_DIR`` first."""
    return _job_metrics_class()()
