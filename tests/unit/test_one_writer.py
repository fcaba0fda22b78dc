"""Tables with one writer: every row of them is written by one function, so a
rule about how they are raised lives in one place (found by reading the code:
an insert written elsewhere would bypass the rule)."""

from __future__ import annotations

import ast
from pathlib import Path

RESCUE = Path(__file__).resolve().parents[2] / "rescue"


def _writes(table: str, method: str) -> list[str]:
    """``module:function`` of every ``<table>.<method>(`` call under rescue/."""
    found = []
    for path in sorted(RESCUE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == method
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == table
                ):
                    found.append(f"{path.relative_to(RESCUE.parent)}:{function.name}")
    return found


def test_duplicate_warnings_are_written_by_one_function():
    """Duplicate-intake warnings are inserted only by rescue.duplicates.services._raise
    (new pairs in one statement), and their evidence is changed only by the helper
    it calls for pairs that have a warning; decide() changes only the status."""
    assert _writes("DuplicateWarning", "insert") == ["rescue/duplicates/services.py:_raise"]
    assert sorted(set(_writes("DuplicateWarning", "update"))) == [
        "rescue/duplicates/services.py:_add_evidence",
        "rescue/duplicates/services.py:decide",
    ]
    assert _writes("DuplicateWarning", "raw") == []
    sql = [
        str(path)
        for path in RESCUE.rglob("*.py")
        if "piccolo_migrations" not in path.parts
        and any(
            verb in path.read_text().lower()
            for verb in ("insert into duplicate_warnings", "update duplicate_warnings")
        )
    ]
    assert sql == []
