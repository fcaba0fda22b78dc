"""The candidate ledger: evidence records, scores, police-submitted candidates, reads.

One candidate per (case, notice) pair (``pair_key``), whatever its sources;
each source is a :class:`~rescue.matching.tables.CandidateEvidence` record. The
candidate's ``score`` and ``flags`` are recomputed (:func:`rescore`) whenever
its evidence changes; the formula is in rescue.matching.scoring and
docs/scoring.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import msgspec

from media.storage import ObjectStore
from rescue import clock
from rescue.cases.events import record_event
from rescue.cases.tables import Case
from rescue.documents import StoredDocument, stored_document
from rescue.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from rescue.i18n import _, label
from rescue.matching.calibration import Calibration, calibration_for
from rescue.matching.schemas import (
    VALUE_TYPES,
    CandidateDetail,
    CandidateOut,
    ConfidenceOut,
    EvidenceOut,
    FamilyConfirmationOut,
    ReviewOut,
)
from rescue.matching.scoring import Breakdown, EvidenceInput, compute_score
from rescue.matching.tables import (
    Candidate,
    CandidateEvidence,
    CandidateReview,
    CandidateStatus,
    ConfidenceBand,
    EvidenceKind,
    FamilyConfirmation,
)
from rescue.notices.schemas import NoticeCreate
from rescue.notices.services import create_notice
from rescue.notices.tables import Notice
from rescue.schemas import Page
from rescue.settings import Settings, UploadSettings
from rescue.users.services import Principal
from rescue.users.tables import Role

__all__ = [
    "FaceMatch",
    "candidate_out",
    "get_candidate",
    "list_queue",
    "loads",
    "pair_key",
    "record_face_matches",
    "rescore",
    "rescore_rows",
    "submit_candidate",
]

log = logging.getLogger(__name__)

#: Kinds only police liaison may submit (they come from police systems).
POLICE_KINDS = frozenset({EvidenceKind.police_dna, EvidenceKind.police_face})


def loads(value: Any) -> Any:
    """A JSON column's value (Piccolo returns JSON columns as text unless asked)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def pair_key(case_id: int, notice_id: int) -> str:
    return f"{case_id}:{notice_id}"


def _explain(distance: float | None, threshold: float) -> str:
    """The face comparison in one line, in the reader's language (rescue.i18n)."""
    if distance is None:
        return _("no face comparison")
    return _(
        "closest faces are {distance} apart (Euclidean, dlib 128-d); "
        "threshold {threshold}, margin {margin}",
        distance=f"{distance:.3f}",
        threshold=f"{threshold:.2f}",
        margin=f"{threshold - distance:+.3f}",
    )


async def _evidence_kinds(candidate_ids: list[int]) -> dict[int, list[str]]:
    if not candidate_ids:
        return {}
    rows = await CandidateEvidence.select(
        CandidateEvidence.candidate, CandidateEvidence.kind
    ).where(CandidateEvidence.candidate.is_in(candidate_ids))
    kinds: dict[int, set[str]] = {}
    for r in rows:
        kinds.setdefault(int(r["candidate"]), set()).add(r["kind"])
    return {k: sorted(v) for k, v in kinds.items()}


def confidence_out(value: Any) -> ConfidenceOut | None:
    """The stored ``candidates.confidence`` as its API body, in the active locale."""
    data = loads(value) or {}
    if not data.get("band"):
        return None
    band = ConfidenceBand(data["band"])
    rate = float(data["false_match_rate"])
    size = int(data["gallery_size"])
    return ConfidenceOut(
        band=band,
        label=label(band),
        summary=_(
            "{band}: someone who is not this person would score this well in "
            "{rate} of searches of {size} people",
            band=label(band),
            rate=_rate(rate),
            size=format(size, ","),
        ),
        false_match_rate=rate,
        pair_rate=float(data["pair_rate"]),
        gallery_size=size,
        model=str(data.get("model", "")),
        calibration=str(data.get("calibration", "")),
        warning=_(data["warning"]) if data.get("warning") else "",
        face_quality=dict(data.get("face_quality") or {}),
    )


def _rate(rate: float) -> str:
    """A rate as a percentage with the precision it deserves (≥ 2 significant digits)."""
    if rate >= 0.1:
        return f"{100 * rate:.0f} %"
    if rate >= 0.001:
        return f"{100 * rate:.1f} %"
    return f"{100 * rate:.2g} %" if rate >= 1e-6 else "< 0.0001 %"


def candidate_out(row: dict[str, Any], *, threshold: float, kinds: list[str]) -> CandidateOut:
    """A candidate row as its API body."""
    return CandidateOut(
        id=row["id"],
        case_id=row["case"],
        notice_id=row["notice"],
        status=row["status"],
        score=row["score"],
        flags=list(loads(row["flags"]) or []),
        re_proposed=row["re_proposed"],
        evidence_kinds=kinds,
        best_distance=row["best_distance"],
        threshold=threshold,
        case_photo_id=row["case_photo"],
        notice_photo_id=row["notice_photo"],
        explanation=_explain(row["best_distance"], threshold),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        person_description=row["person_description"],
        version=row["version"],
        confidence=confidence_out(row.get("confidence")),
        photos_deleted_at=row.get("photos_deleted_at"),
        retained_evidence=dict(loads(row.get("retained_evidence") or "{}") or {}),
    )


async def candidate_outs(rows: list[dict[str, Any]], *, threshold: float) -> list[CandidateOut]:
    kinds = await _evidence_kinds([int(r["id"]) for r in rows])
    return [candidate_out(r, threshold=threshold, kinds=kinds.get(r["id"], [])) for r in rows]


# --- scoring ----------------------------------------------------------------
def _breakdown(
    *,
    case: dict[str, Any] | None,
    notice: dict[str, Any] | None,
    evidence: list[dict[str, Any]],
    calibrations: dict[str, Calibration | None],
) -> Breakdown:
    """Score breakdown from the pair's two rows and evidence records (``kind``,
    ``values``, ``distance``, ``threshold``, ``model``); the calibration is that of
    the newest face model among them."""
    models = sorted({e["model"] for e in evidence if e["kind"] == "face" and e["model"]})
    return compute_score(
        case=case,
        notice=notice or {},
        evidence=[
            EvidenceInput(
                kind=e["kind"],
                values=dict(loads(e["values"]) or {}),
                distance=e["distance"],
                threshold=e["threshold"],
            )
            for e in evidence
        ],
        calibration=calibrations.get(models[-1]) if models else None,
    )


async def _calibrations(
    evidence: list[dict[str, Any]], known: dict[str, Calibration | None] | None = None
) -> dict[str, Calibration | None]:
    """The calibration in force for each face model of ``evidence`` (``known``: those
    the caller has just looked up)."""
    out = dict(known or {})
    for model in sorted({e["model"] for e in evidence if e["kind"] == "face" and e["model"]}):
        if model not in out:
            out[model] = await calibration_for(model)
    return out


_EVIDENCE_FOR_SCORE = (
    CandidateEvidence.candidate,
    CandidateEvidence.kind,
    CandidateEvidence.values,
    CandidateEvidence.distance,
    CandidateEvidence.threshold,
    CandidateEvidence.model,
)


async def breakdown_of(row: dict[str, Any]) -> Breakdown:
    """Score breakdown of a candidate row, from its case, notice and evidence."""
    case = None
    if row["case"] is not None:
        case = await Case.select().where(Case.id == row["case"]).first()
    notice = await Notice.select().where(Notice.id == row["notice"]).first()
    evidence = await CandidateEvidence.select(*_EVIDENCE_FOR_SCORE).where(
        CandidateEvidence.candidate == row["id"]
    )
    return _breakdown(
        case=case, notice=notice, evidence=evidence, calibrations=await _calibrations(evidence)
    )


def _placeholders(rows: int, columns: int | tuple[str, ...]) -> str:
    """``({}, {}), ({}, {})…``: a VALUES list of Piccolo placeholders, each column
    followed by its cast when ``columns`` gives them (``"::integer"``; ``""``: none)."""
    casts = ("",) * columns if isinstance(columns, int) else columns
    one = "(" + ", ".join("{}" + c for c in casts) + ")"
    return ", ".join([one] * rows)


#: Candidates rescored per statement by :func:`rescore_rows` (bounded parameter lists).
_RESCORE_BATCH = 500


async def rescore_rows(
    rows: list[dict[str, Any]],
    *,
    cases: dict[int, dict[str, Any]] | None = None,
    notices: dict[int, dict[str, Any]] | None = None,
    calibrations: dict[str, Calibration | None] | None = None,
) -> dict[int, Breakdown]:
    """Recompute and store ``score``, ``flags`` and ``confidence`` of candidates
    (rows with ``id``, ``case``, ``notice``), set-based: one read of their evidence,
    one of the cases and notices not given in ``cases``/``notices`` (rows by id,
    as just read by the caller), the calibration of each face model not given in
    ``calibrations`` (:func:`~rescue.matching.calibration.calibration_for`), one
    UPDATE per :data:`_RESCORE_BATCH` candidates. Returns each candidate's breakdown
    by id."""
    out: dict[int, Breakdown] = {}
    for start in range(0, len(rows), _RESCORE_BATCH):
        batch = rows[start : start + _RESCORE_BATCH]
        out.update(await _rescore_batch(batch, cases, notices, calibrations))
    return out


async def _rescore_batch(
    rows: list[dict[str, Any]],
    cases: dict[int, dict[str, Any]] | None,
    notices: dict[int, dict[str, Any]] | None,
    known: dict[str, Calibration | None] | None,
) -> dict[int, Breakdown]:
    if not rows:
        return {}
    ids = [int(r["id"]) for r in rows]
    evidence = await CandidateEvidence.select(*_EVIDENCE_FOR_SCORE).where(
        CandidateEvidence.candidate.is_in(ids)
    )
    by_candidate: dict[int, list[dict[str, Any]]] = {}
    for e in evidence:
        by_candidate.setdefault(int(e["candidate"]), []).append(e)
    cases = dict(cases or {})
    notices = dict(notices or {})
    want_cases = sorted({int(r["case"]) for r in rows if r["case"] is not None} - set(cases))
    want_notices = sorted({int(r["notice"]) for r in rows} - set(notices))
    if want_cases:
        found = await Case.select().where(Case.id.is_in(want_cases))
        cases.update({int(c["id"]): c for c in found})
    if want_notices:
        notices.update(
            {int(n["id"]): n for n in await Notice.select().where(Notice.id.is_in(want_notices))}
        )
    calibrations = await _calibrations(evidence, known)
    out = {
        int(r["id"]): _breakdown(
            case=cases.get(int(r["case"])) if r["case"] is not None else None,
            notice=notices.get(int(r["notice"])),
            evidence=by_candidate.get(int(r["id"]), []),
            calibrations=calibrations,
        )
        for r in rows
    }
    # One UPDATE for the batch. PostgreSQL needs the parameters' types in a VALUES
    # list outside an INSERT; SQLite has no ``::`` casts and needs none.
    pg = Candidate._meta.db.engine_type != "sqlite"
    casts = ("::integer", "::double precision", "::json", "::json") if pg else ("",) * 4
    args: list[Any] = []
    for candidate_id, b in out.items():
        confidence = b.components.get("confidence") or {}
        args += [candidate_id, b.score, json.dumps(b.flags), json.dumps(confidence)]
    await Candidate.raw(
        f"WITH v (id, score, flags, confidence) AS (VALUES {_placeholders(len(out), casts)}) "  # noqa: S608 - placeholders only
        "UPDATE candidates SET score = v.score, flags = v.flags, "
        "confidence = v.confidence FROM v WHERE candidates.id = v.id",
        *args,
    )
    return out


async def rescore(*, candidate_id: int) -> Breakdown:
    """Recompute and store a candidate's ``score`` and ``flags``. Raises NotFound."""
    row = (
        await Candidate.select(Candidate.id, Candidate.case, Candidate.notice)
        .where(Candidate.id == candidate_id)
        .first()
    )
    if row is None:
        raise NotFound(_("candidate {candidate_id} does not exist", candidate_id=candidate_id))
    return (await rescore_rows([row]))[candidate_id]


async def rescore_all() -> int:
    """Rescore every candidate with face evidence (after a new calibration): their
    confidence bands follow it. Returns how many."""
    rows = await CandidateEvidence.select(CandidateEvidence.candidate).where(
        CandidateEvidence.kind == EvidenceKind.face.value
    )
    ids = sorted({int(r["candidate"]) for r in rows})
    for start in range(0, len(ids), _RESCORE_BATCH):
        await rescore_rows(
            await Candidate.select(Candidate.id, Candidate.case, Candidate.notice).where(
                Candidate.id.is_in(ids[start : start + _RESCORE_BATCH])
            )
        )
    return len(ids)


async def rescore_case(*, case_id: int) -> int:
    """Rescore every candidate of a case (after its facts changed). Returns how many."""
    rows = await Candidate.select(Candidate.id, Candidate.case, Candidate.notice).where(
        Candidate.case == case_id
    )
    await rescore_rows(rows)
    return len(rows)


# --- evidence ---------------------------------------------------------------
@dataclass(frozen=True)
class FaceMatch:
    """A (case, notice) pair found by a face search: its best face distance
    (Euclidean, dlib 128-d) and the two photos that gave it, with their faces'
    quality (rescue.matching.quality, ``{"case": {...}, "notice": {...}}``)."""

    case_id: int
    notice_id: int
    distance: float
    case_photo_id: int
    notice_photo_id: int
    face_quality: dict[str, Any] | None = None


async def record_face_matches(
    matches: list[FaceMatch],
    *,
    threshold: float,
    model: str,
    gallery_size: int | None = None,
    cases: dict[int, dict[str, Any]] | None = None,
    notices: dict[int, dict[str, Any]] | None = None,
    calibration: Calibration | None = None,
) -> list[int]:
    """Write the face matches of one search to the ledger; returns their candidate
    ids, in the order of ``matches``.

    Per pair, as one candidate (``pair_key``, never two): create it, or lower its
    best distance and photos when the new distance is smaller; write or refresh its
    face evidence record for ``model`` (one per candidate and model: the
    smallest distance seen, refreshed when found again); bring a rejected pair back
    when a photo processed after the rejection gave it (``rejected_photo_ids``;
    :func:`re_propose_if_rejected`, on the case timeline); rescore it.

    Set-based, whatever the number of pairs: one upsert of the candidates, one of
    their evidence, one read of their evidence and one update of their scores
    (:func:`rescore_rows`; ``cases``/``notices``: rows by id, and ``calibration``:
    the one in force for ``model``, that the caller has just read, not read again);
    a re-proposal adds its own three statements. Before, about 11 statements per
    pair (55 for 5 candidates, issue 16). Measured by bench/worker_step.py with
    1 M and 4 M notice faces (docs/performance.md, "Worker step at scale"): with
    the other changes of that run, a one-face case photo's job went from 101 to 34
    statements, and the worker step's time beside detection, refresh and search
    ("the rest") from 0.45× to 0.05-0.06× detection + encoding (26-29 ms).

    Safe under concurrent workers: ``pair_key`` and ``face_key`` are unique, the
    updates only apply when the new distance is smaller (or equal, for the
    evidence), and rows are written in ``pair_key`` order (no lock cycles).
    """
    if not matches:
        return []
    best: dict[str, FaceMatch] = {}
    for m in matches:
        key = pair_key(m.case_id, m.notice_id)
        if key not in best or m.distance < best[key].distance:
            best[key] = m
    keys = sorted(best)
    now = clock.now()
    args: list[Any] = []
    for key in keys:
        m = best[key]
        args += [
            m.case_id,
            m.notice_id,
            key,
            m.distance,
            m.case_photo_id,
            m.notice_photo_id,
            CandidateStatus.proposed.value,
            now,
            now,
        ]
    closer = "candidates.best_distance IS NULL OR candidates.best_distance > excluded.best_distance"
    # Every SET expression sees the row as it was (PostgreSQL and SQLite alike).
    rows = await Candidate.raw(
        'INSERT INTO candidates ("case", notice, pair_key, best_distance, case_photo, '  # noqa: S608 - placeholders and fixed names
        f"notice_photo, status, created_at, updated_at) VALUES {_placeholders(len(keys), 9)} "
        "ON CONFLICT (pair_key) DO UPDATE SET "
        + ", ".join(
            f"{col} = CASE WHEN {closer} THEN excluded.{col} ELSE candidates.{col} END"
            for col in ("case_photo", "notice_photo", "updated_at", "best_distance")
        )
        + ' RETURNING id, "case", notice, pair_key, status, rejected_photo_ids',
        *args,
    )
    by_key = {str(r["pair_key"]): r for r in rows}
    args = []
    for key in keys:
        m = best[key]
        values: dict[str, Any] = {
            "distance": m.distance,
            "threshold": threshold,
            "model": model,
            "case_photo_id": m.case_photo_id,
            "notice_photo_id": m.notice_photo_id,
        }
        if gallery_size is not None:
            values["gallery_size"] = gallery_size
        if m.face_quality is not None:
            values["face_quality"] = m.face_quality
        candidate_id = int(by_key[key]["id"])
        args += [
            candidate_id,
            EvidenceKind.face.value,
            json.dumps(values),
            f"{candidate_id}:face:{model}",
            model,
            threshold,
            m.distance,
            m.case_photo_id,
            m.notice_photo_id,
            "system",
            now,
            now,
        ]
    await CandidateEvidence.raw(
        'INSERT INTO candidate_evidence (candidate, kind, "values", face_key, model, '  # noqa: S608 - placeholders only
        "threshold, distance, case_photo, notice_photo, submitted_role, created_at, "
        f"updated_at) VALUES {_placeholders(len(keys), 12)} "
        'ON CONFLICT (face_key) DO UPDATE SET "values" = excluded."values", '
        "threshold = excluded.threshold, distance = excluded.distance, "
        "case_photo = excluded.case_photo, notice_photo = excluded.notice_photo, "
        "updated_at = excluded.updated_at "
        "WHERE candidate_evidence.distance >= excluded.distance",
        *args,
    )
    for key in keys:
        row, m = by_key[key], best[key]
        if row["status"] != CandidateStatus.rejected.value:
            continue
        seen = {int(p) for p in (loads(row["rejected_photo_ids"]) or [])}
        new_photos = sorted({m.case_photo_id, m.notice_photo_id} - seen)
        if new_photos:
            await re_propose_if_rejected(
                candidate_id=int(row["id"]),
                why="face match from a photo added after the rejection",
                actor=None,
                data={"photo_ids": new_photos, "distance": m.distance},
            )
    await rescore_rows(
        [by_key[k] for k in keys],
        cases=cases,
        notices=notices,
        calibrations={model: calibration} if calibration is not None else None,
    )
    return [int(by_key[pair_key(m.case_id, m.notice_id)]["id"]) for m in matches]


async def re_propose_if_rejected(
    *, candidate_id: int, why: str, actor: Principal | None, data: dict[str, Any]
) -> bool:
    """Bring a rejected candidate back to ``proposed`` (``re_proposed`` + 1).

    Returns True if it was rejected and is now proposed; writes a
    ``candidate_re_proposed`` event on the case timeline.
    """
    row = (
        await Candidate.select(Candidate.case, Candidate.re_proposed, Candidate.version)
        .where(
            (Candidate.id == candidate_id) & (Candidate.status == CandidateStatus.rejected.value)
        )
        .first()
    )
    if row is None:
        return False
    updated = (
        await Candidate.update(
            {
                Candidate.status: CandidateStatus.proposed.value,
                Candidate.re_proposed: row["re_proposed"] + 1,
                Candidate.version: row["version"] + 1,
                Candidate.updated_at: clock.now(),
            }
        )
        .where(
            (Candidate.id == candidate_id)
            & (Candidate.status == CandidateStatus.rejected.value)
            & (Candidate.version == row["version"])
        )
        .returning(Candidate.id)
    )
    if not updated:
        return False
    if row["case"] is not None:
        await record_event(
            case_id=row["case"],
            kind="candidate_re_proposed",
            actor_id=actor.user_id if actor else None,
            actor_role=actor.role.value if actor else "system",
            reason=why,
            data={"candidate_id": candidate_id, **data},
        )
    return True


async def submit_candidate(
    *,
    kind: EvidenceKind,
    values: Any,
    by: Principal,
    store: ObjectStore,
    limits: UploadSettings,
    settings: Settings,
    case_id: int | None = None,
    person_description: str = "",
    notice_id: int | None = None,
    notice: NoticeCreate | None = None,
    note: str = "",
    attachment: bytes | None = None,
) -> tuple[CandidateDetail, bool]:
    """Add a lead with its evidence (police liaison, staff): joins the reviewer queue.

    The person is ``case_id`` or, when not registered in the service,
    ``person_description`` (a lead without a case: listed and reviewable, never
    confirmable). The notice is ``notice_id`` or ``notice`` (its details; a new
    notice is created). The same (case, notice) pair always yields the same
    candidate, with one more evidence record; a rejected pair comes back as
    proposed (``re_proposed`` + 1).

    Args:
        kind: police_dna, police_face (police liaison only), announcement_clue, staff.
        values: the kind's values (rescue.matching.schemas.VALUE_TYPES).
        attachment: the police report (PDF, JPEG, PNG or WebP, ≤ UPLOAD_MAX_BYTES).

    Returns:
        (the candidate's detail, True if the candidate was new).

    Raises:
        InvalidInput: missing/duplicate person or notice, bad values, ``face`` kind.
        PermissionDenied: a police kind from someone other than police liaison.
        NotFound: unknown case or notice.
        UnsupportedMedia, PayloadTooLarge: the attachment.
    """
    if kind == EvidenceKind.face:
        raise InvalidInput(
            _("face evidence comes from the service's own matching; upload photos instead"),
            accepted=[k.value for k in VALUE_TYPES],
        )
    if kind in POLICE_KINDS and by.role != Role.police_liaison:
        raise PermissionDenied(
            _(
                "{kind} evidence comes from the police; only police liaison may submit it",
                kind=label(kind),
            ),
            accepted=[Role.police_liaison.value],
        )
    try:
        clean_values = msgspec.to_builtins(msgspec.convert(values, type=VALUE_TYPES[kind]))
    except msgspec.ValidationError as exc:
        raise InvalidInput(
            _("values for {kind}: {problem}", kind=label(kind), problem=exc),
            accepted=msgspec.json.schema(VALUE_TYPES[kind]),
        ) from exc
    description = person_description.strip()
    if (case_id is None) == (not description):
        raise InvalidInput(
            _("give either case_id or person_description (a person not registered as a case)"),
            accepted=["case_id", "person_description"],
        )
    if (notice_id is None) == (notice is None):
        raise InvalidInput(
            _("give either notice_id or notice (the notice's details, to create it)"),
            accepted=["notice_id", "notice"],
        )
    if case_id is not None and not await Case.exists().where(Case.id == case_id):
        raise NotFound(_("case {case_id} does not exist", case_id=case_id))
    if notice_id is not None and not await Notice.exists().where(Notice.id == notice_id):
        raise NotFound(_("notice {notice_id} does not exist", notice_id=notice_id))

    async with contextlib.AsyncExitStack() as stack:
        # A report is validated and stored first; if anything below fails, the
        # stored object is removed again (rescue.documents.stored_document).
        doc = (
            await stack.enter_async_context(
                stored_document(data=attachment, store=store, limits=limits, prefix="evidence")
            )
            if attachment is not None
            else None
        )
        candidate_id, inserted = await _record_submission(
            kind=kind,
            values=clean_values,
            by=by,
            case_id=case_id,
            description=description,
            notice_id=notice_id,
            notice=notice,
            note=note,
            doc=doc,
        )
    detail = await get_candidate(candidate_id=candidate_id, settings=settings, store=store)
    return detail, inserted


async def _record_submission(
    *,
    kind: EvidenceKind,
    values: Any,
    by: Principal,
    case_id: int | None,
    description: str,
    notice_id: int | None,
    notice: NoticeCreate | None,
    note: str,
    doc: StoredDocument | None,
) -> tuple[int, bool]:
    """The database half of :func:`submit_candidate`, in one transaction."""
    now = clock.now()
    async with Candidate._meta.db.transaction():
        if notice is not None:
            notice_id = (await create_notice(data=notice, by=by)).id
        assert notice_id is not None
        if case_id is not None:
            pk = pair_key(case_id, notice_id)
            inserted = (
                await Candidate.insert(
                    Candidate(
                        case=case_id,
                        notice=notice_id,
                        pair_key=pk,
                        status=CandidateStatus.proposed.value,
                        created_at=now,
                        updated_at=now,
                    )
                )
                .on_conflict(target=Candidate.pair_key, action="DO NOTHING")
                .returning(Candidate.id)
            )
        else:
            pk = f"lead:{secrets.token_hex(16)}"
            inserted = await Candidate.insert(
                Candidate(
                    case=None,
                    notice=notice_id,
                    pair_key=pk,
                    person_description=description,
                    status=CandidateStatus.proposed.value,
                    created_at=now,
                    updated_at=now,
                )
            ).returning(Candidate.id)
        row = await Candidate.select(Candidate.id).where(Candidate.pair_key == pk).first()
        assert row is not None
        candidate_id = int(row["id"])
        rows = await CandidateEvidence.insert(
            CandidateEvidence(
                candidate=candidate_id,
                kind=kind.value,
                values=values,
                note=note,
                attachment_key=doc.object_key if doc else None,
                attachment_media_type=doc.media_type if doc else None,
                attachment_sha256=doc.sha256 if doc else None,
                attachment_size=doc.size_bytes if doc else None,
                submitted_by=by.user_id,
                submitted_role=by.role.value,
                created_at=now,
                updated_at=now,
            )
        ).returning(CandidateEvidence.id)
        evidence_id = int(rows[0]["id"])
        await re_propose_if_rejected(
            candidate_id=candidate_id,
            why=f"new {kind.value} evidence",
            actor=by,
            data={"evidence_id": evidence_id},
        )
        if case_id is not None:
            await record_event(
                case_id=case_id,
                kind="candidate_evidence_added",
                actor_id=by.user_id,
                actor_role=by.role.value,
                reason=note,
                data={
                    "candidate_id": candidate_id,
                    "notice_id": notice_id,
                    "evidence_id": evidence_id,
                    "evidence_kind": kind.value,
                },
            )
        await rescore(candidate_id=candidate_id)
    return candidate_id, bool(inserted)


# --- reads ------------------------------------------------------------------
async def require_candidate(*, candidate_id: int) -> dict[str, Any]:
    """The candidate row. Raises NotFound."""
    row = await Candidate.select().where(Candidate.id == candidate_id).first()
    if row is None:
        raise NotFound(_("candidate {candidate_id} does not exist", candidate_id=candidate_id))
    return row


async def get_candidate(
    *, candidate_id: int, settings: Settings, store: ObjectStore | None = None
) -> CandidateDetail:
    """A candidate with its evidence (attachment URLs with ``store``), live score
    breakdown, reviews and family confirmations. Never returns face encodings.

    Raises:
        NotFound: no such candidate.
    """
    row = await require_candidate(candidate_id=candidate_id)
    breakdown = await breakdown_of(row)
    evidence_rows = (
        await CandidateEvidence.select()
        .where(CandidateEvidence.candidate == candidate_id)
        .order_by(CandidateEvidence.id)
    )
    evidence = []
    for e in evidence_rows:
        url = None
        if store is not None and e["attachment_key"]:
            url = await store.apresigned_url(e["attachment_key"])
        evidence.append(
            EvidenceOut(
                id=e["id"],
                kind=EvidenceKind(e["kind"]),
                values=dict(loads(e["values"]) or {}),
                submitted_by=e["submitted_by"],
                submitted_role=e["submitted_role"],
                created_at=e["created_at"],
                updated_at=e["updated_at"],
                note=e["note"],
                model=e["model"],
                threshold=e["threshold"],
                distance=e["distance"],
                case_photo_id=e["case_photo"],
                notice_photo_id=e["notice_photo"],
                attachment_media_type=e["attachment_media_type"],
                attachment_sha256=e["attachment_sha256"],
                attachment_url=url,
                attachment_url_expires_in=store.presign_seconds if url and store else None,
            )
        )
    reviews = (
        await CandidateReview.select()
        .where(CandidateReview.candidate == candidate_id)
        .order_by(CandidateReview.id)
    )
    confirmations = (
        await FamilyConfirmation.select()
        .where(FamilyConfirmation.candidate == candidate_id)
        .order_by(FamilyConfirmation.id)
    )
    kinds = sorted({str(e.kind) for e in evidence})
    return CandidateDetail(
        candidate=candidate_out(row, threshold=settings.matching.threshold, kinds=kinds),
        breakdown=breakdown.as_dict(),
        evidence=evidence,
        reviews=[ReviewOut(**{k: r[k] for k in ReviewOut.__struct_fields__}) for r in reviews],
        family_confirmations=[
            FamilyConfirmationOut(**{k: c[k] for k in FamilyConfirmationOut.__struct_fields__})
            for c in confirmations
        ],
        awaiting_second_reviewer=(
            row["first_confirmed_by"] is not None
            and row["status"] == CandidateStatus.under_review.value
        ),
        first_confirmed_by=row["first_confirmed_by"],
    )


async def list_queue(
    *,
    settings: Settings,
    status: CandidateStatus | None,
    limit: int,
    offset: int,
    stations: list[str] | None = None,
) -> Page[CandidateOut]:
    """Candidates (all, or of one status), best first: score descending, then the
    smallest face distance, then the oldest. ``status=proposed`` is the reviewer queue.

    ``stations``: only candidates whose case belongs to one of these stations, plus
    leads without a case (None: all).
    """
    query = Candidate.select()
    count = Candidate.count()
    if stations is not None:
        visible = Candidate.case.is_null() | Candidate.case.station.is_in(stations or [""])
        query = query.where(visible)
        count = count.where(visible)
    if status is not None:
        query = query.where(Candidate.status == status.value)
        count = count.where(Candidate.status == status.value)
    rows = (
        await query.order_by(Candidate.score, ascending=False)
        .order_by(Candidate.best_distance)
        .order_by(Candidate.id)
        .limit(limit)
        .offset(offset)
    )
    return Page(
        items=await candidate_outs(rows, threshold=settings.matching.threshold),
        total=await count,
        limit=limit,
        offset=offset,
    )
