"""A worker's gallery follows the faces table: exact-size first load in pages, then increments."""

from __future__ import annotations

import secrets

import numpy as np

from rescue.matching import services
from rescue.matching.gallery import DIM
from rescue.matching.services import SideGallery
from rescue.notices.tables import Notice
from rescue.photos.tables import Face, Photo


async def _notice_faces(count: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    rows = await Notice.insert(Notice(name="王五", source="family")).returning(Notice.id)
    notice_id = rows[0]["id"]
    rows = await Photo.insert(
        Photo(
            notice=notice_id,
            object_key=f"test/{secrets.token_hex(8)}",
            sha256="0" * 64,
            size_bytes=1,
            media_type="image/jpeg",
            width=1,
            height=1,
            status="processed",
        )
    ).returning(Photo.id)
    vectors = rng.normal(0.0, 0.05, (count, DIM))
    inserted = await Face.insert(
        *[
            Face(
                photo=rows[0]["id"],
                notice=notice_id,
                top=0,
                right=1,
                bottom=1,
                left=0,
                encoding=v.astype("<f8").tobytes(),
                model="test",
            )
            for v in vectors
        ]
    ).returning(Face.id)
    return {int(r["id"]): v for r, v in zip(inserted, vectors, strict=True)}


def _held(side: SideGallery) -> dict[int, np.ndarray]:
    gallery = side.gallery
    return {int(f): gallery.vectors[i] for i, f in enumerate(gallery.face_ids)}


async def test_gallery_loads_in_pages_then_adds_and_reloads_after_removal(monkeypatch):
    monkeypatch.setattr(services, "_LOAD_BATCH", 3)  # several pages
    rng = np.random.default_rng(0)
    faces = await _notice_faces(7, rng)
    side = SideGallery("notice")

    gallery = await side.refresh()
    assert _held(side).keys() == faces.keys()
    for face_id, vector in faces.items():
        np.testing.assert_allclose(_held(side)[face_id], vector, rtol=1e-6)
    assert gallery.nbytes <= 1.06 * len(gallery) * DIM * 4 + 1024  # exact-size first load

    faces |= await _notice_faces(2, rng)
    assert await side.refresh() is gallery  # incremental: the same gallery grows
    assert _held(side).keys() == faces.keys()

    gone = next(iter(faces))
    await Face.delete().where(Face.id == gone)
    await side.refresh()
    assert _held(side).keys() == faces.keys() - {gone}
