"""Case-vs-case face search: is the person in a new case photo already registered?

Used by duplicate-intake warnings (:mod:`rescue.duplicates.services`). The same
gallery and the same distance as the (case, notice) matcher: the faces of every
case are searched with the faces of one case photo, the photo's own case left
out. The threshold is ``MATCH_THRESHOLD`` (0.53 by default: ≤ 0.1 % false
accepts per pair on LFW impostor pairs, docs/accuracy.md), so a warning is as
trustworthy as a face candidate; warnings are advisory and never block intake.
"""

from __future__ import annotations

import anyio.to_thread
import numpy as np

from rescue.matching.embedding import MODEL_NAME
from rescue.matching.gallery import GalleryHit
from rescue.matching.services import GallerySet, hits_on_current_faces
from rescue.photos.tables import Face, Photo

__all__ = ["same_person_faces"]


async def same_person_faces(
    *, photo_id: int, galleries: GallerySet, threshold: float, case_id: int | None = None
) -> list[GalleryHit]:
    """Other cases with a face within ``threshold`` of a face of case photo ``photo_id``.

    Args:
        galleries: the worker's galleries (the cases side is refreshed and searched).
        threshold: Euclidean distance (unitless) on 128-d dlib encodings.
        case_id: the photo's case, when the caller has just read it (not read again).

    Returns:
        One hit per other case (its best face still in the faces table), closest
        first; empty when the photo has no face, is not a case photo or no longer
        exists.
    """
    if case_id is None:
        photo = await Photo.select(Photo.case).where(Photo.id == photo_id).first()
        if photo is None or photo["case"] is None:
            return []
        case_id = int(photo["case"])
    faces = (
        await Face.select(Face.encoding)
        .where((Face.photo == photo_id) & (Face.model == MODEL_NAME))
        .order_by(Face.id)
    )
    if not faces:
        return []
    probes = np.stack([np.frombuffer(f["encoding"], dtype="<f8") for f in faces])
    gallery = await galleries.cases.refresh()
    hits = await anyio.to_thread.run_sync(gallery.search, probes, threshold)
    # Only faces that still exist (one query by id, as the matcher does): a gallery
    # that missed a deletion must never warn on a deleted face.
    hits, _quality = await hits_on_current_faces([h for h in hits if h.owner_id != case_id])
    best: dict[int, GalleryHit] = {}
    for hit in hits:
        if hit.owner_id not in best or hit.distance < best[hit.owner_id].distance:
            best[hit.owner_id] = hit
    return sorted(best.values(), key=lambda h: h.distance)
