"""Tokens (list, revoke, expiry), password login with backoff, user administration."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from tests.conftest import make_token

PASSWORD = "correct horse battery"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_tokens_are_stored_hashed_listed_and_revoked(client, admin):
    from rescue.users.tables import ApiToken

    token = await make_token("station_staff")
    mine = _bearer(token)
    second = await client.post("/auth/login", json={"username": "nobody", "password": "x" * 12})
    assert second.status_code == 401
    rows = await ApiToken.select(ApiToken.token_hash)
    assert token not in str(rows)
    assert hashlib.sha256(token.encode()).hexdigest() in {r["token_hash"] for r in rows}

    listed = (await client.get("/api/tokens", headers=mine)).json()
    assert len(listed) == 1
    assert token not in str(listed)
    assert "hash" not in str(listed)
    assert listed[0]["expires_at"] is not None  # TOKEN_TTL_DAYS
    # Only admins list everyone's.
    assert (await client.get("/api/tokens?all=true", headers=mine)).status_code == 403
    everyone = (await client.get("/api/tokens?all=true", headers=admin)).json()
    assert {t["id"] for t in listed} < {t["id"] for t in everyone}

    # Someone else's token is not yours to revoke.
    other = (await client.get("/api/tokens", headers=admin)).json()[0]["id"]
    assert (await client.delete(f"/api/tokens/{other}", headers=mine)).status_code == 404
    assert (await client.delete(f"/api/tokens/{listed[0]['id']}", headers=mine)).status_code == 204
    assert (await client.get("/api/tokens", headers=mine)).status_code == 401
    # An admin revokes anyone's.
    victim = await make_token("reviewer")
    victim_id = (await client.get("/api/tokens", headers=_bearer(victim))).json()[0]["id"]
    assert (await client.delete(f"/api/tokens/{victim_id}", headers=admin)).status_code == 204
    response = await client.get("/api/cases", headers=_bearer(victim))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_expired_token_is_refused(client):
    from rescue.users.tables import ApiToken

    token = await make_token("station_staff")
    await ApiToken.update({ApiToken.expires_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
        ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest()
    )
    response = await client.get("/api/cases", headers=_bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_login_gives_short_lived_token(client):
    from rescue.users.services import create_user
    from rescue.users.tables import User

    await create_user(username="li.ming", role="station_staff", station="north", password=PASSWORD)
    stored = await User.select(User.password_hash).where(User.username == "li.ming").first()
    assert stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in stored["password_hash"]

    response = await client.post("/auth/login", json={"username": "li.ming", "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=11) < expires - datetime.now(UTC) <= timedelta(hours=12)
    assert (await client.get("/api/cases", headers=_bearer(body["token"]))).status_code == 200

    wrong = await client.post("/auth/login", json={"username": "li.ming", "password": "nope"})
    unknown = await client.post("/auth/login", json={"username": "ghost", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]  # usernames are not revealed


async def test_repeated_failed_logins_are_slowed(client, monkeypatch):
    """On the service's clock (frozen): the back-off after the free attempts holds
    for its full length however long the password check takes, and ends then."""
    from rescue import clock
    from rescue.settings import get_settings
    from rescue.users import services
    from rescue.users.services import create_user
    from rescue.users.tables import LoginThrottle

    await create_user(username="wang", role="reviewer", password=PASSWORD)
    verify = services._verify

    def slow_verify(stored, password):  # a loaded machine: Argon2 takes 3 s
        clock.advance(3)
        return verify(stored, password)

    monkeypatch.setattr(services, "_verify", slow_verify)
    free = get_settings().auth.login_free_attempts
    with clock.frozen(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)):
        for _ in range(free):
            response = await client.post(
                "/auth/login", json={"username": "wang", "password": "bad"}
            )
            assert response.status_code == 401
        response = await client.post("/auth/login", json={"username": "wang", "password": "bad"})
        assert response.status_code == 401  # this failure starts a 2 s back-off…
        blocked = await client.post("/auth/login", json={"username": "wang", "password": PASSWORD})
        assert blocked.status_code == 429  # …counted from the failure, not from its start
        assert blocked.headers["retry-after"] == "2"
        # Per address too: another username from the same client is slowed.
        other = await client.post("/auth/login", json={"username": "zhao", "password": PASSWORD})
        assert other.status_code == 429
        clock.advance(1.5)
        still = await client.post("/auth/login", json={"username": "wang", "password": PASSWORD})
        assert still.status_code == 429
        assert still.headers["retry-after"] == "1"
        clock.advance(0.5)  # the 2 s are over: the right password works, counters cleared
        ok = await client.post("/auth/login", json={"username": "wang", "password": PASSWORD})
        assert ok.status_code == 201
        assert ok.json()["expires_at"].startswith("2026-03-01T21:0")  # 12 h on this clock
    assert await LoginThrottle.count() == 0


async def test_an_admin_changes_a_users_role_and_station(client, admin):
    """Role, station and scope change at once for the user's next request; station
    staff still need a station; an admin cannot change their own role."""
    created = await client.post(
        "/api/admin/users",
        json={"username": "sun", "role": "station_staff", "station": "north"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    user, token = created.json(), created.json()["token"]
    sun = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/family-requests", headers=sun)).status_code == 200
    path = f"/api/admin/users/{user['id']}/assignment"
    moved = await client.put(
        path, json={"role": "reviewer", "station": "south", "scope": "*"}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["role"], moved.json()["station"], moved.json()["scope"]) == (
        "reviewer",
        "south",
        "*",
    )
    assert (await client.get("/api/family-requests", headers=sun)).status_code == 403
    refused = await client.put(path, json={"role": "station_staff"}, headers=admin)
    assert refused.status_code == 400, refused.text
    assert refused.json()["field"] == "station"
    second = await client.post(
        "/api/admin/users", json={"username": "boss2", "role": "admin"}, headers=admin
    )
    boss2 = {"Authorization": f"Bearer {second.json()['token']}"}
    own = await client.put(
        f"/api/admin/users/{second.json()['id']}/assignment",
        json={"role": "reviewer", "station": "north"},
        headers=boss2,
    )
    assert own.status_code == 409, own.text


async def test_station_staff_without_a_station_are_refused_by_the_api(client, admin):
    """The same rule as the CLI and the admin page (rescue.users.services.create_user)."""
    for station in ("", "   "):
        refused = await client.post(
            "/api/admin/users",
            json={"username": "no.station", "role": "station_staff", "station": station},
            headers=admin,
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["field"] == "station"
    ok = await client.post(
        "/api/admin/users",
        json={"username": "no.station", "role": "station_staff", "station": "north"},
        headers=admin,
    )
    assert ok.status_code == 201, ok.text


async def test_usernames_are_normalised_and_compared_so(client, admin):
    """NFKC and case folding: full-width or upper-case spellings are one account."""
    created = await client.post(
        "/api/admin/users",
        json={"username": "Ｗang", "role": "reviewer", "password": PASSWORD},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["username"] == "wang"
    for twin in ("WANG", "ｗａｎｇ", "Wang "):
        again = await client.post(
            "/api/admin/users", json={"username": twin, "role": "reviewer"}, headers=admin
        )
        assert again.status_code == 409, (twin, again.text)
    login = await client.post("/auth/login", json={"username": "ＷＡＮＧ", "password": PASSWORD})
    assert login.status_code == 201


@pytest.mark.parametrize(
    "name",
    ["li\u202egnp.exe", "zero\u200bwidth", "bell\x07", "tab\there", "new\nline", "two  spaces"],
)
async def test_usernames_with_control_or_bidi_characters_are_refused(client, admin, name):
    from rescue.users.tables import User

    response = await client.post(
        "/api/admin/users", json={"username": name, "role": "reviewer"}, headers=admin
    )
    assert response.status_code == 400, response.text
    assert "not allowed" in response.json()["detail"]
    assert await User.count().where(User.username.like("%" + name[:3] + "%")) == 0


async def test_deactivated_user_cannot_log_in_or_use_tokens(client, admin):
    created = await client.post(
        "/api/admin/users",
        json={"username": "chen", "role": "police_liaison", "station": "north", "scope": "*"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["scope"] == "*"
    assert body["has_password"] is False
    token = body["token"]
    assert (await client.get("/api/cases", headers=_bearer(token))).status_code == 200

    with_pw = await client.post(
        "/api/admin/users",
        json={"username": "sun", "role": "reviewer", "password": PASSWORD},
        headers=admin,
    )
    assert with_pw.status_code == 201
    assert with_pw.json()["token"] is None
    assert PASSWORD not in with_pw.text
    short = await client.post(
        "/api/admin/users",
        json={"username": "x", "role": "admin", "password": "short"},
        headers=admin,
    )
    assert short.status_code == 400
    dup = await client.post(
        "/api/admin/users", json={"username": "sun", "role": "admin"}, headers=admin
    )
    assert dup.status_code == 409

    listed = (await client.get("/api/admin/users", headers=admin)).json()
    assert {"chen", "sun"} <= {u["username"] for u in listed["items"]}
    assert "argon2" not in str(listed)

    off = await client.post(f"/api/admin/users/{body['id']}/deactivate", headers=admin)
    assert off.status_code == 200
    assert off.json()["active"] is False
    assert (await client.get("/api/cases", headers=_bearer(token))).status_code == 401
    sun = with_pw.json()["id"]
    await client.post(f"/api/admin/users/{sun}/deactivate", headers=admin)
    login = await client.post("/auth/login", json={"username": "sun", "password": PASSWORD})
    assert login.status_code == 401


async def test_cli_set_password_reads_stdin(client):
    from rescue.cli import main
    from rescue.users.services import create_user
    from rescue.users.tables import User

    await create_user(username="zhou", role="station_staff", station="north")
    runner = CliRunner()
    # click runs asyncio.run(); do it off this test's event loop.
    import anyio.to_thread

    result = await anyio.to_thread.run_sync(
        lambda: runner.invoke(
            main, ["users", "set-password", "zhou"], input=f"{PASSWORD}\n{PASSWORD}\n"
        )
    )
    assert result.exit_code == 0, result.output
    row = await User.select(User.password_hash).where(User.username == "zhou").first()
    assert row["password_hash"].startswith("$argon2id$")
    response = await client.post("/auth/login", json={"username": "zhou", "password": PASSWORD})
    assert response.status_code == 201
    short = await anyio.to_thread.run_sync(
        lambda: runner.invoke(main, ["users", "set-password", "zhou"], input="short\nshort\n")
    )
    assert short.exit_code != 0
    assert "至少 12 个字符" in short.output  # the CLI speaks DEFAULT_LOCALE (zh_CN)


async def test_login_back_off_behind_a_trusted_proxy_counts_each_client(client, monkeypatch):
    """Behind a proxy in TRUSTED_PROXIES, one client's failures do not block
    another's login (the per-address counter uses the forwarded client)."""
    from litestar.testing import AsyncTestClient

    from rescue import clock
    from rescue.settings import get_settings
    from rescue.users.services import create_user

    async def via_proxy(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            scope = {**scope, "client": ("10.9.9.1", 40000)}
        await client.app(scope, receive, send)

    monkeypatch.setenv("TRUSTED_PROXIES", "10.9.9.0/24")
    get_settings.cache_clear()
    try:
        await create_user(username="liu", role="reviewer", password=PASSWORD)
        proxy = AsyncTestClient(app=via_proxy)  # type: ignore[arg-type]
        with clock.frozen(datetime(2026, 12, 1, 2, tzinfo=UTC)):
            for attempt in range(8):  # client A guesses names and passwords
                await proxy.post(
                    "/auth/login",
                    json={"username": f"guess{attempt}", "password": "wrong password!!"},
                    headers={"X-Forwarded-For": "198.51.100.1"},
                )
            blocked = await proxy.post(
                "/auth/login",
                json={"username": "guess-more", "password": "wrong password!!"},
                headers={"X-Forwarded-For": "198.51.100.1"},
            )
            assert blocked.status_code == 429, blocked.text
            other = await proxy.post(
                "/auth/login",
                json={"username": "liu", "password": PASSWORD},
                headers={"X-Forwarded-For": "198.51.100.2"},
            )
            assert other.status_code == 201, other.text
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
