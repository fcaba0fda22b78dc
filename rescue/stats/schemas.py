"""Response body of the statistics."""

from __future__ import annotations

from datetime import date

import msgspec


class Statistics(msgspec.Struct):
    """Figures for one period (station dates, both ends included) and stations.

    ``time_to_identification_days``: median and the count per bucket of days
    from admission to the confirmed identification."""

    date_from: date
    date_to: date
    stations: list[str] | None
    admitted: int
    identified: int
    identified_by_channel: dict[str, int]
    median_days_to_identification: float | None
    days_to_identification: dict[str, int]
    became_stranded: int
    settled: int
    #: Cases that left in the period, by official 离站方式 category (every
    #: ``LeavingCategory`` code, zero included), from the workflow's table
    #: rescue.cases.flows.LEAVING_CATEGORY.
    left_by_outcome: dict[str, int]
    candidates_proposed: int
    candidates_confirmed: int
    candidates_rejected: int
    #: confirmed / (confirmed + rejected) among candidates decided in the period.
    review_precision: float | None
    warnings_raised: int
    warnings_verified: int
    warnings_helped: int
