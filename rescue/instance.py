"""One ``rescue serve`` per data folder.

Two embedded instances on one ``DATA_DIR`` would share a SQLite file and an S3
data folder, each with its own in-process worker and scheduler. ``rescue serve``
holds an exclusive ``flock`` on ``DATA_DIR/serve.lock`` while it runs (released
by the kernel however the process ends, so a crash leaves no stale lock) and
writes there where it serves; a second start reads it and says so.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["AlreadyRunning", "InstanceLock"]


class AlreadyRunning(RuntimeError):
    """Another ``rescue serve`` holds this data folder; ``where`` says where it serves."""

    def __init__(self, data_dir: Path, where: dict[str, Any]) -> None:
        self.where = where
        api = where.get("api", "an unknown address")
        super().__init__(
            f"an instance is already running on this data folder ({data_dir}): "
            f"API {api}, process {where.get('pid', '?')}, started {where.get('started', '?')}. "
            "Use that one, stop it first (Ctrl-C in its terminal), or set DATA_DIR to "
            "another folder for a second, separate instance."
        )


@dataclass
class InstanceLock:
    """The data folder's lock; :meth:`acquire` raises :class:`AlreadyRunning`."""

    data_dir: Path
    _file: IO[str] | None = None

    @property
    def path(self) -> Path:
        return self.data_dir / "serve.lock"

    def acquire(self, **where: Any) -> None:
        """Take the lock and record ``where`` (api address, s3 endpoint, started)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open while serving
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                recorded = json.loads(handle.read() or "{}")
            except ValueError:
                recorded = {}
            handle.close()
            raise AlreadyRunning(self.data_dir, recorded) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), **where}))
        handle.flush()
        self._file = handle

    def running(self) -> dict[str, Any] | None:
        """What the running instance recorded (``pid``, ``api``, ``s3``), or None
        when no ``rescue serve`` holds this data folder."""
        if not self.path.exists():
            return None
        with open(self.path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    return dict(json.loads(handle.read() or "{}"))
                except ValueError:
                    return {}
            return None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None
