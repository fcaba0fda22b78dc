"""Service settings, read once from environment variables.

Every tunable of the service lives here and nowhere else. Values come from the
environment (see README "Settings"); defaults give the embedded single-machine
set-up (`make run`): a SQLite file and a local S3 server under ``DATA_DIR``,
and Dramatiq actors running in-process.

Production sets ``DATABASE_URL`` (PostgreSQL), ``S3_ENDPOINT``/``S3_ACCESS_KEY``/
``S3_SECRET_KEY`` (MinIO) and ``REDIS_URL`` (Dramatiq broker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["Settings", "SettingsError", "get_settings"]


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class DatabaseSettings:
    """``DATABASE_URL``: ``sqlite:///path/to/file.db`` or ``postgresql://user@host:port/db``.

    ``DB_POOL_MAX``: PostgreSQL connection-pool size of the API process (0: no pool,
    one connection per query).
    """

    url: str
    pool_max_size: int = 10

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def sqlite_path(self) -> str:
        return self.url.split("sqlite:///", 1)[1]


@dataclass(frozen=True)
class StorageSettings:
    """Object store (MinIO in production, SeaweedFS S3 in dev and tests)."""

    endpoint: str | None  # host:port; None means "start the embedded S3 server"
    access_key: str
    secret_key: str
    bucket: str
    secure: bool
    region: str
    embedded_port: int
    #: Lifetime of presigned photo URLs, seconds. PIPL art. 28-29: face photos are
    #: sensitive personal information, so links must be short-lived.
    presign_seconds: int = 300


@dataclass(frozen=True)
class MatchingSettings:
    #: Euclidean distance between 128-d dlib encodings under which a (case, notice)
    #: pair becomes a candidate. 0.53 is the largest 0.01 step with a false-accept
    #: rate ≤ 0.1 % per pair on LFW impostor pairs (docs/accuracy.md, `make accuracy`:
    #: 0.09 % per pair, 88.5 % true accepts, ~9 false candidates per search of 10,000
    #: notices). face_recognition's customary 0.6 measured 0.73 % false accepts per
    #: pair (~73 false candidates per search of 10,000 notices) for 98.1 % true accepts.
    threshold: float = 0.53
    #: Longest image side (px) on which faces are *detected*; encodings are always
    #: computed on the full-resolution original. Measured in bench/embedding.py
    #: (docs/performance.md): on a 4000×3000 photo, 1600 finds faces down to 80 px
    #: wide at ~4-6× the speed of full-resolution detection; 1280 reaches ~8× but
    #: loses faces of 80-100 px, which still match well (LFW faces in
    #: ../shared/faces are ~62 px wide and identify at rank-1 95 %). On every photo of
    #: ../shared/faces, 1600 finds the same faces as full resolution.
    detect_max_side: int = 1600
    #: HOG upsampling passes for detection (face_recognition's default is 1).
    detect_upsample: int = 1


@dataclass(frozen=True)
class UploadSettings:
    #: Largest accepted upload, bytes (default 20 MB).
    max_bytes: int = 20 * 1024 * 1024
    #: Largest accepted decoded image, pixels (default 50 MP); guards against
    #: decompression bombs.
    max_pixels: int = 50_000_000


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database: DatabaseSettings
    storage: StorageSettings
    matching: MatchingSettings
    upload: UploadSettings
    #: ``redis://host:port/db``; unset means the in-process broker (embedded mode).
    redis_url: str | None
    #: Redis key namespace for Dramatiq queues (lets test runs share one Redis).
    broker_namespace: str
    #: Run Dramatiq actors inside the API process (embedded mode).
    inprocess_worker: bool
    host: str
    port: int
    token_ttl_days: int
    debug: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def load_settings() -> Settings:
    """Build :class:`Settings` from the current environment.

    Raises:
        SettingsError: a variable is malformed.
    """
    data_dir = Path(_env("DATA_DIR", "./var") or "./var").resolve()
    db_url = _env("DATABASE_URL") or f"sqlite:///{data_dir / 'rescue.db'}"
    if not (db_url.startswith("sqlite:///") or db_url.startswith("postgres")):
        raise SettingsError(
            f"DATABASE_URL must start with sqlite:/// or postgresql://, got {db_url!r}"
        )
    redis_url = _env("REDIS_URL")
    return Settings(
        data_dir=data_dir,
        database=DatabaseSettings(url=db_url, pool_max_size=_int("DB_POOL_MAX", 10)),
        storage=StorageSettings(
            endpoint=_env("S3_ENDPOINT"),
            access_key=_env("S3_ACCESS_KEY", "rescue-dev") or "",
            secret_key=_env("S3_SECRET_KEY", "rescue-dev-secret-change-me") or "",
            bucket=_env("S3_BUCKET", "rescue-photos") or "rescue-photos",
            secure=_bool("S3_SECURE", False),
            region=_env("S3_REGION", "us-east-1") or "us-east-1",
            embedded_port=_int("S3_EMBEDDED_PORT", 8333),
            presign_seconds=min(_int("PHOTO_URL_TTL_SECONDS", 300), 300),
        ),
        matching=MatchingSettings(
            threshold=_float("MATCH_THRESHOLD", MatchingSettings.threshold),
            detect_max_side=_int("DETECT_MAX_SIDE", 1600),
            detect_upsample=_int("DETECT_UPSAMPLE", 1),
        ),
        upload=UploadSettings(
            max_bytes=_int("UPLOAD_MAX_BYTES", 20 * 1024 * 1024),
            max_pixels=_int("UPLOAD_MAX_PIXELS", 50_000_000),
        ),
        redis_url=redis_url,
        broker_namespace=_env("BROKER_NAMESPACE", "rescue") or "rescue",
        inprocess_worker=_bool("INPROCESS_WORKER", redis_url is None),
        host=_env("HOST", "127.0.0.1") or "127.0.0.1",
        port=_int("PORT", 8000),
        token_ttl_days=_int("TOKEN_TTL_DAYS", 90),
        debug=_bool("DEBUG", False),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return load_settings()
