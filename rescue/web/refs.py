"""How pages name cases and notices (issue 10 item 5): a case as its reference
with the person's name (``2026-0003 李秀英``), a notice as ``#2`` with the missing
person's name, each linking to its page; never a bare internal number.

A page handler collects the ids it shows and passes ``refs=await load_refs(...)``;
templates write ``{{ refs.case_link(id) }}`` / ``{{ refs.notice_link(id) }}``.
"""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup

__all__ = ["Refs", "load_refs"]


class Refs:
    """Reference and name of the cases and notices a page shows."""

    def __init__(self, cases: dict[int, tuple[str, str]], notices: dict[int, str]) -> None:
        self.cases = cases
        self.notices = notices

    def case_text(self, case_id: int | None) -> str:
        """``2026-0003 李秀英`` (confirmed, reported or placeholder name)."""
        if case_id is None:
            return ""
        reference, name = self.cases.get(case_id, (f"#{case_id}", ""))
        return f"{reference} {name}".strip()

    def notice_text(self, notice_id: int | None) -> str:
        """``#2 李四`` (the notice's number as shown on its page, and the name)."""
        if notice_id is None:
            return ""
        return f"#{notice_id} {self.notices.get(notice_id, '')}".strip()

    def case_link(self, case_id: int | None, anchor: str = "") -> Markup:
        if case_id is None:
            return Markup("")
        return Markup('<a href="/cases/{}{}" class="case-ref">{}</a>').format(
            case_id, anchor, self.case_text(case_id)
        )

    def notice_link(self, notice_id: int | None) -> Markup:
        if notice_id is None:
            return Markup("")
        return Markup('<a href="/notices/{}" class="notice-ref">{}</a>').format(
            notice_id, self.notice_text(notice_id)
        )


async def load_refs(
    case_ids: Iterable[int | None] = (),
    notice_ids: Iterable[int | None] = (),
    *,
    stations: list[str] | None = None,
) -> Refs:
    """One query each for the references and names of ``case_ids`` and ``notice_ids``
    (None ignored). Pages pass ids they already show; with ``stations`` (ids from a
    URL) cases of other stations are left out and shown by number only."""
    from rescue.cases.tables import Case
    from rescue.notices.tables import Notice

    cases = {int(i) for i in case_ids if i is not None}
    if stations is not None and not stations:
        cases = set()
    notices = {int(i) for i in notice_ids if i is not None}
    case_rows = (
        await Case.select(
            Case.id, Case.reference, Case.confirmed_name, Case.reported_name, Case.placeholder_name
        ).where(
            Case.id.is_in(list(cases)),
            *([Case.station.is_in(stations)] if stations is not None else []),
        )
        if cases
        else []
    )
    notice_rows = (
        await Notice.select(Notice.id, Notice.name).where(Notice.id.is_in(list(notices)))
        if notices
        else []
    )
    return Refs(
        {
            int(r["id"]): (
                str(r["reference"]),
                str(r["confirmed_name"] or r["reported_name"] or r["placeholder_name"]),
            )
            for r in case_rows
        },
        {int(r["id"]): str(r["name"]) for r in notice_rows},
    )
