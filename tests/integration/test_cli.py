"""The `rescue` command line, run as a user would."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

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
