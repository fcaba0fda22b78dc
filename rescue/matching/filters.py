"""Matching filters the reviewer can see and relax, per case or per notice.

A filter removes a (case, notice) pair before ranking when a recorded difference
is sure (rescue.matching.scoring.excluded_by: only ``sex``, recorded by staff on
both sides). Records are sometimes wrong or unsure (a sex recorded wrongly at
intake, a person whose sex staff could not tell), so a reviewer may relax a
filter for one case or one notice, with a reason:

- the relaxation is a row of ``match_filter_relaxations`` (who, when, why), an
  event on the case timeline (``match_filter_relaxed``) or the notice log, and an
  audit record (the HTTP write, rescue.audit);
- the worker then re-matches that case or notice (``workers.actors.rematch_owner``):
  the removed pairs come back as candidates flagged ``sex_mismatch``, their score
  halved (docs/scoring.md), so they rank below compatible ones;
- restoring it (again with a reason, on the timeline) re-applies the filter and
  re-matches: the pairs count as removed again, but candidates proposed meanwhile
  stay in the ledger with their flag and reviews (the ledger keeps one row per
  pair and never deletes one).

What a filter removes is recorded per pair by every search
(``match_filtered_pairs``, both directions), so a case's page counts the pairs
removed whether they were seen from the case's photos or the notices' photos.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rescue import clock
from rescue.cases.events import record_event
from rescue.cases.tables import Case
from rescue.errors import Conflict, InvalidInput, NotFound
from rescue.i18n import N_, _
from rescue.matching.schemas import FilterChangeIn, FilterRelaxationOut, MatchFilterOut
from rescue.matching.tables import MatchFilteredPair, MatchFilterRelaxation
from rescue.notices.events import record_notice_event
from rescue.notices.tables import Notice
from rescue.settings import Settings
from rescue.users.services import Principal

__all__ = [
    "FILTERS",
    "change_filter",
    "filter_state",
    "mark_rematched",
    "relaxed_filters_of",
]

#: Filters a reviewer can relax, with their label (docs/scoring.md "Filters").
FILTERS: dict[str, str] = {"sex": N_("sex (recorded on both sides and different)")}


def _owner(side: str, owner_id: int) -> tuple[Any, Any]:
    """(relaxation column, filtered-pair column) of the side."""
    if side == "case":
        return MatchFilterRelaxation.case == owner_id, MatchFilteredPair.case == owner_id
    return MatchFilterRelaxation.notice == owner_id, MatchFilteredPair.notice == owner_id


async def _require_owner(side: str, owner_id: int) -> None:
    table = Case if side == "case" else Notice
    if not await table.exists().where(table.id == owner_id):
        raise NotFound(
            _("case {id} does not exist", id=owner_id)
            if side == "case"
            else _("notice {id} does not exist", id=owner_id)
        )


def _require_filter(name: str) -> None:
    if name not in FILTERS:
        raise InvalidInput(_("unknown matching filter {name}", name=name), accepted=sorted(FILTERS))


async def relaxed_filters_of(ids: dict[str, list[int]]) -> dict[str, dict[int, set[str]]]:
    """Filters relaxed now, for cases and notices at once (one statement): ``ids``
    by side (``"case"``, ``"notice"``) → side → id → filters relaxed now (ids
    without a relaxation are absent)."""
    out: dict[str, dict[int, set[str]]] = {"case": {}, "notice": {}}
    columns: dict[str, Any] = {
        "case": MatchFilterRelaxation.case,
        "notice": MatchFilterRelaxation.notice,
    }
    where: Any = None
    for side, wanted in ids.items():
        if wanted:
            term = columns[side].is_in(wanted)
            where = term if where is None else where | term
    if where is None:
        return out
    rows = await MatchFilterRelaxation.select(
        MatchFilterRelaxation.case, MatchFilterRelaxation.notice, MatchFilterRelaxation.filter
    ).where(where & MatchFilterRelaxation.restored_at.is_null())
    sets = {side: set(wanted) for side, wanted in ids.items()}
    for r in rows:
        for side, held in sets.items():
            if r[side] is not None and int(r[side]) in held:
                out[side].setdefault(int(r[side]), set()).add(str(r["filter"]))
    return out


def _relaxation_out(row: dict[str, Any]) -> FilterRelaxationOut:
    return FilterRelaxationOut(**{k: row[k] for k in FilterRelaxationOut.__struct_fields__})


async def filter_state(*, side: str, owner_id: int, settings: Settings) -> list[MatchFilterOut]:
    """Each filter for one case (``side="case"``) or notice: pairs it removes now,
    whether it is relaxed here (or globally by ``MATCH_FILTER_SEX=false``), and the
    relaxation history, newest first. Raises NotFound."""
    await _require_owner(side, owner_id)
    where_relax, where_pair = _owner(side, owner_id)
    other = "notice" if side == "case" else "case"
    out = []
    for name, text in FILTERS.items():
        pairs = await MatchFilteredPair.select(getattr(MatchFilteredPair, other)).where(
            where_pair & (MatchFilteredPair.filter == name)
        )
        history = (
            await MatchFilterRelaxation.select()
            .where(where_relax & (MatchFilterRelaxation.filter == name))
            .order_by(MatchFilterRelaxation.id, ascending=False)
        )
        out.append(
            MatchFilterOut(
                filter=name,
                label=_(text),
                removed=len(pairs),
                removed_ids=sorted(int(p[other]) for p in pairs),
                relaxed=any(h["restored_at"] is None for h in history),
                relaxed_globally=name == "sex" and not settings.matching.filter_sex,
                history=[_relaxation_out(h) for h in history],
            )
        )
    return out


async def change_filter(
    *,
    side: str,
    owner_id: int,
    name: str,
    relax: bool,
    data: FilterChangeIn,
    by: Principal,
    settings: Settings,
    enqueue: Callable[[str, int], Awaitable[None]],
) -> list[MatchFilterOut]:
    """Relax (``relax=True``) or restore filter ``name`` for one case or notice, write
    the event on its timeline (``match_filter_relaxed`` / ``match_filter_restored``)
    and queue its re-matching. Returns :func:`filter_state`.

    Raises:
        NotFound: no such case or notice.
        InvalidInput: unknown filter (accepted: :data:`FILTERS`).
        Conflict: relaxing a filter already relaxed here, or restoring one that is not.
    """
    _require_filter(name)
    await _require_owner(side, owner_id)
    where_relax, _pairs = _owner(side, owner_id)
    active = where_relax & (MatchFilterRelaxation.filter == name)
    active = active & MatchFilterRelaxation.restored_at.is_null()
    now = clock.now()
    async with MatchFilterRelaxation._meta.db.transaction():
        if relax:
            if await MatchFilterRelaxation.exists().where(active):
                raise Conflict(
                    _("the {name} filter is already relaxed here", name=name),
                    accepted=_("restore it first"),
                )
            await MatchFilterRelaxation.insert(
                MatchFilterRelaxation(
                    case=owner_id if side == "case" else None,
                    notice=owner_id if side == "notice" else None,
                    filter=name,
                    reason=data.reason,
                    relaxed_by=by.user_id,
                    relaxed_at=now,
                )
            )
        else:
            restored = (
                await MatchFilterRelaxation.update(
                    {
                        MatchFilterRelaxation.restored_at: now,
                        MatchFilterRelaxation.restored_by: by.user_id,
                        MatchFilterRelaxation.restore_reason: data.reason,
                        MatchFilterRelaxation.rematched_at: None,
                    }
                )
                .where(active)
                .returning(MatchFilterRelaxation.id)
            )
            if not restored:
                raise Conflict(
                    _("the {name} filter is not relaxed here", name=name),
                    accepted=_("a relaxed filter"),
                )
        kind = "match_filter_relaxed" if relax else "match_filter_restored"
        event: dict[str, Any] = {
            "kind": kind,
            "actor_id": by.user_id,
            "actor_role": str(by.role),
            "reason": data.reason,
            "data": {"filter": name},
        }
        if side == "case":
            await record_event(case_id=owner_id, **event)
        else:
            await record_notice_event(notice_id=owner_id, **event)
    await enqueue(side, owner_id)
    return await filter_state(side=side, owner_id=owner_id, settings=settings)


async def rematch_owner(*, side: str, owner_id: int, settings: Settings, galleries: Any) -> int:
    """Re-match one case or notice as one identity (all its faces, against the
    other side) and mark its relaxations re-matched. Returns candidates touched."""
    from rescue.matching.services import match_photo
    from rescue.photos.tables import Face, PhotoStatus

    column = Face.case if side == "case" else Face.notice
    face = (
        await Face.select(Face.photo)
        .where(
            (column == owner_id)
            & (Face.retake == False)  # noqa: E712
            & (Face.photo.status == PhotoStatus.processed.value)
        )
        .order_by(Face.id)
        .first()
    )
    touched: list[int] = []
    if face is not None:
        # One photo is enough: match_photo searches with every face of the owner.
        touched = await match_photo(
            photo_id=int(face["photo"]), settings=settings, galleries=galleries
        )
    await mark_rematched(side=side, owner_id=owner_id)
    return len(touched)


async def mark_rematched(*, side: str, owner_id: int) -> None:
    """Record that the owner's relaxations (and restorations) are in effect."""
    where_relax, _pairs = _owner(side, owner_id)
    await MatchFilterRelaxation.update({MatchFilterRelaxation.rematched_at: clock.now()}).where(
        where_relax & MatchFilterRelaxation.rematched_at.is_null()
    )
