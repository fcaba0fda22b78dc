"""Response bodies for deadlines and alerts."""

from __future__ import annotations

from datetime import datetime

import msgspec

from rescue.alerts.rules import AlertKind


class AlertOut(msgspec.Struct):
    """One due or overdue item of a case.

    ``due_at`` is the deadline (ISO 8601, China time); ``overdue`` is true from
    that moment until the satisfying record exists. ``subject_id`` names the
    record the item is about (the DNA request for ``dna_result``).
    """

    kind: AlertKind
    case_id: int
    case_reference: str
    station: str
    due_at: datetime
    overdue: bool
    period: str
    counts_from: str
    satisfied_by: str
    source: str
    subject_id: int | None = None
