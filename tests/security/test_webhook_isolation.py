"""Issue 11, defect 6: one hanging webhook receiver slowed every endpoint's deliveries.

A real HTTP receiver (tests/webhook_receiver.py) serves two endpoints: one hangs (its answers
wait until the test lets them go), one answers at once. The healthy endpoint's deliveries are
all delivered while the hanging one's first attempts are still open; the hanging endpoint never
has more requests in flight than its concurrency; after N failures in a row its circuit opens
and what was claimed for it is not sent; after the cool-down one probe goes, and a good answer
closes the circuit. Results are decided by order and state, not by timing: the waits below
only poll (with a generous bound) for something that must happen.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from app.auth.scopes import Scope
from app.db import Database
from app.kit.time import now
from app.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.circuit import Breaker, Circuit, after, verdict
from app.webhooks.worker import send_due
from tests.conftest import MakeApi, MakeApp
from tests.kit.webhook_events import THEME_UPDATED, drain, emit_events
from tests.webhook_receiver import Answer, Receiver

PATH = "/v1/webhook-endpoints"
PER_ENDPOINT = 2
THRESHOLD = 3


@dataclass
class Setup:
    database: Database
    receiver: Receiver
    register: Callable[[], Awaitable[dict[str, Any]]]


@pytest.fixture
async def setup(
    app_factory: MakeApp, make_api: MakeApi, receiver: Receiver
) -> AsyncIterator[Setup]:
    app, http = await app_factory(
        webhook_allowed_urls=[receiver.allowed],
        # Longer than the test: a hanging attempt ends when the test lets it, not by timing.
        webhook_timeout_seconds=30,
        webhook_concurrency=4,
        webhook_endpoint_concurrency=PER_ENDPOINT,
        webhook_circuit_failures=THRESHOLD,
    )
    api = await make_api(Scope.admin, client=http)
    database: Database = app.state.database
    async with database.transaction() as session:
        # Endpoints other tests left (their receivers are gone) must not share the worker.
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_reason="left by an earlier test")
        )
    await drain(database)

    async def register() -> dict[str, Any]:
        response = await api.post(
            PATH, json={"url": receiver.new_url(), "event_types": [THEME_UPDATED]}
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    yield Setup(database, receiver, register)
    async with database.transaction() as session:
        await session.execute(
            delete(WebhookEndpoint).where(WebhookEndpoint.url.startswith(receiver.base + "/"))
        )


async def deliveries(database: Database, endpoint: dict[str, Any]) -> list[WebhookDelivery]:
    async with database.transaction() as session:
        return list(
            (
                await session.scalars(
                    select(WebhookDelivery).where(
                        WebhookDelivery.endpoint_id == uuid.UUID(endpoint["id"])
                    )
                )
            ).all()
        )


async def circuit_of(database: Database, endpoint: dict[str, Any]) -> Circuit:
    async with database.transaction() as session:
        row = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
        assert row is not None
        return Circuit(row.circuit_failures, row.circuit_open_until, row.circuit_trips)


async def until(check: Callable[[], Awaitable[bool]], what: str, bound: float = 20.0) -> None:
    """Poll until ``check`` holds; the bound is generous and decides nothing but failure."""
    for _ in range(int(bound / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_a_hanging_receiver_does_not_hold_up_a_healthy_one(setup: Setup) -> None:
    database, receiver = setup.database, setup.receiver
    # The hanging endpoint subscribes to the same events: twelve deliveries, six of them older
    # than the healthy one's six. Before the fix they filled every lane of the batch and the
    # healthy ones waited behind them.
    hanging = await setup.register()
    release = threading.Event()
    receiver.route(hanging["url"], Answer(503, hold=release))
    await emit_events(database, 6)
    await drain(database)
    healthy = await setup.register()
    receiver.route(healthy["url"], Answer(200))
    await emit_events(database, 6)
    await drain(database)

    sending = asyncio.create_task(send_due(database))
    try:

        async def healthy_done() -> bool:
            return {d.status for d in await deliveries(database, healthy)} == {"delivered"}

        await until(healthy_done, "the healthy endpoint's deliveries delivered")
        # Meanwhile the hanging endpoint has exactly its concurrency in flight, nothing settled.
        assert len(receiver.to(healthy["url"])) == 6
        assert len(receiver.to(hanging["url"])) == PER_ENDPOINT
        stuck = await deliveries(database, hanging)
        assert {d.status for d in stuck} == {"pending"}
        assert sorted(d.attempts for d in stuck) == [0] * (12 - PER_ENDPOINT) + [1] * PER_ENDPOINT
        assert not sending.done()
    finally:
        release.set()  # the hung requests now answer 503, and so does every later one
    await asyncio.wait_for(sending, 30)

    # THRESHOLD failures in a row opened the circuit: the requests already started when it
    # opened were made, the rest were released unsent, keeping their retries.
    made = len(receiver.to(hanging["url"]))
    assert THRESHOLD <= made <= THRESHOLD + PER_ENDPOINT - 1
    circuit = await circuit_of(database, hanging)
    assert circuit.failures == made and circuit.trips >= 1
    assert circuit.open_until is not None and circuit.open_until > now()
    rows = await deliveries(database, hanging)
    assert sorted(d.attempts for d in rows) == [0] * (12 - made) + [1] * made
    assert all(d.locked_by is None for d in rows)

    # Open: nothing more is claimed for it.
    await send_due(database)
    assert len(receiver.to(hanging["url"])) == made

    # Half-open after the cool-down: one probe. It fails: open again, for longer.
    later = now() + timedelta(hours=1)
    await send_due(database, at=later)
    assert len(receiver.to(hanging["url"])) == made + 1
    reopened = await circuit_of(database, hanging)
    assert reopened.failures == made + 1 and reopened.trips == circuit.trips + 1
    assert reopened.open_until is not None and reopened.open_until > later

    # The next probe is answered: the circuit closes and the rest follow in the same pass.
    receiver.route(hanging["url"], Answer(200))
    await send_due(database, at=later + timedelta(hours=1))
    assert {d.status for d in await deliveries(database, hanging)} == {"delivered"}
    assert await circuit_of(database, hanging) == Circuit(0, None, reopened.trips)
    assert len(receiver.to(healthy["url"])) == 6  # the healthy endpoint got each message once


async def test_timeouts_count_as_failures_and_open_the_circuit(setup: Setup) -> None:
    """A receiver that never answers: each attempt ends at the timeout (here a short one) as
    `timeout`, and the circuit opens after THRESHOLD of them, with one request at a time."""
    narrow = Database(
        setup.database.settings.model_copy(
            update={"webhook_timeout_seconds": 0.3, "webhook_endpoint_concurrency": 1}
        )
    )
    receiver = setup.receiver
    hanging = await setup.register()
    never = threading.Event()
    receiver.route(hanging["url"], Answer(200, hold=never))
    await emit_events(setup.database, 5)
    await drain(setup.database)
    try:
        await send_due(narrow)
    finally:
        never.set()
        await narrow.dispose()
    assert len(receiver.to(hanging["url"])) == THRESHOLD
    rows = await deliveries(setup.database, hanging)
    assert sorted(d.attempts for d in rows) == [0] * (5 - THRESHOLD) + [1] * THRESHOLD
    assert {d.last_error for d in rows if d.attempts} == {"timeout"}
    circuit = await circuit_of(setup.database, hanging)
    assert circuit.failures == THRESHOLD and circuit.open_until is not None


def test_what_counts_and_how_long_the_circuit_stays_open() -> None:
    breaker = Breaker(3, timedelta(seconds=30), timedelta(minutes=10))
    assert [verdict(200, None), verdict(404, None), verdict(410, "gone")] == [True] * 3
    assert [verdict(500, None), verdict(429, None), verdict(None, "timeout")] == [False] * 3
    assert [verdict(None, "connect"), verdict(None, "protocol")] == [False, False]
    assert verdict(None, "not_allowed") is None and verdict(None, "internal_address") is None
    at = now()
    closed = Circuit(0, None, 0)
    assert after(closed, [False, False], at, breaker) == Circuit(2, None, 0)
    assert after(closed, [False, False, True, False], at, breaker) == Circuit(1, None, 0)
    tripped = after(closed, [False] * 3, at, breaker)
    assert tripped == Circuit(3, at + timedelta(seconds=30), 1)
    assert not tripped.may_probe(breaker, at)
    assert tripped.may_probe(breaker, at + timedelta(seconds=31))
    assert after(tripped, [False], at, breaker).open_until == at + timedelta(seconds=60)
    assert after(tripped, [None, True], at, breaker) == Circuit(0, None, 1)
    assert breaker.cooldown_after(50) == timedelta(minutes=10)
