"""Case registration and lookup (plain functions, keyword-only arguments)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from rescue.cases.events import record_event
from rescue.cases.schemas import CaseCreate, CaseOut
from rescue.cases.tables import Case, CaseStatus
from rescue.errors import InvalidInput, NotFound
from rescue.photos.schemas import PhotoSummary
from rescue.photos.services import photo_summaries
from rescue.schemas import Page
from rescue.users.services import Principal

__all__ = ["create_case", "get_case", "list_cases", "require_case"]


def _validate_ages(data: CaseCreate) -> None:
    low, high, est = data.age_low, data.age_high, data.estimated_age
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            f"age_low ({low}) is greater than age_high ({high})",
            accepted="age_low <= estimated_age <= age_high, each 0..120",
        )
    if est is not None and ((low is not None and est < low) or (high is not None and est > high)):
        raise InvalidInput(
            f"estimated_age {est} lies outside age_low..age_high",
            accepted="age_low <= estimated_age <= age_high, each 0..120",
        )


async def create_case(*, data: CaseCreate, by: Principal) -> CaseOut:
    """Register a person taken in (入站登记).

    The case gets a reference ``YYYY-NNNN`` and a placeholder name ``无名氏-NNNN``
    (used whenever no name is reported; see docs/glossary.md).

    Raises:
        InvalidInput: inconsistent ages.
    """
    _validate_ages(data)
    now = datetime.now(UTC)
    async with Case._meta.db.transaction():
        rows = await Case.insert(
            Case(
                reference=f"tmp-{uuid.uuid4().hex}",  # replaced below, same transaction
                placeholder_name="",
                reported_name=(data.reported_name or "").strip() or None,
                sex=data.sex.value,
                estimated_age=data.estimated_age,
                age_low=data.age_low,
                age_high=data.age_high,
                found_at=data.found_at,
                found_place=data.found_place,
                brought_by=data.brought_by,
                description=data.description,
                dialect=data.dialect,
                belongings=data.belongings,
                station=data.station if data.station is not None else by.station,
                created_by=by.user_id,
                admitted_at=now,
                created_at=now,
                updated_at=now,
            )
        ).returning(Case.id)
        case_id = int(rows[0]["id"])
        await Case.update(
            {
                Case.reference: f"{now.year}-{case_id:04d}",
                Case.placeholder_name: f"无名氏-{case_id:04d}",
            }
        ).where(Case.id == case_id)
        await record_event(
            case_id=case_id,
            kind="admitted",
            actor_id=by.user_id,
            actor_role=by.role.value,
            to_status=CaseStatus.admitted.value,
            reason=f"brought by {data.brought_by}" if data.brought_by else "",
        )
    return await get_case(case_id=case_id)


async def require_case(*, case_id: int) -> dict[str, Any]:
    """The case row as a dict. Raises NotFound."""
    row = await Case.select().where(Case.id == case_id).first()
    if row is None:
        raise NotFound(f"case {case_id} does not exist")
    return row


def _case_out(row: dict[str, Any], photos: list[PhotoSummary]) -> CaseOut:
    return CaseOut(
        id=row["id"],
        reference=row["reference"],
        display_name=row["reported_name"] or row["placeholder_name"],
        reported_name=row["reported_name"],
        placeholder_name=row["placeholder_name"],
        sex=row["sex"],
        estimated_age=row["estimated_age"],
        age_low=row["age_low"],
        age_high=row["age_high"],
        found_at=row["found_at"],
        found_place=row["found_place"],
        brought_by=row["brought_by"],
        description=row["description"],
        dialect=row["dialect"],
        belongings=row["belongings"],
        station=row["station"],
        status=row["status"],
        admitted_at=row["admitted_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        photos=photos,
    )


async def get_case(*, case_id: int) -> CaseOut:
    """One case with its photos. Raises NotFound."""
    row = await require_case(case_id=case_id)
    return _case_out(row, await photo_summaries(case_id=case_id))


async def list_cases(
    *, limit: int, offset: int, status: str | None = None, stations: list[str] | None = None
) -> Page[CaseOut]:
    """Cases, newest admission first; only those of ``stations`` (None: all)."""
    query = Case.select().order_by(Case.id, ascending=False).limit(limit).offset(offset)
    count = Case.count()
    if stations is not None:
        query = query.where(Case.station.is_in(stations or [""]))
        count = count.where(Case.station.is_in(stations or [""]))
    if status is not None:
        query = query.where(Case.status == status)
        count = count.where(Case.status == status)
    rows = await query
    return Page(
        items=[_case_out(r, []) for r in rows], total=await count, limit=limit, offset=offset
    )
