"""rescue.db.concurrently: independent reads at once on PostgreSQL, one after the
other inside a transaction, and a failure raised as itself."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from rescue.cases.tables import Case
from rescue.db import concurrently


async def test_outside_a_transaction_the_calls_run_at_once_and_results_keep_their_order():
    """The first call waits for the second to start: one after the other, it would
    wait for ever (the test fails after 60 s instead)."""
    second_started = anyio.Event()

    async def first() -> int:
        await second_started.wait()
        return (await Case.raw("SELECT 1 AS one"))[0]["one"]

    async def second() -> str:
        second_started.set()
        return (await Case.raw("SELECT 'two' AS two"))[0]["two"]

    with anyio.fail_after(60):
        assert await concurrently(first, second) == [1, "two"]


async def test_inside_a_transaction_the_calls_run_one_after_the_other():
    events: list[str] = []

    def call(name: str):
        async def run() -> str:
            events.append(f"{name} starts")
            await Case.raw("SELECT pg_sleep(0)")
            await asyncio.sleep(0)
            events.append(f"{name} ends")
            return name

        return run

    async with Case._meta.db.transaction():
        assert await concurrently(call("a"), call("b"), call("c")) == ["a", "b", "c"]
    assert events == ["a starts", "a ends", "b starts", "b ends", "c starts", "c ends"]


async def test_a_failure_is_raised_as_itself_once_the_other_calls_have_ended():
    """The failing call ends first; the other still finishes its query (cancelled
    mid-connection it would leave the connection unclosed) before the failure,
    itself and not in an ExceptionGroup, is raised."""
    failed = anyio.Event()
    finished: list[str] = []

    async def waits_then_queries() -> None:
        await failed.wait()
        await Case.raw("SELECT 1")
        finished.append("other")

    async def fails() -> None:
        await Case.raw("SELECT 1")
        failed.set()
        raise ConnectionRefusedError("the database went away")

    with anyio.fail_after(60), pytest.raises(ConnectionRefusedError, match="went away"):
        await concurrently(waits_then_queries, fails)
    assert finished == ["other"]
