"""Periodic jobs (APScheduler): they only *send* Dramatiq messages; workers do the work.

Jobs: retention daily at 03:15 (``apply_retention``) and deadlines hourly
(``apply_deadlines``: cases over 10 days unidentified become ``stranded``, per the
2015 民政部·公安部 意见; docs/workflow.md).

``rescue retention schedule`` runs the blocking scheduler (one per deployment,
e.g. a systemd unit); in embedded mode ``rescue serve`` runs a background one.
Alternatively, ops can call ``rescue retention run`` and ``rescue deadlines apply``
from cron.
"""

from __future__ import annotations

from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

__all__ = ["DEADLINES_CRON", "RETENTION_CRON", "build_scheduler"]

#: Daily at 03:15 (station local time of the host): a quiet hour.
RETENTION_CRON = {"hour": 3, "minute": 15}
#: Hourly, so a case becomes ``stranded`` within an hour of its 10th day.
DEADLINES_CRON = {"minute": 5}


def _send_retention() -> None:
    from workers.actors import apply_retention

    apply_retention.send()


def _send_deadlines() -> None:
    from workers.actors import apply_deadlines

    apply_deadlines.send()


def build_scheduler(*, blocking: bool) -> Any:
    """A scheduler with the daily retention and hourly deadline jobs (not started)."""
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    scheduler.add_job(
        _send_retention,
        CronTrigger(**RETENTION_CRON),
        id="retention",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    scheduler.add_job(
        _send_deadlines,
        CronTrigger(**DEADLINES_CRON),
        id="deadlines",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    return scheduler
