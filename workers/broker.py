"""The Dramatiq broker. Import this before any actor module.

With ``REDIS_URL`` set: a Redis broker (production, tests). Without it: an
in-memory broker whose worker runs inside the API process (embedded mode);
photos left ``pending`` by a restart are re-queued at start-up.

Workers: ``dramatiq workers.broker workers.actors``.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from rescue.settings import get_settings

__all__ = ["broker"]

_settings = get_settings()

broker: dramatiq.Broker
if _settings.redis_url:
    broker = RedisBroker(url=_settings.redis_url, namespace=_settings.broker_namespace)
else:
    broker = StubBroker()
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)
