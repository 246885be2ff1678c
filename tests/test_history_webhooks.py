"""The webhook fan-out carries `history.imported` like any other event (issue 14): an endpoint
subscribed to it gets one signed, thin delivery per committed batch of an import, naming the
import, and nothing per imported death."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, select, update
from standardwebhooks import Webhook

from app.auth.scopes import Scope
from app.db import Database
from app.events.feed import Position
from app.models import OutboxEvent, WebhookDispatcher, WebhookEndpoint
from app.webhooks.worker import DISPATCHER, fan_out, send_due
from tests.conftest import MakeApi, MakeApp
from tests.history_records import bundle, history_record, utc
from tests.webhook_receiver import Receiver


async def drain(database: Database) -> None:
    """Fan out every event committed so far (on PostgreSQL the feed hands an event out once
    every older transaction on the server has ended: poll)."""
    async with database.transaction() as session:
        latest = (
            await session.execute(
                select(OutboxEvent.txid, OutboxEvent.seq)
                .order_by(OutboxEvent.txid.desc(), OutboxEvent.seq.desc())
                .limit(1)
            )
        ).first()
    target = Position(latest.txid, latest.seq) if latest else Position(0, 0)
    for _ in range(6000):
        await fan_out(database, max_pages=100_000)
        async with database.transaction() as session:
            reached = await session.get(WebhookDispatcher, DISPATCHER)
        if (
            reached is not None
            and reached.txid is not None
            and reached.seq is not None
            and Position(reached.txid, reached.seq) >= target
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the change feed did not reach the test's events")


async def test_history_imported_is_delivered_once_per_batch(
    app_factory: MakeApp, make_api: MakeApi, receiver: Receiver
) -> None:
    app, http = await app_factory(
        webhook_allowed_urls=[receiver.allowed], webhook_timeout_seconds=2, history_batch_size=2
    )
    database: Database = app.state.database
    api = await make_api(Scope.admin, client=http)
    async with database.transaction() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_reason="left by an earlier test")
        )
    await drain(database)
    try:
        registered = await api.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.new_url(), "event_types": ["history.imported", "death.*"]},
        )
        assert registered.status_code == 201, registered.text
        secret = registered.json()["secret"]
        records = [history_record(utc(2019, 6, 1, 12, 0)) for _ in range(3)]
        posted = await api.post(
            "/v1/history/imports",
            content=bundle(records),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert posted.status_code == 202
        job_url = posted.headers["Location"]
        for _ in range(2000):
            job = (await api.get(job_url)).json()
            if job["status"] == "completed":
                break
            await asyncio.sleep(0.01)
        assert (job["created"], len(job["batches"])) == (3, 2)
        await drain(database)
        await send_due(database)
        received = receiver.of_resource(job["id"])
        messages = [Webhook(secret).verify(r.body, r.headers) for r in received]
        assert sorted(m["id"] for m in messages) == sorted(b["event"] for b in job["batches"])
        for message in messages:
            assert message["type"] == "history.imported"
            assert message["data"]["resource_type"] == "history_import"
            assert message["data"]["death_id"] is None
            assert set(message["data"]["changed"]) == {"deaths", "screenings"}
        # Subscribed to death.* as well, yet no death.created for imported deaths.
        for record in records:
            assert record["death"]["nhs_number"].encode() not in b"".join(r.body for r in received)
        assert all(r.headers.get("webhook-id") for r in received)
    finally:
        async with database.transaction() as session:
            await session.execute(
                delete(WebhookEndpoint).where(WebhookEndpoint.url.startswith(receiver.base + "/"))
            )
