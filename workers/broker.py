"""The Dramatiq broker. Import this before any actor module.

With ``REDIS_URL`` set: a Redis broker (production, tests). Without it: an
in-memory broker whose worker runs inside the API process (embedded mode);
photos left ``pending`` by a restart are re-queued at start-up.

Workers: ``rescue worker`` (or ``dramatiq workers.broker workers.actors``). Each worker process logs
in the service's one format with the job id (rescue.logs), stops within
``WORKER_STOP_SECONDS`` of SIGTERM, handing unfinished jobs back
(workers.lifecycle), sweeps its temporary copies of import runs' files
(``IMPORT_TEMP_IDLE_SECONDS``, workers.lifecycle.TempCopySweep), and counts
jobs for Prometheus (Dramatiq's middleware, served at
``WORKER_METRICS_HOST:WORKER_METRICS_PORT``).

Every Redis call is bounded by ``BROKER_TIMEOUT_SECONDS`` (connect and reply),
so an unreachable broker costs an upload at most that long (it then answers
``queue: "deferred"``). A worker that stops sending heartbeats for
``WORKER_HEARTBEAT_TIMEOUT_SECONDS`` is dead: the next maintenance pass (each
broker command runs one with chance ``BROKER_MAINTENANCE_PER_MILLION`` / 10⁶)
puts its unfinished messages back on their queues (README "What bounds
recovery").

Inside a request's audited write (rescue.audit.unit) a message is not sent at
once but after the request's transaction commits, and not at all if it rolls
back: a worker never looks for a row that is not committed yet.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from rescue.audit.unit import after_commit
from rescue.logs import configure_logging
from rescue.settings import Settings, SettingsError, get_settings
from workers.lifecycle import DatabasePool, JobContext, JobMetrics, StopWithin, TempCopySweep

__all__ = ["LONG_JOB_QUEUES", "broker", "broker_reachable", "redis_broker"]

try:
    _settings = get_settings()
except SettingsError as _exc:
    from rescue.doctor import exit_with

    exit_with(_exc)
configure_logging(_settings.ops)


class _AfterCommit:
    """Broker mix-in: inside a request's transaction, enqueue after its commit."""

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        parent = super()
        if after_commit(lambda: parent.enqueue(message, delay=delay)):  # type: ignore[attr-defined]
            return message
        return parent.enqueue(message, delay=delay)  # type: ignore[attr-defined]


#: Queues of long jobs (an import chunk takes minutes): a worker process takes
#: one message of these at a time (prefetch 1), so the messages of one list are
#: shared by the worker processes. With Dramatiq's default prefetch (2 x
#: threads per process) the first process to poll took every chunk of a list
#: and the others stayed idle (measured: bench/import_photos.py).
LONG_JOB_QUEUES = frozenset({"imports"})


class StationRedisBroker(_AfterCommit, RedisBroker):
    """Dramatiq's Redis broker, enqueueing after the request's commit; a queue of
    :data:`LONG_JOB_QUEUES` is consumed one message at a time per process."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        if queue_name in LONG_JOB_QUEUES:  # not its delay queue ("imports.DQ")
            prefetch = 1
        return super().consume(queue_name, prefetch=prefetch, timeout=timeout)


class StationStubBroker(_AfterCommit, StubBroker):
    """Dramatiq's in-memory broker (embedded mode), enqueueing after the commit."""


def redis_broker(settings: Settings) -> RedisBroker:
    """A Redis broker with the timeouts and dead-worker bound of ``settings``."""
    recovery = settings.recovery
    client = redis.Redis.from_url(
        str(settings.redis_url),
        socket_timeout=recovery.broker_timeout_seconds,
        socket_connect_timeout=recovery.broker_timeout_seconds,
    )
    return StationRedisBroker(
        client=client,
        namespace=settings.broker_namespace,
        heartbeat_timeout=recovery.heartbeat_timeout_seconds * 1000,
        maintenance_chance=recovery.maintenance_per_million,
    )


broker: dramatiq.Broker = redis_broker(_settings) if _settings.redis_url else StationStubBroker()
broker.add_middleware(AsyncIO())
broker.add_middleware(JobContext())
# Every process that runs import jobs (embedded mode's too) sweeps its temp copies.
broker.add_middleware(TempCopySweep())
if _settings.redis_url:
    # Worker processes of their own (embedded mode's worker runs in the API process).
    broker.add_middleware(DatabasePool(_settings.database.worker_pool_max_size))
    broker.add_middleware(StopWithin(_settings.ops.worker_stop_seconds))
    broker.add_middleware(JobMetrics())
dramatiq.set_broker(broker)


def broker_reachable(of: dramatiq.Broker | None = None) -> bool:
    """True if the broker (``of``, default this process's) answers a PING within
    ``BROKER_TIMEOUT_SECONDS``; always true for the in-process broker of embedded
    mode. Blocking: call it in a thread from async code. For the readiness check."""
    target = of or broker
    if not isinstance(target, RedisBroker):
        return True
    try:
        return bool(target.client.ping())
    except redis.RedisError:
        return False
