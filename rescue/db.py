"""Database engine construction and lifecycle (PostgreSQL or embedded SQLite)."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from rescue.settings import DatabaseSettings, get_settings

__all__ = ["make_engine", "postgres_config"]


def postgres_config(url: str) -> dict[str, object]:
    """asyncpg connection kwargs from a ``postgresql://user:pass@host:port/db`` URL."""
    parsed = urlparse(url)
    config: dict[str, object] = {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "database": (parsed.path or "/").lstrip("/") or "postgres",
        "user": unquote(parsed.username) if parsed.username else "postgres",
    }
    if parsed.password:
        config["password"] = unquote(parsed.password)
    return config


def make_engine(database: DatabaseSettings | None = None) -> Engine:
    """Engine for ``DATABASE_URL``; the SQLite file's folder is created if needed."""
    database = database or get_settings().database
    if database.is_sqlite:
        from pathlib import Path

        path = Path(database.sqlite_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteEngine(path=str(path))
    return PostgresEngine(config=postgres_config(database.url))
