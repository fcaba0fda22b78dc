"""Every message a domain error carries is a catalogue text (issue 10 item 10).

Pages show a refused request's ``detail`` to the station's staff, in Chinese; an
English-only string in a ``raise NotFound(f"...")`` would reach them as it is. This
walks the source of ``rescue/`` and ``workers/`` and fails on any domain error
(rescue.errors.DomainError and its subclasses, wherever defined) built with a
literal or f-string message instead of ``_()``; also on the file-refusal reasons of
media/ (ImageRejected, DocumentRejected) that have no catalogue message."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "rescue", ROOT / "workers"]


def _error_names() -> set[str]:
    import rescue.app  # noqa: F401 - imports every domain (their error classes)
    from rescue.errors import DomainError

    names, stack = set(), [DomainError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return names


def _literal(node: ast.expr) -> bool:
    """A message written as it is: "text", f"text {x}", "a" + "b", "a %s" % x."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _literal(node.left) or _literal(node.right)
    return False


def _uncatalogued(path: Path, errors: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in errors:
            continue
        detail = node.args[0] if node.args else None
        for keyword in node.keywords:
            if keyword.arg == "detail":
                detail = keyword.value
        if detail is not None and _literal(detail):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return found


def test_domain_errors_carry_catalogue_messages():
    errors = _error_names()
    found = []
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            found.extend(_uncatalogued(path, errors))
    assert found == [], "messages not through _():\n" + "\n".join(found)


def test_the_walk_finds_an_english_only_message(tmp_path):
    """The check itself: an f-string message is caught, a catalogued one is not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(x):\n"
        "    raise NotFound(f'case {x} does not exist')\n"
        "def g(x):\n"
        "    raise NotFound(_('case {case_id} does not exist', case_id=x))\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert _uncatalogued(sample, {"NotFound"}) == ["sample.py:2 NotFound"]
    finally:
        ROOT = saved


def test_every_file_refusal_reason_has_a_catalogue_message():
    from media import documents, images
    from rescue.documents import REFUSALS
    from rescue.i18n import catalogue

    reasons = set()
    for module in (images, documents):
        source = inspect.getsource(module)
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") in {"ImageRejected", "DocumentRejected"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                reasons.add(node.args[0].value)
    assert reasons, "no refusal reason found: the walk is broken"
    assert sorted(reasons - set(REFUSALS)) == []
    zh = catalogue("zh_CN")
    assert [REFUSALS[r] for r in reasons if REFUSALS[r] not in zh] == []
