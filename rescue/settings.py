"""Service settings, read once from environment variables.

Every tunable of the service lives here and nowhere else. Values come from the
environment (see README "Settings"); defaults give the embedded single-machine
set-up (`make run`): a SQLite file and a local S3 server under ``DATA_DIR``,
and Dramatiq actors running in-process.

Production sets ``DATABASE_URL`` (PostgreSQL), ``S3_ENDPOINT``/``S3_ACCESS_KEY``/
``S3_SECRET_KEY`` (MinIO) and ``REDIS_URL`` (Dramatiq broker).
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["LOCALES", "OpsSettings", "Settings", "SettingsError", "get_settings", "redact_url"]


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed.

    Its text is one line for the operator: the variable, what was wrong and an
    example of a good value; it never repeats a secret (``rescue.doctor``).
    """


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "<unparsable URL>"


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
        raise SettingsError(
            f"{name} must be a whole number, got {raw!r}; for example {name}={default}"
        ) from exc


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(
            f"{name} must be a number, got {raw!r}; for example {name}={default}"
        ) from exc


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(
        f"{name} must be true or false, got {raw!r}; for example {name}={str(default).lower()}"
    )


@dataclass(frozen=True)
class DatabaseSettings:
    """``DATABASE_URL``: ``sqlite:///path/to/file.db`` or ``postgresql://user@host:port/db``.

    ``DB_POOL_MAX``: PostgreSQL connection-pool size of the API process (0: no pool,
    one connection per query).

    ``WORKER_DB_POOL_MAX`` (default 4): the same for each ``dramatiq`` worker
    process (workers.lifecycle.DatabasePool; its async jobs share one event loop,
    so a few connections serve every thread). Without a pool every query opened a
    new PostgreSQL connection: a photo job opened ~100, and the connections
    alone made the worker step 2.3x its detection + encoding time (bench.worker_step).

    ``READ_CACHE`` (default true): each API process keeps the callers of recent
    tokens and recent notice reads in memory, dropped the moment PostgreSQL
    reports a committed write to the tables they came from (``rescue.changes``).
    Off on SQLite (no change notifications), and off while the notification
    connection is down. ``READ_CACHE_ENTRIES``: most responses kept per process.

    ``SQLITE_BUSY_TIMEOUT_SECONDS`` (default 15): on SQLite, how long a write
    waits for another writer to finish before the request is answered 503
    (rescue.db.StationSQLiteEngine).
    """

    url: str
    pool_max_size: int = 10
    worker_pool_max_size: int = 4
    read_cache: bool = True
    read_cache_entries: int = 10_000
    sqlite_busy_timeout: float = 15.0

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
    #: ``S3_PUBLIC_URL``: the object store's address as other PCs reach it (e.g.
    #: ``http://192.168.1.20:8333``); presigned URLs are signed for it. None: the
    #: address the service itself uses (fine when browser and server are one PC).
    public_url: str | None = None
    #: ``S3_EMBEDDED_HOST``: where the embedded S3 server listens (default
    #: loopback; ``0.0.0.0`` lets other PCs open photo links).
    embedded_host: str = "127.0.0.1"
    #: ``S3_TIMEOUT_SECONDS``: bound on connecting to, and on each wait for bytes
    #: from, the object store (urllib3 connect and read timeouts). The SDK's own
    #: default is 300 s, so a store that stops answering held an upload for
    #: minutes.
    timeout_seconds: float = 10.0
    #: ``S3_RETRIES``: further tries of a call that failed to connect or got a 5xx
    #: (0.2 s, 0.4 s … back-off). A call therefore gives up after at most about
    #: ``(S3_RETRIES + 1) × 2 × S3_TIMEOUT_SECONDS`` (media/storage.py).
    retries: int = 1


@dataclass(frozen=True)
class MatchingSettings:
    #: Euclidean distance between 128-d dlib encodings under which a (case, notice)
    #: pair becomes a candidate. 0.53 is the largest 0.01 step with a false-accept
    #: rate ≤ 0.1 % per pair on LFW impostor pairs (docs/accuracy.md, `make accuracy`:
    #: 0.09 % per pair, 88.5 % true accepts, ~9 false candidates per search of 10,000
    #: notices). face_recognition's customary 0.6 measured 0.73 % false accepts per
    #: pair (~73 false candidates per search of 10,000 notices) for 98.1 % true accepts.
    threshold: float = 0.53
    #: Longest image side (px) on which faces are *detected*; each face is then
    #: encoded at a resolution where its 150 px chip loses nothing. Measured in
    #: bench/embedding.py (docs/performance.md): at 1280 a 12 MP photo is processed
    #: ≥ 8× faster than full-resolution face_recognition, with the same faces on
    #: every photo of ../shared/faces; faces narrower than ~1/32 of the photo's
    #: longest side (~100 px in a 4000×3000 photo) are not found, unless the photo
    #: has no larger face (then detection is retried at twice this side). 1600
    #: finds faces from 80 px at ~6-7×. Raise it where group photos are common.
    detect_max_side: int = 1280
    #: HOG upsampling passes for detection (face_recognition's default is 1).
    detect_upsample: int = 1
    #: ``MATCH_CANDIDATES``: at most this many candidates on the other side per new
    #: photo (its owner's faces searched as one identity), the best by the full score.
    #: On LFW the true person is in the top 5 by distance for 97-99 % of enrolled
    #: probes (docs/accuracy.md), while a fixed threshold gives dozens of false
    #: candidates per search at national gallery sizes (issue 16).
    candidates: int = 5
    #: ``MATCH_LOOSE_BOUND``: the face distance within which candidates are looked
    #: for at all; unset: the loose bound of the model's calibration (genuine 99th
    #: percentile: 0.62 on LFW; rescue calibrate writes a deployment's own).
    loose_bound: float | None = None
    #: ``MATCH_FILTER_SEX``: drop pairs whose recorded sexes differ before ranking
    #: (a sure difference; docs/scoring.md). false: keep them, flagged.
    filter_sex: bool = True


@dataclass(frozen=True)
class RecoverySettings:
    """What bounds recovery from a failed broker, worker or object store
    (README "What bounds recovery"; rescue/recovery.py).

    - ``BROKER_TIMEOUT_SECONDS``: bound on each Redis call of the API (connect
      and reply); past it the upload answers with ``queue: "deferred"``.
    - ``RECOVERY_SWEEP_SECONDS``: how often the scheduler sends the recovery sweep.
    - ``PHOTO_REQUEUE_AFTER_SECONDS``: a photo ``pending`` this long since it was
      last queued is queued again by the sweep (lost messages, dead workers).
    - ``ORPHAN_GRACE_SECONDS``: an object under ``photos/`` that no photo row
      refers to is removed once it is this old (an upload in flight is younger).
    - ``PHOTO_MAX_ATTEMPTS``: processing started this many times without an
      answer, or failing with an unexpected error, ends ``failed``.
    - ``WORKER_HEARTBEAT_TIMEOUT_SECONDS``: a worker silent this long is dead and
      its unfinished messages go back to the queue at the next maintenance pass.
    - ``BROKER_MAINTENANCE_PER_MILLION``: the chance, per million broker
      commands, that a command runs that maintenance pass (Dramatiq's default is
      1 000: one pass every ~2 minutes for one idle worker; 20 000 makes it a few
      seconds).
    - ``RETRY_AFTER_SECONDS``: the ``Retry-After`` of a 503.
    """

    broker_timeout_seconds: float = 5.0
    sweep_seconds: int = 60
    requeue_after_seconds: int = 300
    orphan_grace_seconds: int = 900
    max_attempts: int = 5
    heartbeat_timeout_seconds: int = 15
    maintenance_per_million: int = 20_000
    retry_after_seconds: int = 30


@dataclass(frozen=True)
class ReviewSettings:
    #: ``REQUIRE_SECOND_REVIEWER``: confirming a candidate needs confirmations by two
    #: different reviewers (four-eyes principle); default false.
    require_second_reviewer: bool = False


@dataclass(frozen=True)
class UploadSettings:
    #: Largest accepted upload, bytes (default 20 MB).
    max_bytes: int = 20 * 1024 * 1024
    #: Largest accepted decoded image, pixels (default 50 MP); guards against
    #: decompression bombs.
    max_pixels: int = 50_000_000
    #: ``IMPORT_MAX_BYTES``: largest list file or photos ZIP of an import run
    #: (default 4 GiB: 20,000 photos of ~200 KB are ~4 GB). Only the import-run
    #: routes accept a body this large; it is spooled to a temporary file on disk,
    #: never held in memory.
    import_max_bytes: int = 4 * 1024**3
    #: ``IMPORT_CHUNK_ROWS``: rows of an import run per worker job (chunk); the
    #: chunks of one list are shared by the worker processes (default 1,000:
    #: docs/performance.md, issue 13).
    import_chunk_rows: int = 1000
    #: ``IMPORT_LEASE_SECONDS``: how long a worker job's claim of an import chunk
    #: holds after its last commit (default 900 s). The job renews it once it
    #: has the list and its photos and at every commit of 100 rows (~30 s when
    #: each row has a photo: 298 ms per photo row at 100,000 open notices,
    #: docs/performance.md), so a job that is alive renews it long before it
    #: ends; a ``running`` chunk past it is taken to be abandoned (its worker was
    #: killed) and the next start/resume queues it again.
    import_lease_seconds: int = 900
    #: ``IMPORT_TEMP_IDLE_SECONDS``: a worker process's private temporary copies of
    #: an import run's list file and photos ZIP (fetched once per process for the
    #: run's chunks) are removed once no chunk of that process has used them for
    #: this long (default 3600 s; 0: at the next sweep after their last use).
    #: Each worker process sweeps its copies every 60 s
    #: (``workers.lifecycle.TEMP_SWEEP_SECONDS``), so they outlive their last use
    #: by at most this plus 60 s; copies of a run that is done, or purged by the
    #: retention run, go at the next sweep whatever this is. An hour lets a failed
    #: run resumed soon reuse the copies (a full-size photos ZIP is gigabytes and
    #: takes minutes to fetch); resumed later, they are fetched again. The copies
    #: hold other departments' personal data (PIPL arts. 28-29; docs/privacy.md,
    #: "Retention").
    import_temp_idle_seconds: int = 3600


@dataclass(frozen=True)
class AuthSettings:
    """Password login and its backoff (README "Roles and login")."""

    #: Lifetime of tokens issued by ``POST /auth/login``, hours (default 12: one shift).
    login_token_ttl_hours: int = 12
    #: Failed logins per username or per client address before backoff starts.
    login_free_attempts: int = 5
    #: Backoff after the free attempts: 2^(n - free) seconds, capped at this (seconds).
    #: OWASP Authentication Cheat Sheet, "Login Throttling".
    login_max_delay_seconds: int = 900


@dataclass(frozen=True)
class WebSettings:
    """The station workbench (pages): sessions, cookies, browser assets (rescue.web).

    ``SESSION_IDLE_SECONDS`` (default 7200: two hours): a page session ends after
    this long without a request; the next page asks for the password again and
    returns to where the user was. ``SECURE_COOKIES`` (default false): mark the
    session and CSRF cookies ``Secure``; set it true whenever the service is
    reached over HTTPS. ``SECRET_KEY``: signs the CSRF tokens; every API process
    of one station must share it (unset: one is created in ``DATA_DIR/secret_key``).
    ``WEB_ASSETS_DIR``: where ``make install`` put the npm packages (htmx,
    swagger-ui); default ``node_modules`` of this checkout.
    """

    session_idle_seconds: int = 7200
    secure_cookies: bool = False
    secret_key: str | None = None
    assets_dir: Path | None = None


def _station_days(raw: str | None, name: str = "PHOTO_RETENTION_DAYS_BY_STATION") -> dict[str, int]:
    result: dict[str, int] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        name, sep, days = part.partition("=")
        if not sep or not days.strip().isdigit():
            raise SettingsError(f"{name} must look like 'north=365,south=180', got {raw!r}")
        result[name.strip()] = int(days)
    return result


def _regions(raw: str | None) -> tuple[tuple[str, str], ...]:
    result: list[tuple[str, str]] = []
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        region, sep, station = part.partition("=")
        if not sep or not region.strip() or not station.strip():
            raise SettingsError(
                f"PUBLIC_REGIONS must look like '海淀区=north,丰台区=south', got {raw!r}"
            )
        result.append((region.strip(), station.strip()))
    return tuple(result)


def _networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = _env(name) or ""
    result = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            result.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise SettingsError(
                f"{name} must be a comma-separated list of addresses or CIDR networks, "
                f"e.g. '127.0.0.1,10.0.0.0/8,::1'; {part.strip()!r} is neither"
            ) from None
    return tuple(result)


@dataclass(frozen=True)
class PublicSettings:
    """The public door (rescue.family_requests): online search requests from families.

    ``PUBLIC_REGIONS`` (``海淀区=north,丰台区=south``): the districts a family
    picks from as "where last seen", each with the station responsible for it;
    a request for a district not listed (or with none set) goes to the shared
    queue every station's staff see. Rate limits (per client address and per
    contact, counted in the database so they hold across API processes):
    ``REQUEST_LIMIT_PER_ADDRESS`` submissions per address per day (default 5),
    ``REQUEST_LIMIT_PER_CONTACT`` per contact per day (default 3),
    ``STATUS_LOOKUPS_PER_HOUR`` tracking-code lookups per address per hour
    (default 20; an 80-bit code cannot be guessed, the limit stops scripted tries).

    ``TRUSTED_PROXIES`` (``127.0.0.1,10.0.0.0/8``; default empty): the reverse
    proxies in front of the app. The client address the per-address limits count
    is the socket peer, unless that peer is one of these: then it is the
    right-most address of ``X-Forwarded-For`` that is not a trusted proxy
    (rescue.clients.client_address). Empty: ``X-Forwarded-For``
    is ignored, since any client can write it.
    """

    regions: tuple[tuple[str, str], ...] = ()
    limit_per_address: int = 5
    limit_per_contact: int = 3
    lookups_per_hour: int = 20
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True)
class StationInfo:
    """How a station is named to people (handover sheet, poster, public pages)."""

    name: str
    contact: str = ""
    #: False when no name is configured: ``name`` is then the station's code.
    named: bool = True


@dataclass(frozen=True)
class SiteSettings:
    """How the service presents itself beyond the staff's own screen.

    ``PUBLIC_BASE_URL``: the address families reach the public pages at
    (``https://xunqin.example.gov.cn``); the poster's QR code and printed link use
    it. Unset: the address of the staff browser's request, and the print page
    warns that the QR code then carries that (local) address.
    ``STATION_NAMES``: JSON, station code → name or ``{"name", "contact"}``, e.g.
    ``{"north": {"name": "北区救助管理站", "contact": "010-12345678"}}``; a station
    not listed is shown by its code.
    """

    public_base_url: str | None = None
    stations: dict[str, StationInfo] = field(default_factory=dict)

    def station(self, code: str) -> StationInfo:
        """The station ``code`` as shown to people (its code if not configured)."""
        return self.stations.get(code) or StationInfo(name=code, named=False)


def _base_url(name: str) -> str | None:
    from urllib.parse import urlsplit

    raw = _env(name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SettingsError(
            f"{name} must be the address families open the public pages at, "
            f"got {raw!r}; for example {name}=https://xunqin.example.gov.cn"
        )
    return raw.rstrip("/")


def _stations(name: str) -> dict[str, StationInfo]:
    raw = _env(name)
    if raw is None:
        return {}
    example = f'{name}={{"north": {{"name": "北区救助管理站", "contact": "010-12345678"}}}}'
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SettingsError(f"{name} must be a JSON object, got {raw!r}; for example {example}")
    out: dict[str, StationInfo] = {}
    for code, value in data.items():
        if isinstance(value, str):
            value = {"name": value}
        if not (
            isinstance(value, dict)
            and isinstance(value.get("name"), str)
            and value["name"].strip()
            and isinstance(value.get("contact", ""), str)
        ):
            raise SettingsError(
                f"{name}: station {code!r} needs a name (and may have a contact); "
                f"for example {example}"
            )
        out[str(code)] = StationInfo(
            name=value["name"].strip(), contact=str(value.get("contact", "")).strip()
        )
    return out


@dataclass(frozen=True)
class RetentionSettings:
    """How long data of a closed case is kept (docs/privacy.md; PIPL art. 19, 47)."""

    #: Days after a case closes (terminal status) before its face encodings are deleted.
    face_days: int = 30
    #: Days after a case closes before its photos are deleted; 0 keeps them.
    photo_days: int = 0
    #: Per-station override of ``photo_days`` (``PHOTO_RETENTION_DAYS_BY_STATION``).
    photo_days_by_station: dict[str, int] = field(default_factory=dict)
    #: Days after an online search request was closed (rejected, or closed as
    #: stale) before its photos, contact and details are deleted
    #: (``FAMILY_REQUEST_RETENTION_DAYS``); the same 30 days as ``face_days``:
    #: time for the family to read the reason and to object (PIPL art. 47 (1):
    #: delete once the purpose cannot be achieved).
    request_days: int = 30
    #: Days a request may wait for the family's further information before the
    #: retention run closes it (``FAMILY_REQUEST_STALE_DAYS``); a station policy,
    #: no regulation sets it: 90 days, three months without an answer.
    request_stale_days: int = 90
    #: Days an import run of an external list (or a backlog run) may stay
    #: without activity (finished, failed, stopped, or checked and never
    #: started) before its list file, photos ZIP, kept row photos and row
    #: records are deleted (``IMPORT_RETENTION_DAYS``; rescue.retention).
    #: 30 days: departments send their lists monthly, so a month covers
    #: resuming a stopped run, answering the sending department's questions
    #: about a row and exporting the warnings; rows of warnings still open are
    #: kept until verified whatever the period (PIPL art. 19 and 47 (1): kept
    #: no longer than the comparison needs).
    import_days: int = 30

    def photo_days_for(self, station: str) -> int:
        return self.photo_days_by_station.get(station, self.photo_days)


@dataclass(frozen=True)
class CustodySettings:
    """Who may leave only into custody (rescue.cases.flows.custody_only).

    ``CUSTODY_AGE`` (default 18): a person possibly younger leaves only into
    custody. Source: 《中华人民共和国未成年人保护法》(2020) art. 2, minors are
    citizens under 18 (未满十八周岁). ``CUSTODY_AGE_BY_STATION`` changes it per
    jurisdiction (``north=16,south=18``) where local rules say otherwise.
    """

    age: int = 18
    age_by_station: dict[str, int] = field(default_factory=dict)

    def age_for(self, station: str) -> int:
        return self.age_by_station.get(station, self.age)


@dataclass(frozen=True)
class DeadlineSettings:
    """``DEADLINE_OVERRIDES``: per-jurisdiction changes to the deadline rule table
    (rescue.alerts.rules.DEFAULT_RULES), as JSON keyed by station then rule kind,
    each value ``"<amount> <unit>"`` with unit hours, days, working_days or months::

        {"north": {"dna_request": "5 working_days", "announcement_update": "14 days"}}

    A station not listed uses the national defaults.
    """

    overrides: dict[str, dict[str, str]] = field(default_factory=dict)


def _json_overrides(name: str) -> dict[str, dict[str, str]]:
    import json

    raw = _env(name)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(
            f"{name} must be JSON, got {raw!r}; for example "
            f'{name}=\'{{"north": {{"dna_request": "5 working_days"}}}}\''
        ) from exc
    if not isinstance(value, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) for v in value.values()
    ):
        raise SettingsError(f'{name} must look like {{"station": {{"rule": "7 working_days"}}}}')
    return {str(k): {str(r): str(p) for r, p in v.items()} for k, v in value.items()}


def _timezone(name: str, default: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    raw = _env(name, default) or default
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(
            f"{name} must be an IANA timezone such as Asia/Shanghai, got {raw!r}"
        ) from exc
    return raw


#: Locales with a message catalogue (rescue/i18n/locale), first is the default.
LOCALES = ("zh_CN", "en")


def _locale(name: str, default: str) -> str:
    raw = (_env(name, default) or default).replace("-", "_")
    if raw not in LOCALES:
        raise SettingsError(
            f"{name} must be one of {', '.join(LOCALES)}, got {raw!r}; for example {name}=zh_CN"
        )
    return raw


@dataclass(frozen=True)
class PfifSettings:
    """PFIF 1.4 exchange (rescue.pfif)."""

    #: ``PFIF_DOMAIN``: the repository domain of records this service originates;
    #: record ids are ``<domain>/notice.<id>`` (PFIF 1.4 §2.1: "domain name of the
    #: original repository, a slash, and a unique id").
    domain: str = "rescue.invalid"
    #: ``PFIF_SOURCE_NAME``: ``source_name`` / ``author_name`` of exported records.
    source_name: str = "救助管理站"
    #: ``PFIF_EXPIRY_DAYS``: ``expiry_date`` of exported records, days after export;
    #: a receiving repository deletes them then (PFIF 1.4 §3.2), so a withdrawn
    #: notice or announcement does not linger elsewhere.
    expiry_days: int = 30


@dataclass(frozen=True)
class OpsSettings:
    """Running the service: logs, metrics, health, stopping (README "Deployment")."""

    #: ``LOG_FORMAT``: ``json`` (one object per line, for a log collector) or
    #: ``text`` (readable, for a terminal). Default: json with PostgreSQL
    #: (production), text with the embedded SQLite set-up.
    log_format: str = "text"
    #: ``LOG_LEVEL``: DEBUG, INFO, WARNING or ERROR.
    log_level: str = "INFO"
    #: ``METRICS_TOKEN``: bearer token Prometheus sends to ``GET /metrics``; unset:
    #: ``/metrics`` answers only clients on this machine (loopback).
    metrics_token: str | None = None
    #: ``WORKER_METRICS_PORT``/``WORKER_METRICS_HOST``: where each ``dramatiq``
    #: worker command serves its job metrics (Dramatiq's Prometheus middleware).
    worker_metrics_port: int = 9191
    worker_metrics_host: str = "127.0.0.1"
    #: ``WORKER_STOP_SECONDS``: on SIGTERM a worker stops taking jobs, lets the
    #: running ones finish for at most this long, then hands the unfinished ones
    #: back to the queue and exits (systemd ``TimeoutStopSec`` must be longer).
    worker_stop_seconds: float = 30.0
    #: ``HEALTH_TIMEOUT_SECONDS``: each backing service must answer
    #: ``/health/ready`` within this long.
    health_timeout_seconds: float = 2.0


_LOG_FORMATS = ("json", "text")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _choice(name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    raw = _env(name, default) or default
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        raise SettingsError(
            f"{name} must be one of {', '.join(choices)}, got {raw!r}; for example {name}={default}"
        )
    return value


def _public_url(name: str) -> str | None:
    from urllib.parse import urlsplit

    raw = _env(name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise SettingsError(
            f"{name} must be the object store's address as other PCs reach it, scheme and "
            f"host only, got {raw!r}; for example {name}=http://192.168.1.20:8333"
        )
    return raw.rstrip("/")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database: DatabaseSettings
    storage: StorageSettings
    matching: MatchingSettings
    upload: UploadSettings
    deadlines: DeadlineSettings
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
    #: ``STATION_TIMEZONE``: the IANA zone whose calendar dates are the station's
    #: "today" and whose midnight ends working-day deadlines (rescue.clock).
    station_timezone: str = "Asia/Shanghai"
    #: ``DEFAULT_LOCALE``: language of pages, messages and documents when the
    #: request names none it supports (rescue.i18n): ``zh_CN`` or ``en``.
    default_locale: str = "zh_CN"
    review: ReviewSettings = field(default_factory=ReviewSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    custody: CustodySettings = field(default_factory=CustodySettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    web: WebSettings = field(default_factory=WebSettings)
    public: PublicSettings = field(default_factory=PublicSettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    pfif: PfifSettings = field(default_factory=PfifSettings)
    site: SiteSettings = field(default_factory=SiteSettings)
    extra: dict[str, str] = field(default_factory=dict)


def load_settings() -> Settings:
    """Build :class:`Settings` from the current environment.

    Raises:
        SettingsError: a variable is malformed.
    """
    # Default: var/ of this checkout, wherever the command is run from (a CLI run
    # from another folder must not quietly create a second, empty database).
    default_dir = Path(__file__).resolve().parents[1] / "var"
    data_dir = Path(_env("DATA_DIR") or default_dir).resolve()
    db_url = _env("DATABASE_URL") or f"sqlite:///{data_dir / 'rescue.db'}"
    if not (db_url.startswith("sqlite:///") or db_url.startswith("postgres")):
        raise SettingsError(
            "DATABASE_URL must start with sqlite:/// or postgresql://, got "
            f"{redact_url(db_url)!r}; for example "
            "DATABASE_URL=postgresql://rescue:PASSWORD@127.0.0.1:5432/rescue"
        )
    redis_url = _env("REDIS_URL")
    return Settings(
        data_dir=data_dir,
        database=DatabaseSettings(
            url=db_url,
            pool_max_size=_int("DB_POOL_MAX", 10),
            worker_pool_max_size=_int("WORKER_DB_POOL_MAX", 4),
            read_cache=_bool("READ_CACHE", True),
            read_cache_entries=_int("READ_CACHE_ENTRIES", 10_000),
            sqlite_busy_timeout=_float("SQLITE_BUSY_TIMEOUT_SECONDS", 15.0),
        ),
        storage=StorageSettings(
            endpoint=_env("S3_ENDPOINT"),
            access_key=_env("S3_ACCESS_KEY", "rescue-dev") or "",
            secret_key=_env("S3_SECRET_KEY", "rescue-dev-secret-change-me") or "",
            bucket=_env("S3_BUCKET", "rescue-photos") or "rescue-photos",
            secure=_bool("S3_SECURE", False),
            region=_env("S3_REGION", "us-east-1") or "us-east-1",
            embedded_port=_int("S3_EMBEDDED_PORT", 8333),
            presign_seconds=min(_int("PHOTO_URL_TTL_SECONDS", 300), 300),
            public_url=_public_url("S3_PUBLIC_URL"),
            embedded_host=_env("S3_EMBEDDED_HOST", "127.0.0.1") or "127.0.0.1",
            timeout_seconds=_float("S3_TIMEOUT_SECONDS", 10.0),
            retries=_int("S3_RETRIES", 1),
        ),
        matching=MatchingSettings(
            threshold=_float("MATCH_THRESHOLD", MatchingSettings.threshold),
            detect_max_side=_int("DETECT_MAX_SIDE", 1280),
            detect_upsample=_int("DETECT_UPSAMPLE", 1),
            candidates=max(1, _int("MATCH_CANDIDATES", 5)),
            loose_bound=_float("MATCH_LOOSE_BOUND", 0.0) or None,
            filter_sex=_bool("MATCH_FILTER_SEX", True),
        ),
        upload=UploadSettings(
            max_bytes=_int("UPLOAD_MAX_BYTES", 20 * 1024 * 1024),
            max_pixels=_int("UPLOAD_MAX_PIXELS", 50_000_000),
            import_max_bytes=_int("IMPORT_MAX_BYTES", 4 * 1024**3),
            import_chunk_rows=max(1, _int("IMPORT_CHUNK_ROWS", 1000)),
            import_lease_seconds=max(1, _int("IMPORT_LEASE_SECONDS", 900)),
            import_temp_idle_seconds=max(0, _int("IMPORT_TEMP_IDLE_SECONDS", 3600)),
        ),
        deadlines=DeadlineSettings(overrides=_json_overrides("DEADLINE_OVERRIDES")),
        redis_url=redis_url,
        broker_namespace=_env("BROKER_NAMESPACE", "rescue") or "rescue",
        inprocess_worker=_bool("INPROCESS_WORKER", redis_url is None),
        host=_env("HOST", "127.0.0.1") or "127.0.0.1",
        port=_int("PORT", 8000),
        token_ttl_days=_int("TOKEN_TTL_DAYS", 90),
        debug=_bool("DEBUG", False),
        station_timezone=_timezone("STATION_TIMEZONE", "Asia/Shanghai"),
        default_locale=_locale("DEFAULT_LOCALE", "zh_CN"),
        review=ReviewSettings(
            require_second_reviewer=_bool("REQUIRE_SECOND_REVIEWER", False),
        ),
        auth=AuthSettings(
            login_token_ttl_hours=_int("LOGIN_TOKEN_TTL_HOURS", 12),
            login_free_attempts=_int("LOGIN_FREE_ATTEMPTS", 5),
            login_max_delay_seconds=_int("LOGIN_MAX_DELAY_SECONDS", 900),
        ),
        web=WebSettings(
            session_idle_seconds=_int("SESSION_IDLE_SECONDS", 7200),
            secure_cookies=_bool("SECURE_COOKIES", False),
            secret_key=_env("SECRET_KEY"),
            assets_dir=Path(
                _env("WEB_ASSETS_DIR") or default_dir.parent / "node_modules"
            ).resolve(),
        ),
        public=PublicSettings(
            regions=_regions(_env("PUBLIC_REGIONS")),
            limit_per_address=_int("REQUEST_LIMIT_PER_ADDRESS", 5),
            limit_per_contact=_int("REQUEST_LIMIT_PER_CONTACT", 3),
            lookups_per_hour=_int("STATUS_LOOKUPS_PER_HOUR", 20),
            trusted_proxies=_networks("TRUSTED_PROXIES"),
        ),
        site=SiteSettings(
            public_base_url=_base_url("PUBLIC_BASE_URL"), stations=_stations("STATION_NAMES")
        ),
        retention=RetentionSettings(
            face_days=_int("FACE_RETENTION_DAYS", 30),
            photo_days=_int("PHOTO_RETENTION_DAYS", 0),
            photo_days_by_station=_station_days(_env("PHOTO_RETENTION_DAYS_BY_STATION")),
            request_days=_int("FAMILY_REQUEST_RETENTION_DAYS", 30),
            request_stale_days=_int("FAMILY_REQUEST_STALE_DAYS", 90),
            import_days=_int("IMPORT_RETENTION_DAYS", 30),
        ),
        pfif=PfifSettings(
            domain=_env("PFIF_DOMAIN", PfifSettings.domain) or PfifSettings.domain,
            source_name=_env("PFIF_SOURCE_NAME", PfifSettings.source_name)
            or PfifSettings.source_name,
            expiry_days=_int("PFIF_EXPIRY_DAYS", PfifSettings.expiry_days),
        ),
        custody=CustodySettings(
            age=_int("CUSTODY_AGE", 18),
            age_by_station=_station_days(_env("CUSTODY_AGE_BY_STATION"), "CUSTODY_AGE_BY_STATION"),
        ),
        ops=OpsSettings(
            log_format=_choice(
                "LOG_FORMAT", "text" if db_url.startswith("sqlite") else "json", _LOG_FORMATS
            ),
            log_level=_choice("LOG_LEVEL", "INFO", _LOG_LEVELS, upper=True),
            metrics_token=_env("METRICS_TOKEN"),
            worker_metrics_port=_int("WORKER_METRICS_PORT", 9191),
            worker_metrics_host=_env("WORKER_METRICS_HOST", "127.0.0.1") or "127.0.0.1",
            worker_stop_seconds=_float("WORKER_STOP_SECONDS", 30.0),
            health_timeout_seconds=_float("HEALTH_TIMEOUT_SECONDS", 2.0),
        ),
        recovery=RecoverySettings(
            broker_timeout_seconds=_float("BROKER_TIMEOUT_SECONDS", 5.0),
            sweep_seconds=_int("RECOVERY_SWEEP_SECONDS", 60),
            requeue_after_seconds=_int("PHOTO_REQUEUE_AFTER_SECONDS", 300),
            orphan_grace_seconds=_int("ORPHAN_GRACE_SECONDS", 900),
            max_attempts=_int("PHOTO_MAX_ATTEMPTS", 5),
            heartbeat_timeout_seconds=_int("WORKER_HEARTBEAT_TIMEOUT_SECONDS", 15),
            maintenance_per_million=_int("BROKER_MAINTENANCE_PER_MILLION", 20_000),
            retry_after_seconds=_int("RETRY_AFTER_SECONDS", 30),
        ),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return load_settings()
