"""Metrics in Prometheus format (prometheus_client, through Litestar's integration).

``GET /metrics`` on every API process serves:

- ``rescue_http_requests_total``, ``rescue_http_request_duration_seconds``
  (histogram), ``rescue_http_requests_error_total``,
  ``rescue_http_requests_in_progress``: Litestar's ``PrometheusMiddleware``,
  labelled by method, route *template* (``path``, e.g. ``/api/cases/{case_id:int}``,
  so case ids make no new series) and ``status_code``;
- ``rescue_login_failures_total{reason}``: refused logins (``bad_credentials``,
  ``throttled``);
- read from the database at each scrape, the same from any API process:
  ``rescue_photos_pending``, ``rescue_photos_pending_oldest_age_seconds``,
  ``rescue_candidates_proposed``, ``rescue_alerts_overdue``.

Jobs (``dramatiq_messages_total``, ``dramatiq_message_errors_total``,
``dramatiq_message_retries_total``, ``dramatiq_message_rejects_total``,
``dramatiq_message_duration_milliseconds`` by queue and actor) come from
Dramatiq's Prometheus middleware, served by each ``dramatiq`` command at
``WORKER_METRICS_HOST:WORKER_METRICS_PORT`` (workers.broker).

Several API processes (``uvicorn --workers N``): set ``PROMETHEUS_MULTIPROC_DIR``
to an empty folder of their own (prometheus_client's multiprocess mode), so
any process answers with the sum of all.

Access: with ``METRICS_TOKEN`` set, a scrape must send
``Authorization: Bearer <METRICS_TOKEN>``; without it only clients on this
machine (loopback) are answered. Metrics hold counts and timings only, never
personal data.
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from litestar import Request, Response, get
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest, multiprocess
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily

from rescue.errors import NotAuthenticated, PermissionDenied
from rescue.i18n import _
from rescue.settings import get_settings

__all__ = ["LOGIN_FAILURES", "login_failed", "metrics", "prometheus_config"]

log = logging.getLogger(__name__)

LOGIN_FAILURES = Counter(
    "rescue_login_failures_total",
    "Refused logins (POST /auth/login) by reason.",
    ["reason"],
)


def login_failed(reason: str) -> None:
    """Count a refused login: ``bad_credentials`` or ``throttled``."""
    LOGIN_FAILURES.labels(reason=reason).inc()


def prometheus_config() -> PrometheusConfig:
    """Request metrics by route template and status (health and metrics excluded).

    With ``PROMETHEUS_MULTIPROC_DIR`` set, the folder is created when missing
    (``/run`` is emptied at boot; without it ``/metrics`` could not answer)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
    return PrometheusConfig(
        app_name="rescue",
        prefix="rescue_http",
        group_path=True,
        exclude=["^/metrics", "^/health"],
        # Seconds: a read is ~5-50 ms, an upload 0.1-2 s (docs/performance.md).
        buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    )


async def _state_metrics() -> list[GaugeMetricFamily]:
    """Gauges of the deployment's state, read from the database."""
    from rescue.alerts.services import list_alerts
    from rescue.health import backlog
    from rescue.matching.tables import Candidate, CandidateStatus

    queue = await backlog()
    proposed = await Candidate.count().where(Candidate.status == CandidateStatus.proposed.value)
    overdue = (await list_alerts(overdue_only=True, limit=0)).total
    return [
        GaugeMetricFamily(
            "rescue_photos_pending", "Photos waiting for face processing.", value=queue.pending
        ),
        GaugeMetricFamily(
            "rescue_photos_pending_oldest_age_seconds",
            "Seconds the oldest pending photo has waited (0: none pending).",
            value=queue.oldest_age_seconds,
        ),
        GaugeMetricFamily(
            "rescue_candidates_proposed", "Match candidates awaiting review.", value=proposed
        ),
        GaugeMetricFamily(
            "rescue_alerts_overdue", "Deadline items past due (docs/workflow.md).", value=overdue
        ),
    ]


class _Families:
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


def _allowed(request: Request[Any, Any, Any]) -> None:
    token = get_settings().ops.metrics_token
    if token:
        scheme, _sep, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip(), token):
            raise NotAuthenticated(
                _("metrics need the METRICS_TOKEN"),
                accepted=_("header 'Authorization: Bearer <token>'"),
            )
        return
    client = request.client.host if request.client else ""
    if client not in {"127.0.0.1", "::1"}:
        raise PermissionDenied(
            _("metrics are served to this machine only; set METRICS_TOKEN to scrape from elsewhere")
        )


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format (see the module docstring). 401 without the
    ``METRICS_TOKEN`` when one is set; 403 from another machine when none is."""
    _allowed(request)
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        families = await _state_metrics()
        up = 1.0
    except Exception:  # the database is down: still serve the request metrics
        log.exception("state metrics could not be read")
        families, up = [], 0.0
    families.append(
        GaugeMetricFamily(
            "rescue_state_metrics_up",
            "1 when the gauges read from the database are present in this scrape.",
            value=up,
        )
    )
    state = CollectorRegistry(auto_describe=False)
    state.register(_Families(families))  # type: ignore[arg-type]
    body = generate_latest(registry) + generate_latest(state)
    return Response(body, status_code=200, media_type=CONTENT_TYPE_LATEST)
