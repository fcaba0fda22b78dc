"""One transaction per audited write (rescue.audit.unit): a service's own
transaction inside it is a savepoint, and queue messages wait for the commit.
On the real PostgreSQL and the real Redis."""

from __future__ import annotations

import os
import secrets

import pytest


@pytest.fixture
async def probe():
    """A scratch table ``unit_probe (name)``, inserted into with ``put(name)``."""
    from rescue.cases.tables import Case

    db = Case._meta.db
    await db.run_ddl("CREATE TABLE unit_probe (id serial PRIMARY KEY, name text)")

    async def put(name: str) -> None:
        await Case.raw("INSERT INTO unit_probe (name) VALUES ({})", name)

    yield put
    await db.run_ddl("DROP TABLE unit_probe")


async def _names() -> list[str]:
    from rescue.cases.tables import Case

    return [r["name"] for r in await Case.raw("SELECT name FROM unit_probe ORDER BY id")]


async def test_a_nested_transaction_that_raises_leaves_nothing_of_its_block(probe):
    """A service raising inside ``async with DB.transaction()`` within a request
    undoes its block only; the rest of the request commits."""
    from rescue.audit.unit import open_unit
    from rescue.cases.tables import Case

    db = Case._meta.db
    unit = await open_unit(db)
    try:
        await probe("before")

        async def refused() -> None:
            async with db.transaction():
                await probe("inside")
                raise RuntimeError("refused")

        with pytest.raises(RuntimeError):
            await refused()
        async with db.transaction():
            await probe("kept")
        await unit.commit()
    finally:
        await unit.close()
    assert await _names() == ["before", "kept"]


async def test_a_failed_statement_in_a_nested_block_leaves_the_request_usable(probe):
    """On PostgreSQL a failed statement aborts the transaction; inside a nested
    block it is rolled back to the savepoint, and the request goes on."""
    from rescue.audit.unit import open_unit
    from rescue.cases.tables import Case

    db = Case._meta.db
    unit = await open_unit(db)
    try:

        async def failing() -> None:
            async with db.transaction():
                await Case.raw("SELECT * FROM no_such_table")

        with pytest.raises(Exception, match="no_such_table"):
            await failing()
        await probe("after")
        await unit.commit()
    finally:
        await unit.close()
    assert await _names() == ["after"]


@pytest.fixture
def private_broker():
    """A broker of the service's class on the real Redis, in a namespace of its own."""
    from dramatiq.brokers.redis import RedisBroker

    from workers.broker import StationRedisBroker

    broker = StationRedisBroker(
        url=os.environ["REDIS_URL"], namespace=f"unit-{secrets.token_hex(4)}"
    )
    broker.declare_queue("default")
    yield broker
    broker.flush_all()
    assert isinstance(broker, RedisBroker)


def _message(broker):
    from dramatiq import Message

    return Message(queue_name="default", actor_name="noop", args=(), kwargs={}, options={})


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_messages_of_a_request_are_sent_only_after_its_commit(private_broker, outcome):
    from rescue.audit.unit import open_unit
    from rescue.cases.tables import Case

    unit = await open_unit(Case._meta.db)
    try:
        private_broker.enqueue(_message(private_broker))
        assert private_broker.do_qsize("default") == 0  # not yet
        if outcome == "commit":
            await unit.commit()
            await unit.close()
            unit.run_committed()
        else:
            await unit.rollback()
    finally:
        await unit.close()
    sent = private_broker.do_qsize("default")
    assert sent == (1 if outcome == "commit" else 0)
    # Outside a request, a message goes at once.
    private_broker.enqueue(_message(private_broker))
    assert private_broker.do_qsize("default") == sent + 1
