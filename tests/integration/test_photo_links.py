"""Photo links that work from other PCs (S3_PUBLIC_URL, S3_EMBEDDED_HOST).

A presigned URL names the host it was signed for, and S3 checks the signature
against the Host header it receives: a URL signed for 127.0.0.1 fails on any
other PC. The embedded S3 server is started listening beyond loopback and the
link, signed for this machine's network address, is fetched through that address.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import replace

import httpx
import pytest

from media.s3server import EmbeddedS3, free_port
from media.storage import ObjectStore
from rescue.settings import load_settings


def _lan_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent (UDP connect)
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_presigned_links_name_the_public_address_and_open_through_it(tmp_path):
    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    s3 = EmbeddedS3(
        data_dir=tmp_path / "s3",
        access_key="links",
        secret_key=secrets.token_hex(16),
        s3_port=free_port(),
        bind="0.0.0.0",  # noqa: S104 - what S3_EMBEDDED_HOST=0.0.0.0 asks for
    )
    s3.start()
    try:
        base = load_settings().storage
        storage = replace(base, access_key=s3.access_key, secret_key=s3.secret_key, bucket="links")
        local = ObjectStore.from_settings(storage, s3.endpoint)
        local.ensure_bucket()
        local.put("photos/a.jpg", b"jpeg bytes", "image/jpeg")
        assert httpx.get(local.presigned_url("photos/a.jpg")).status_code == 200
        assert "127.0.0.1" in local.presigned_url("photos/a.jpg")

        public = ObjectStore.from_settings(
            replace(storage, public_url=f"http://{lan}:{s3.s3_port}"), s3.endpoint
        )
        url = public.presigned_url("photos/a.jpg")
        assert url.startswith(f"http://{lan}:{s3.s3_port}/links/photos/a.jpg?")
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200
        assert answer.content == b"jpeg bytes"
        # The signature is bound to the host: the same query on another host fails.
        wrong = httpx.get(url.replace(lan, "127.0.0.1"), timeout=10)
        assert wrong.status_code == 403
    finally:
        s3.stop()
