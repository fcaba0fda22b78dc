"""A photo whose job could not be queued stays pending and is picked up again."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import wait_for_photo
from tests.integration.helpers import new_case
from tests.support import OBAMA_A, photo

ROOT = Path(__file__).resolve().parents[2]


async def test_broker_outage_leaves_photo_pending_then_requeue_processes_it(client, staff):
    from rescue.photos.services import upload_photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from rescue.users.services import authenticate

    case = await new_case(client, staff)
    principal = await authenticate(staff["Authorization"].split()[1])

    async def broker_down(photo_id: int) -> None:
        raise ConnectionError("redis unreachable")

    stored = await upload_photo(
        owner="case",
        owner_id=case["id"],
        data=photo(OBAMA_A),
        taken_on=None,
        by=principal,
        store=get_store(),
        limits=get_settings().upload,
        enqueue=broker_down,
    )
    assert stored.status == "pending"  # the upload itself is kept
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("rescue")),
        "photos",
        "requeue",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await proc.communicate()
    assert proc.returncode == 0
    assert "queued 1 pending photo" in stdout.decode()
    done = await wait_for_photo(client, staff, stored.id)
    assert done["status"] == "processed"
    assert len(done["faces"]) == 1
