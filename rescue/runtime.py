"""Process-wide singletons: the object store and the matching galleries."""

from __future__ import annotations

from functools import lru_cache

from media.storage import ObjectStore
from rescue.matching.services import GallerySet
from rescue.settings import SettingsError, get_settings

__all__ = ["get_galleries", "get_store"]


@lru_cache(maxsize=1)
def get_store() -> ObjectStore:
    """The photo bucket. ``S3_ENDPOINT`` must be set (``rescue serve`` sets it for
    the embedded server)."""
    settings = get_settings().storage
    if not settings.endpoint:
        raise SettingsError(
            "S3_ENDPOINT is not set: point it at MinIO (host:port), or start the "
            "service with `rescue serve`, which runs an embedded S3 server"
        )
    store = ObjectStore.from_settings(settings, settings.endpoint)
    store.ensure_bucket()
    return store


@lru_cache(maxsize=1)
def get_galleries() -> GallerySet:
    """This process's in-memory face galleries (refreshed incrementally per job)."""
    return GallerySet()
