"""The OpenAPI document: every route described, readable operation ids, and the
error statuses each route answers documented with the real error body."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from rescue.app import create_app

    return dict(create_app().openapi_schema.to_schema())


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, o) for p, item in schema["paths"].items() for m, o in item.items()]


def test_every_operation_has_its_docstring_and_a_readable_id(schema):
    ops = _operations(schema)
    assert len(ops) > 40
    ids = [o["operationId"] for _, _, o in ops]
    assert len(set(ids)) == len(ids)
    for method, path, op in ops:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", op["operationId"]), (method, path, op)
        assert op.get("description", "").strip(), f"{method} {path} has no docstring"
    assert {o["operationId"] for _, _, o in ops} >= {"case.detail", "candidate_ledger.decide"}


def test_error_statuses_are_documented_with_the_error_body(schema):
    body = schema["components"]["schemas"]["ErrorBody"]
    assert {"status_code", "error", "detail"} <= set(body["required"])
    for method, path, op in _operations(schema):
        codes = {int(c) for c in op["responses"]}
        expected = {503}
        if path.startswith("/api"):
            expected |= {401, 403}
        if "{" in path:
            expected |= {400, 404}
        if method != "GET" and path != "/auth/login":
            expected.add(409)
        assert expected <= codes, (method, path, sorted(codes))
        for code in codes - {200, 201, 202, 204}:
            ref = op["responses"][str(code)]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (method, path, code)
    uploads = [o for m, p, o in _operations(schema) if p.endswith("/photos") and m == "POST"]
    assert uploads
    assert all({"413", "415"} <= set(o["responses"]) for o in uploads)
    login = schema["paths"]["/auth/login"]["post"]["responses"]
    assert {"401", "429"} <= set(login)
