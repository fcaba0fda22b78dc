"""Object storage for photos and documents, through the ``minio`` SDK.

Production points it at MinIO; dev and tests at SeaweedFS's S3 gateway
(media.s3server). The bucket is private: clients only ever get presigned GET
URLs with a short expiry (rescue.settings.StorageSettings.presign_seconds).

The SDK is blocking; the ``a*`` methods run it in a worker thread so the event
loop never waits on the network (same pattern as piccolo_api's media storage).
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import anyio.to_thread
from minio import Minio
from minio.error import S3Error

from rescue.settings import StorageSettings

__all__ = ["ObjectStore", "StorageError", "new_object_key"]


class StorageError(RuntimeError):
    """The object store refused or failed an operation."""


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
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except S3Error as exc:  # pragma: no cover - depends on server state
            raise StorageError(f"cannot use bucket {self.bucket!r}: {exc}") from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )

    def get(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def remove(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def exists(self, key: str) -> bool:
        try:
            self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "NotFound"}:
                return False
            raise
        return True

    def presigned_url(self, key: str, seconds: int | None = None) -> str:
        """A GET URL valid for ``seconds`` (at most the configured lifetime)."""
        ttl = min(seconds or self.presign_seconds, self.presign_seconds)
        return (self.signer or self.client).presigned_get_object(
            self.bucket, key, expires=timedelta(seconds=ttl)
        )

    # --- async wrappers ---------------------------------------------------------
    async def aput(self, key: str, data: bytes, content_type: str) -> None:
        await anyio.to_thread.run_sync(self.put, key, data, content_type)

    async def aget(self, key: str) -> bytes:
        return await anyio.to_thread.run_sync(self.get, key)

    async def aremove(self, key: str) -> None:
        await anyio.to_thread.run_sync(self.remove, key)

    async def apresigned_url(self, key: str) -> str:
        """:meth:`presigned_url` off the event loop (signing is local, but the SDK
        may look up the bucket's region over the network)."""
        return await anyio.to_thread.run_sync(self.presigned_url, key)

    async def aexists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self.exists, key)
