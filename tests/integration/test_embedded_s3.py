"""The embedded S3 server (dev and `make run`) keeps accepting objects.

SeaweedFS gives each bucket (collection) its own volumes, 7 at a time, and a
volume server holds 8 by default: the second bucket written to used to find no
free volume, and uploads failed with 500. The embedded server must not run out.
"""

from __future__ import annotations

import io
import secrets

import pytest
from minio import Minio

from media.s3server import EmbeddedS3, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s3 = EmbeddedS3(
        data_dir=tmp_path_factory.mktemp("s3"),
        access_key="probe",
        secret_key=secrets.token_hex(16),
        s3_port=free_port(),
    )
    s3.start()
    yield s3
    s3.stop()


def test_several_buckets_can_be_written(server):
    client = Minio(
        server.endpoint, access_key=server.access_key, secret_key=server.secret_key, secure=False
    )
    for name in ("rescue-photos", "rescue-documents", "rescue-other"):
        client.make_bucket(name)
        client.put_object(name, "a/b.bin", io.BytesIO(b"x" * 1000), 1000)
        assert client.get_object(name, "a/b.bin").read() == b"x" * 1000


def test_a_busy_port_is_reported_clearly(server, tmp_path):
    clash = EmbeddedS3(
        data_dir=tmp_path, access_key="a", secret_key="b" * 16, s3_port=server.s3_port
    )
    with pytest.raises(RuntimeError, match=rf"port {server.s3_port} .*S3_EMBEDDED_PORT"):
        clash.start(timeout=10)
