"""Re-match runs can be listed and cancelled (API), and a cancelled run does no work."""

from __future__ import annotations


async def _queued_run() -> int:
    from rescue.matching.rematch import start_rematch
    from rescue.settings import get_settings

    async def keep(_: int) -> None:  # queued, but given to no worker: the test drives it
        return None

    run = await start_rematch(by=None, settings=get_settings(), enqueue=keep)
    return run.id


async def test_runs_are_listed_newest_first_and_a_queued_run_can_be_cancelled(client, admin):
    first, second = await _queued_run(), await _queued_run()
    listed = await client.get("/api/admin/rematch", headers=admin)
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()][:2] == [second, first]

    cancelled = await client.post(f"/api/admin/rematch/{second}/cancel", headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None

    again = await client.post(f"/api/admin/rematch/{second}/cancel", headers=admin)
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]
    missing = await client.post("/api/admin/rematch/999999/cancel", headers=admin)
    assert missing.status_code == 404


async def test_a_cancelled_run_does_no_work():
    from rescue.matching.rematch import cancel_rematch, get_rematch, run_rematch
    from rescue.runtime import get_galleries
    from rescue.settings import get_settings

    run_id = await _queued_run()
    await cancel_rematch(run_id=run_id)
    status = await run_rematch(run_id=run_id, settings=get_settings(), galleries=get_galleries())
    assert status == "cancelled"
    run = await get_rematch(run_id=run_id)
    assert run.status == "cancelled"
    assert run.started_at is None
