"""The side-by-side comparison page of a candidate (server-rendered HTML).

Looking beats reading: the two best photos (the face pair that gave the best
distance, else each side's first processed photo) with their face boxes drawn
over them, and the score breakdown under them. Every value is escaped with
``html.escape``; the photos are short-lived presigned URLs (≤ 5 minutes,
PHOTO_URL_TTL_SECONDS), so a saved page stops showing faces.
"""

from __future__ import annotations

import html
import json
from typing import Any

from media.storage import ObjectStore
from rescue.cases.tables import Case
from rescue.i18n import _
from rescue.matching.ledger import breakdown_of, loads, require_candidate
from rescue.notices.tables import Notice
from rescue.photos.tables import Face, Photo, PhotoStatus

__all__ = ["render_compare"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
.pair{display:flex;gap:1.5rem;flex-wrap:wrap}
.side{flex:1 1 420px;max-width:600px}
.frame{position:relative;display:inline-block;width:100%}
.frame img{width:100%;display:block}
.box{position:absolute;border:3px solid #e0301e;box-sizing:border-box}
.box.best{border-color:#1e9e3e}
table{border-collapse:collapse;margin-top:1rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
.flag{color:#b00;font-weight:bold}
.none{color:#777;font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


async def _best_photo(photo_id: int | None, column: Any, owner_id: int | None) -> Any:
    if photo_id is not None:
        return await Photo.select().where(Photo.id == photo_id).first()
    if owner_id is None:
        return None
    return (
        await Photo.select()
        .where((column == owner_id) & (Photo.status == PhotoStatus.processed.value))
        .order_by(Photo.id)
        .first()
    )


async def _side_html(
    title: str, photo: dict[str, Any] | None, store: ObjectStore, *, deleted: bool = False
) -> str:
    if photo is None:
        text = _("Photo deleted under the retention rules.") if deleted else "no photo"
        return f'<div class="side"><h2>{_e(title)}</h2><p class="none">{_e(text)}</p></div>'
    url = await store.apresigned_url(photo["object_key"])
    faces = await Face.select(Face.top, Face.right, Face.bottom, Face.left).where(
        Face.photo == photo["id"]
    )
    w, h = photo["width"] or 1, photo["height"] or 1
    box = '<div class="box" style="left:{:.2f}%;top:{:.2f}%;width:{:.2f}%;height:{:.2f}%"></div>'
    boxes = "".join(
        box.format(
            100 * f["left"] / w,
            100 * f["top"] / h,
            100 * (f["right"] - f["left"]) / w,
            100 * (f["bottom"] - f["top"]) / h,
        )
        for f in faces
    )
    taken = f", taken {_e(photo['taken_on'])}" if photo["taken_on"] else ""
    return (
        f'<div class="side"><h2>{_e(title)}</h2>'
        f'<div class="frame"><img src="{_e(url)}" alt="{_e(title)}">{boxes}</div>'
        f"<p>photo {_e(photo['id'])}{taken}, {len(faces)} face(s)</p></div>"
    )


async def render_compare(*, candidate_id: int, store: ObjectStore) -> str:
    """The comparison page of a candidate as an HTML document.

    Raises:
        NotFound: no such candidate.
    """
    row = await require_candidate(candidate_id=candidate_id)
    case = (
        await Case.select().where(Case.id == row["case"]).first()
        if row["case"] is not None
        else None
    )
    notice = await Notice.select().where(Notice.id == row["notice"]).first()
    case_photo = await _best_photo(row["case_photo"], Photo.case, row["case"])
    notice_photo = await _best_photo(row["notice_photo"], Photo.notice, row["notice"])
    breakdown = await breakdown_of(row)
    if case is not None:
        case_title = (
            f"Case {case['reference']} · {case['reported_name'] or case['placeholder_name']}"
        )
    else:
        case_title = f"Lead without a case: {row['person_description']}"
    notice_title = f"Notice {row['notice']} · {notice['name'] if notice else ''}"
    flags = "".join(f'<span class="flag">{_e(f)}</span> ' for f in breakdown.flags)
    component_rows = "".join(
        f"<tr><th>{_e(name)}</th><td><code>{_e(json.dumps(values, ensure_ascii=False))}"
        "</code></td></tr>"
        for name, values in breakdown.components.items()
    )
    distance = row["best_distance"]
    # Photos deleted by retention (rescue.retention): the side says so.
    kept = {
        k
        for k, v in (loads(row.get("retained_evidence") or "{}") or {}).items()
        if v is not None and row.get("photos_deleted_at") is not None
    }
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Candidate {_e(candidate_id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Candidate {_e(candidate_id)}: {_e(row['status'])}</h1>"
        f"<p>score <strong>{breakdown.score:.3f}</strong>"
        f"{'' if distance is None else f', best face distance {distance:.3f}'}"
        f"{', re-proposed ×' + _e(row['re_proposed']) if row['re_proposed'] else ''}"
        f" {flags}</p>"
        '<div class="pair">'
        f"{await _side_html(case_title, case_photo, store, deleted='case_photo_id' in kept)}"
        f"{await _side_html(notice_title, notice_photo, store, deleted='notice_photo_id' in kept)}"
        "</div>"
        f"<table><tr><th>component</th><th>values</th></tr>{component_rows}</table>"
        f"<p class='none'>Photo links expire after {store.presign_seconds} s; "
        "reload the page to see them again.</p>"
        "</body></html>"
    )
