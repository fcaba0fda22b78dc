"""One announcement, one entry (issue 12 item 11): publishing the 寻亲公告 here is
the announcement action the 24-hour deadline waits for; other channels are
recorded against the same announcement."""

from __future__ import annotations

from rescue import clock
from tests.integration.helpers import new_case


async def test_publishing_here_satisfies_the_24_hour_item_once(client, staff):
    cid = (await new_case(client, staff))["id"]
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    assert "announcement" in {a["kind"] for a in alerts}
    published = await client.post(
        f"/api/cases/{cid}/announcement", json={"found_place": "城西"}, headers=staff
    )
    assert published.status_code == 201, published.text
    announcement_id = published.json()["id"]
    alerts = (await client.get(f"/api/cases/{cid}/alerts", headers=staff)).json()
    assert "announcement" not in {a["kind"] for a in alerts}
    # Editing and republishing add no second entry.
    again = await client.post(
        f"/api/cases/{cid}/announcement", json={"found_place": "城西 G318"}, headers=staff
    )
    assert again.status_code == 201, again.text
    actions = (await client.get(f"/api/cases/{cid}/search-actions", headers=staff)).json()
    assert [(a["channel"], a["announcement_id"]) for a in actions] == [
        ("本站寻亲公告", announcement_id)
    ]
    # Other channels: recorded against the same announcement.
    response = await client.post(
        f"/api/cases/{cid}/announcements",
        json={"channel": "全国救助寻亲网", "published_on": clock.today().isoformat()},
        headers=staff,
    )
    assert response.status_code == 201, response.text
    assert response.json()["announcement_id"] == announcement_id
    by_hand = await client.post(
        f"/api/cases/{cid}/announcements",
        json={"channel": "本站寻亲公告", "published_on": clock.today().isoformat()},
        headers=staff,
    )
    assert by_hand.status_code == 400
    events = (await client.get(f"/api/cases/{cid}/timeline", headers=staff)).json()
    assert [e["kind"] for e in events].count("announcement") == 2
