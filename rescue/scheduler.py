"""Periodic jobs (APScheduler): they only *send* Dramatiq messages; workers do the work.

Jobs: retention daily at 03:15 (``apply_retention``), deadlines hourly
(``apply_deadlines``: cases over 10 days unidentified become ``stranded``, per the
2015 民政部·公安部 意见; docs/workflow.md) and the recovery sweep every
``RECOVERY_SWEEP_SECONDS`` (``recover``: pending photos whose job was lost are
queued again, orphan objects removed; rescue.recovery).

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
from apscheduler.triggers.interval import IntervalTrigger

from rescue.settings import get_settings

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


def _send_recovery() -> None:
    import logging

    from workers.actors import recover

    try:
        recover.send()
    except Exception as exc:  # noqa: BLE001 - the broker is down: try at the next tick
        logging.getLogger(__name__).warning("could not send the recovery sweep: %r", exc)


def build_scheduler(*, blocking: bool) -> Any:
    """A scheduler with the daily retention, hourly deadline and recovery-sweep
    jobs (not started)."""
    scheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    scheduler.add_job(
        _send_recovery,
        IntervalTrigger(seconds=get_settings().recovery.sweep_seconds),
        id="recovery",
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
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
