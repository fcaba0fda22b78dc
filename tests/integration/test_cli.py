"""The `rescue` command line, run as a user would."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import anyio.to_thread
import httpx

from rescue.devservices import ROOT

RESCUE = str(Path(sys.executable).with_name("rescue"))


async def test_station_staff_need_a_station():
    result = await anyio.run_process(
        [RESCUE, "users", "create", "nostation", "--role", "station_staff"], cwd=ROOT, check=False
    )
    assert result.returncode == 2
    assert b"--station" in result.stderr
    assert result.stdout == b""


async def test_token_alone_on_stdout_and_it_works(client):
    result = await anyio.run_process(
        [RESCUE, "users", "create", "cli-staff", "--role", "station_staff", "--station", "north"],
        cwd=ROOT,
    )
    token = result.stdout.decode().strip()
    assert len(token) > 30
    assert "\n" not in token
    response = await client.get("/api/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


#: The command run from this checkout (``python -m rescue.cli`` in ROOT), whatever
#: checkout the virtualenv's ``rescue`` script was installed from.
CHECKOUT_CLI = [sys.executable, "-m", "rescue.cli"]


async def test_set_password_piped_is_one_line_read_without_getpass(client):
    """A password piped in (not a terminal) is the first line, without its line
    ending; no getpass, so no GetPassWarning and no prompt."""
    from rescue.users.services import create_user

    await create_user(username="pipe-staff", role="station_staff", station="north")
    password = "  correct horse 电池 staple "  # spaces kept, only the line ending goes
    for ending in ("\n", "\r\n"):
        result = await anyio.run_process(
            [*CHECKOUT_CLI, "users", "set-password", "pipe-staff"],
            input=f"{password}{ending}".encode(),
            cwd=ROOT,
            check=False,
        )
        said = (result.stdout + result.stderr).decode()
        assert result.returncode == 0, said
        assert "Warning" not in said  # GetPassWarning
        assert "echoed" not in said
        assert "密码" not in said  # no prompt
        assert "password of pipe-staff set" in result.stdout.decode()
        login = await client.post(
            "/auth/login", json={"username": "pipe-staff", "password": password}
        )
        assert login.status_code == 201, (repr(ending), login.text)

    empty = await anyio.run_process(
        [*CHECKOUT_CLI, "users", "set-password", "pipe-staff"], input=b"", cwd=ROOT, check=False
    )
    assert empty.returncode == 2, empty.stderr
    assert "标准输入" in empty.stderr.decode()
    assert "Traceback" not in empty.stderr.decode()


def _type_at_a_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run ``args`` with a pseudo-terminal as stdin/stdout/stderr, typing each of
    ``answers`` after the next prompt (a line ending in ": "); returns the exit
    status and everything the terminal showed."""
    import os
    import pty
    import select
    import subprocess
    import time

    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        args, stdin=child_fd, stdout=child_fd, stderr=child_fd, cwd=ROOT, close_fds=True
    )
    os.close(child_fd)
    shown, pending = b"", list(answers)
    deadline = time.monotonic() + 120  # a hang guard only
    while time.monotonic() < deadline:
        ready, _w, _x = select.select([main_fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if pending and shown.rstrip(b" ").endswith(b":"):
                os.write(main_fd, pending.pop(0).encode() + b"\n")
        elif process.poll() is not None:
            break
    process.wait(timeout=120)
    os.close(main_fd)
    return process.returncode, shown.decode(errors="replace")


async def test_set_password_at_a_terminal_is_typed_twice_hidden(client):
    """At a terminal getpass asks twice and does not show what is typed."""
    from rescue.users.services import create_user

    await create_user(username="tty-staff", role="station_staff", station="north")
    password = "correct horse battery staple"
    code, shown = await anyio.to_thread.run_sync(
        lambda: _type_at_a_terminal(
            [*CHECKOUT_CLI, "users", "set-password", "tty-staff"], [password, password]
        )
    )
    assert code == 0, shown
    assert "新密码" in shown
    assert "再次输入新密码" in shown
    assert password not in shown  # hidden
    assert "GetPassWarning" not in shown
    login = await client.post("/auth/login", json={"username": "tty-staff", "password": password})
    assert login.status_code == 201, login.text


def test_first_serve_on_a_fresh_data_dir_says_once_what_the_migrations_did(tmp_path):
    """The first ``make run`` (``rescue serve`` on an empty DATA_DIR, SQLite):
    one line from the catalogue says the database was created with every
    migration, none of Piccolo's contradictory counts ("N already complete", then
    "N not yet run"); a second start says it is up to date, once."""
    import re
    import subprocess

    from tests.servers import serve, sqlite_env

    known = len(list((ROOT / "rescue" / "piccolo_migrations").glob("rescue_*.py")))
    env = sqlite_env(tmp_path / "data")
    log = tmp_path / "serve.log"
    with serve(env, log, cli=CHECKOUT_CLI) as base:
        assert httpx.get(f"{base}/health/live").status_code == 200
    said = log.read_text()
    lines = [line for line in said.splitlines() if "迁移" in line or "igration" in line]
    assert lines == [f"数据库已创建：已执行 {known} 个迁移。"], said[:3000]
    for piccolo in ("already complete", "not yet run", "No migrations", "Running", "ok!"):
        assert piccolo not in said, said[:3000]

    again = subprocess.run(
        [*CHECKOUT_CLI, "migrate"], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert again.stdout == f"数据库已是最新：全部 {known} 个迁移此前均已执行。\n"
    assert not re.search(r"\S", again.stderr), again.stderr
    # A command whose stdout is its result says nothing when nothing was applied.
    token = subprocess.run(
        [*CHECKOUT_CLI, "users", "create", "first", "--role", "admin", "--station", "north"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "\n" not in token.stdout.strip()
    assert "迁移" not in token.stdout + token.stderr
