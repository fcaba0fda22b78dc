"""Object storage for photos and documents, through the ``minio`` SDK.

Production points it at MinIO; dev and tests at SeaweedFS's S3 gateway
(media.s3server). The bucket is private: clients only ever get presigned GET
URLs with a short expiry (rescue.settings.StorageSettings.presign_seconds).

The SDK is blocking; the ``a*`` methods run it in a worker thread so the event
loop never waits on the network (same pattern as piccolo_api's media storage).

Every call is bounded: the SDK's HTTP pool gets connect and read timeouts of
``S3_TIMEOUT_SECONDS`` and ``S3_RETRIES`` further tries with a short back-off
(the SDK's defaults, 300 s and 5 retries, held an upload for minutes when the
store stopped answering). A store that refuses, does not answer in time or
answers 5xx raises :class:`StorageUnavailable` (the API answers 503 with
``Retry-After``); a key that does not exist raises :class:`ObjectMissing`.

Errors::

    StorageError            the store refused or failed an operation
    ├── StorageUnavailable  unreachable, timed out or 5xx: try again later
    └── ObjectMissing       no object under that key (permanent)
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from rescue.settings import StorageSettings

log = logging.getLogger(__name__)

__all__ = [
    "ObjectMissing",
    "ObjectStore",
    "StorageError",
    "StorageUnavailable",
    "new_object_key",
]

T = TypeVar("T")

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})


class StorageError(RuntimeError):
    """The object store refused or failed an operation."""


class StorageUnavailable(StorageError):
    """The object store is unreachable, did not answer in time, or answered 5xx.

    Transient: the same call may succeed later.
    """


class ObjectMissing(StorageError):
    """No object is stored under the key (permanent for that key)."""


def _bounded(call: Callable[[], T], what: str) -> T:
    """Run one SDK call, turning transport failures into :class:`StorageUnavailable`
    and a missing key into :class:`ObjectMissing`."""
    try:
        return call()
    except S3Error as exc:
        if exc.code in _MISSING_CODES:
            raise ObjectMissing(f"{what}: no such object") from exc
        raise StorageError(f"{what}: {exc.code}") from exc
    except (ServerError, InvalidResponseError) as exc:
        raise StorageUnavailable(f"{what}: the object store answered {exc}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageUnavailable(
            f"{what}: the object store is unreachable or did not answer ({type(exc).__name__})"
        ) from exc


def http_client(settings: StorageSettings) -> urllib3.PoolManager:
    """The SDK's HTTP pool with bounded connect/read timeouts and retries."""
    timeout = settings.timeout_seconds
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        maxsize=10,
        cert_reqs="CERT_REQUIRED" if settings.secure else "CERT_NONE",
        retries=urllib3.Retry(
            total=settings.retries,
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
            allowed_methods=None,  # PUT and DELETE of one key are idempotent
            raise_on_status=False,
        ),
    )


def new_object_key(prefix: str, extension: str) -> str:
    """A random, unguessable key such as ``photos/2f1c…e9.jpg``.

    Keys carry no personal data (no names, no case numbers).
    """
    if not prefix.isidentifier() or not extension.isalnum():
        raise ValueError("prefix must be an identifier and extension alphanumeric")
    return f"{prefix}/{secrets.token_hex(16)}.{extension}"


@dataclass
class ObjectStore:
    """A bucket in an S3-compatible store."""

    client: Minio
    bucket: str
    presign_seconds: int
    #: Signs presigned URLs for the address other PCs use (``S3_PUBLIC_URL``);
    #: None: signed for ``client``'s own endpoint.
    signer: Minio | None = None

    @classmethod
    def from_settings(cls, settings: StorageSettings, endpoint: str) -> ObjectStore:
        client = Minio(
            endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http_client(settings),
        )
        signer = None
        if settings.public_url:
            # Signing is local (the region is given, so no location lookup): the
            # URL names the public host, and S3 checks the signature against the
            # Host header the browser sends to it.
            public = urlsplit(settings.public_url)
            signer = Minio(
                public.netloc,
                access_key=settings.access_key,
                secret_key=settings.secret_key,
                secure=public.scheme == "https",
                region=settings.region,
            )
        return cls(
            client=client,
            bucket=settings.bucket,
            presign_seconds=settings.presign_seconds,
            signer=signer,
        )

    # --- blocking API -----------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (never makes it public)."""

        def ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        _bounded(ensure, f"bucket {self.bucket!r}")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        _bounded(
            lambda: self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            ),
            "put",
        )

    def put_file(self, key: str, fh: IO[bytes], content_type: str) -> int:
        """Store the whole of the open, seekable binary file ``fh`` (read from its
        start) under ``key``, streamed: the SDK reads it one part at a time (a
        multipart upload in parts of 5 MiB, one at a time, above that size), so
        memory does not grow with the file. Returns the bytes stored."""

        def put() -> int:
            length = fh.seek(0, io.SEEK_END)
            fh.seek(0)
            self.client.put_object(
                self.bucket,
                key,
                fh,  # type: ignore[arg-type]  # any object with read()
                length,
                content_type=content_type,
                num_parallel_uploads=1,
            )
            return length

        return _bounded(put, "put")

    def get(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return _bounded(read, "get")

    def get_into(self, key: str, fh: IO[bytes], chunk: int = 1 << 20) -> int:
        """Copy the object into the open binary file ``fh`` ``chunk`` bytes at a time
        (never the whole object in memory); returns the bytes written."""

        def copy() -> int:
            response = self.client.get_object(self.bucket, key)
            written = 0
            try:
                for part in response.stream(chunk):
                    fh.write(part)
                    written += len(part)
            finally:
                response.close()
                response.release_conn()
            return written

        return _bounded(copy, "get")

    def remove(self, key: str) -> None:
        """Remove ``key``; removing a key that does not exist is not an error."""
        _bounded(lambda: self.client.remove_object(self.bucket, key), "remove")

    def exists(self, key: str) -> bool:
        try:
            _bounded(lambda: self.client.stat_object(self.bucket, key), "stat")
        except ObjectMissing:
            return False
        return True

    def keys_older_than(self, prefix: str, before: datetime) -> Iterator[str]:
        """Keys under ``prefix/`` last modified before ``before`` (aware UTC)."""
        yield from self._keys(prefix, before)

    def keys_under(self, prefix: str) -> list[str]:
        """Every key under ``prefix/``, whatever its age."""
        return self._keys(prefix, None)

    def _keys(self, prefix: str, before: datetime | None) -> list[str]:
        """Keys under ``prefix/`` (last modified before ``before``, unless None)."""

        def listing() -> list[str]:
            return [
                str(obj.object_name)
                for obj in self.client.list_objects(
                    self.bucket, prefix=f"{prefix}/", recursive=True
                )
                if obj.object_name
                and (
                    before is None or (obj.last_modified is not None and obj.last_modified < before)
                )
            ]

        return _bounded(listing, "list")

    def presigned_url(self, key: str, seconds: int | None = None) -> str:
        """A GET URL valid for ``seconds`` (at most the configured lifetime)."""
        ttl = min(seconds or self.presign_seconds, self.presign_seconds)
        return (self.signer or self.client).presigned_get_object(
            self.bucket, key, expires=timedelta(seconds=ttl)
        )

    # --- async wrappers ---------------------------------------------------------
    async def aput(self, key: str, data: bytes, content_type: str) -> None:
        await anyio.to_thread.run_sync(self.put, key, data, content_type)

    async def aput_file(self, key: str, fh: IO[bytes], content_type: str) -> int:
        return await anyio.to_thread.run_sync(self.put_file, key, fh, content_type)

    async def aget(self, key: str) -> bytes:
        return await anyio.to_thread.run_sync(self.get, key)

    async def aget_into(self, key: str, fh: IO[bytes]) -> int:
        return await anyio.to_thread.run_sync(self.get_into, key, fh)

    async def aremove(self, key: str) -> None:
        await anyio.to_thread.run_sync(self.remove, key)

    async def adiscard(self, key: str) -> None:
        """Remove an object no row refers to (a write rolled back or refused); if the
        store fails now, leave it: the recovery sweep (rescue.recovery) removes
        unreferenced objects past ``ORPHAN_GRACE_SECONDS``. Never raises StorageError."""
        try:
            await self.aremove(key)
        except StorageError as exc:
            log.warning("could not remove an unrecorded object now (%s); the sweep will", exc)

    async def apresigned_url(self, key: str) -> str:
        """:meth:`presigned_url` off the event loop (signing is local, but the SDK
        may look up the bucket's region over the network)."""
        return await anyio.to_thread.run_sync(self.presigned_url, key)

    async def aexists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self.exists, key)

    async def akeys_older_than(self, prefix: str, before: datetime) -> list[str]:
        return await anyio.to_thread.run_sync(lambda: list(self.keys_older_than(prefix, before)))

    async def akeys_under(self, prefix: str) -> list[str]:
        return await anyio.to_thread.run_sync(self.keys_under, prefix)
