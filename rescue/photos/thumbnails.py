"""Photos shown on pages: the original or a thumbnail, read through the app.

Pages never link to the object store (its address may be loopback, and its
URLs outlive the viewer's permission): the browser asks the app, which checks
the viewer's role and station (guard) and audits the read. A thumbnail (JPEG,
longest side :data:`THUMB_SIDE`, EXIF orientation applied) is made the first
time it is asked for and stored beside the original under ``thumbs/``, so it
is made once, not per request; rescue.retention deletes it with the photo.
"""

from __future__ import annotations

import io

import anyio.to_thread
from PIL import Image, ImageOps

from media.storage import ObjectStore
from rescue.errors import NotFound
from rescue.i18n import _
from rescue.photos.tables import Photo

__all__ = ["THUMB_SIDE", "photo_bytes", "thumb_key"]

#: Longest side of a thumbnail, pixels (sharp on a 2x phone screen at 240 px).
THUMB_SIDE = 480


def thumb_key(object_key: str) -> str:
    """``photos/ab12….jpg`` → ``thumbs/ab12….jpg`` (random like the original's)."""
    name = object_key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"thumbs/{name}.jpg"


def _thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))  # JPEG: decode at reduced scale
        oriented = ImageOps.exif_transpose(image).convert("RGB")
        oriented.thumbnail((THUMB_SIDE, THUMB_SIDE))
        out = io.BytesIO()
        oriented.save(out, format="JPEG", quality=85)
        return out.getvalue()


async def photo_bytes(*, photo_id: int, size: str, store: ObjectStore) -> tuple[bytes, str]:
    """(bytes, media type) of a photo: ``size="full"`` the original, else its thumbnail.

    Raises:
        NotFound: no such photo (or its object is gone, e.g. after retention).
    """
    row = await Photo.select(Photo.object_key, Photo.media_type).where(Photo.id == photo_id).first()
    if row is None:
        raise NotFound(_("photo {photo_id} does not exist", photo_id=photo_id))
    if size == "full":
        return await store.aget(row["object_key"]), row["media_type"]
    key = thumb_key(row["object_key"])
    if await store.aexists(key):
        return await store.aget(key), "image/jpeg"
    original = await store.aget(row["object_key"])
    thumb = await anyio.to_thread.run_sync(_thumbnail, original)
    await store.aput(key, thumb, "image/jpeg")
    return thumb, "image/jpeg"
