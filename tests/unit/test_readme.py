"""The README's commands can be followed top to bottom: a user it creates is
created once (a second ``rescue users create alice`` ends in "用户 'alice' 已存在"),
and every user it gives a password was created before."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = re.compile(r"rescue users (create|set-password) ([A-Za-z0-9_.-]+)")


def _shell_lines() -> list[str]:
    lines: list[str] = []
    inside = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside and line.strip() in {"```sh", "```bash", "```shell"}
            continue
        if inside:
            lines.append(line)
    return lines


def test_each_readme_user_is_created_once_before_its_password() -> None:
    created: list[str] = []
    for line in _shell_lines():
        for verb, name in COMMAND.findall(line):
            if verb == "create":
                assert name not in created, f"the README creates {name!r} twice: {line}"
                created.append(name)
            else:
                assert name in created, f"password for {name!r} before it is created: {line}"
    assert "alice" in created
