"""Periodic jobs (APScheduler): they only *send* Dramatiq messages; workers do the work.

``rescue retention schedule`` runs the blocking scheduler (one per deployment,
e.g. a systemd unit); in embedded mode ``rescue serve`` runs a background one.
Alternatively, ops can call ``rescue retention run`` from cron.
"""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

__all__ = ["RETENTION_CRON", "build_scheduler"]

#: Daily at 03:15 (station local time of the host): a quiet hour.
RETENTION_CRON = {"hour": 3, "minute": 15}


def _send_retention() -> None:
    from workers.actors import apply_retention

    apply_retention.send()


def build_scheduler(*, blocking: bool) -> Any:
    """A scheduler with the daily retention job (not started)."""
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    scheduler.add_job(
        _send_retention,
        CronTrigger(**RETENTION_CRON),
        id="retention",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    return scheduler
