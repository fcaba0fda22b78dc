"""The Dramatiq broker. Import this before any actor module.

With ``REDIS_URL`` set: a Redis broker (production, tests). Without it: an
in-memory broker whose worker runs inside the API process (embedded mode);
photos left ``pending`` by a restart are re-queued at start-up.

Workers: ``dramatiq workers.broker workers.actors``. Each worker process logs
in the service's one format with the job id (rescue.logs), stops within
``WORKER_STOP_SECONDS`` of SIGTERM, handing unfinished jobs back
(workers.lifecycle), and counts jobs for Prometheus (Dramatiq's middleware,
served at ``WORKER_METRICS_HOST:WORKER_METRICS_PORT``).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from rescue.logs import configure_logging
from rescue.settings import SettingsError, get_settings
from workers.lifecycle import JobContext, JobMetrics, StopWithin

__all__ = ["broker"]

try:
    _settings = get_settings()
except SettingsError as _exc:
    from rescue.doctor import exit_with

    exit_with(_exc)
configure_logging(_settings.ops)

broker: dramatiq.Broker
if _settings.redis_url:
    broker = RedisBroker(url=_settings.redis_url, namespace=_settings.broker_namespace)
else:
    broker = StubBroker()
broker.add_middleware(AsyncIO())
broker.add_middleware(JobContext())
if _settings.redis_url:
    broker.add_middleware(StopWithin(_settings.ops.worker_stop_seconds))
    broker.add_middleware(JobMetrics())
dramatiq.set_broker(broker)
