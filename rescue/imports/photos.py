"""Photos of an external list's rows: a ZIP uploaded with the list, or URLs into
this service's own object store; checked like every upload, then compared by face.

The list's 照片 (``photo``) column holds, per row, either

- the name of a file in the ZIP uploaded with the list (``张三.jpg`` or a path
  inside the ZIP, ``photos/张三.jpg``; a bare name also matches a file of that name
  in a ZIP folder), or
- a URL of an object in this service's bucket: ``s3://<bucket>/<key>`` or
  ``http(s)://<host>/<bucket>/<key>`` where host is ``S3_ENDPOINT`` or
  ``S3_PUBLIC_URL`` (a presigned link copied from a page works: its query is
  ignored). Any other host or bucket is refused. The URL is never fetched: the
  key is read through the service's own object-store client, so a list cannot
  make the service call an address of its choosing (no SSRF).

Each photo goes through the same checks as an uploaded photo
(:func:`media.images.inspect_image`: a whole image of an accepted format, at most
``UPLOAD_MAX_BYTES`` and ``UPLOAD_MAX_PIXELS``); a row whose photo fails is a
problem of that row (column 照片) and is left out. During the run the faces are
encoded like a photo's (:func:`rescue.matching.embedding.detect_and_encode`) and
searched in the same galleries with the same threshold as the matcher
(``MATCH_THRESHOLD``; :mod:`rescue.matching.gallery`).
"""

from __future__ import annotations

import posixpath
import zipfile
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from media.images import ImageRejected, inspect_image
from media.storage import ObjectMissing, ObjectStore
from rescue.i18n import _
from rescue.settings import StorageSettings, UploadSettings

__all__ = ["PhotoProblem", "PhotoSource", "object_key_of", "photos_key"]


class PhotoProblem(ValueError):
    """A row's photo cannot be used; ``reason`` says why (active locale)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def photos_key(run_object_key: str) -> str:
    """Object key of the ZIP uploaded with the list stored at ``run_object_key``."""
    return f"{run_object_key}.photos.zip"


def _hosts(storage: StorageSettings) -> set[str]:
    hosts = set()
    for raw in (storage.endpoint, storage.public_url):
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"//{raw}")
        if parts.netloc:
            hosts.add(parts.netloc.lower())
    return hosts


def object_key_of(url: str, storage: StorageSettings) -> str:
    """The key in this service's bucket that ``url`` points at.

    Raises:
        PhotoProblem: another host, another bucket, no key, or a key leaving the
            bucket's folders (``..``).
    """
    parts = urlsplit(url.strip())
    if parts.scheme == "s3":
        bucket, key = parts.netloc, parts.path.lstrip("/")
    elif parts.scheme in {"http", "https"}:
        if parts.netloc.lower() not in _hosts(storage) or parts.username or parts.password:
            raise PhotoProblem(
                _(
                    "photos are taken only from this service's object store, not from {host}",
                    host=parts.hostname or url[:100],
                )
            )
        bucket, _sep, key = parts.path.lstrip("/").partition("/")
    else:
        raise PhotoProblem(_("not a file name in the ZIP nor a URL of this service's object store"))
    key = unquote(key)
    if bucket != storage.bucket:
        raise PhotoProblem(
            _("photos are taken only from this service's bucket, not {bucket}", bucket=bucket[:100])
        )
    if not key or posixpath.normpath(key) != key or key.startswith(("/", "..")):
        raise PhotoProblem(_("the URL names no photo in the object store"))
    return key


def _is_url(value: str) -> bool:
    return "://" in value


class PhotoSource:
    """Where a list's photos come from: its ZIP (an open seekable file, or None)
    and this service's bucket. :meth:`read` returns checked bytes."""

    def __init__(
        self,
        zip_file: IO[bytes] | None,
        *,
        store: ObjectStore,
        storage: StorageSettings,
        limits: UploadSettings,
    ) -> None:
        self.store = store
        self.storage = storage
        self.limits = limits
        self.zip: zipfile.ZipFile | None = None
        self.members: dict[str, zipfile.ZipInfo] = {}
        if zip_file is not None:
            try:
                self.zip = zipfile.ZipFile(zip_file)
            except zipfile.BadZipFile as exc:
                raise PhotoProblem(_("the photos file is not a readable ZIP")) from exc
            for info in self.zip.infolist():
                if info.is_dir():
                    continue
                self.members.setdefault(info.filename, info)
                self.members.setdefault(posixpath.basename(info.filename), info)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    async def read(self, value: str) -> bytes:
        """The checked bytes of the photo a row names.

        Raises:
            PhotoProblem: not found, too large, or not an acceptable image.
        """
        if _is_url(value):
            key = object_key_of(value, self.storage)
            try:
                data = await self.store.aget(key)
            except ObjectMissing as exc:
                raise PhotoProblem(
                    _("no photo at {url} in the object store", url=value[:200])
                ) from exc
        else:
            info = self.members.get(value) or self.members.get(posixpath.basename(value))
            if self.zip is None or info is None:
                raise PhotoProblem(_("{name} is not in the photos ZIP", name=value[:200]))
            if info.file_size > self.limits.max_bytes:
                raise PhotoProblem(
                    _(
                        "the photo is {size} bytes; the limit is {limit}",
                        size=info.file_size,
                        limit=self.limits.max_bytes,
                    )
                )
            with self.zip.open(info) as fh:
                data = fh.read(self.limits.max_bytes + 1)
        if len(data) > self.limits.max_bytes:
            raise PhotoProblem(
                _(
                    "the photo is {size} bytes; the limit is {limit}",
                    size=len(data),
                    limit=self.limits.max_bytes,
                )
            )
        try:
            inspect_image(data, max_pixels=self.limits.max_pixels)
        except ImageRejected as exc:
            raise PhotoProblem(_("the photo cannot be used: {detail}", detail=exc.detail)) from exc
        return data


def encode_faces(data: bytes, settings: Any) -> list[Any]:
    """Face encodings of a checked photo, as the worker computes a photo's
    (same decoding, detector options and model)."""
    import numpy as np

    from media.images import decode_for_detection
    from rescue.matching.embedding import detect_and_encode

    matching = settings.matching
    decoded = decode_for_detection(
        data, max_pixels=settings.upload.max_pixels, min_side=matching.detect_max_side
    )
    found = detect_and_encode(
        decoded, detect_max_side=matching.detect_max_side, upsample=matching.detect_upsample
    )
    return [np.asarray(f.encoding, dtype=np.float64) for f in found]
