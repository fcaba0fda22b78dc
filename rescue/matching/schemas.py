"""Response bodies for match candidates."""

from __future__ import annotations

from datetime import datetime

import msgspec


class CandidateOut(msgspec.Struct):
    """A (case, notice) pair that may be the same person.

    ``best_distance`` is the smallest Euclidean distance between any face of
    the case's photos and any face of the notice's photos (dlib 128-d
    encodings; 0 = identical, the default threshold is 0.6). The photo ids say
    which two photos gave it, for side-by-side comparison.
    """

    id: int
    case_id: int
    notice_id: int
    status: str
    best_distance: float | None
    threshold: float
    case_photo_id: int | None
    notice_photo_id: int | None
    explanation: str
    created_at: datetime
    updated_at: datetime
