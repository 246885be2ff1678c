"""Webhook test housekeeping."""

from __future__ import annotations

from sqlalchemy import delete

from app.db import Database
from app.models import WebhookEndpoint
from tests.webhook_receiver import Receiver


async def forget_endpoints(database: Database, receiver: Receiver) -> None:
    """Delete the endpoints this test registered: the database is shared by the whole run and
    the webhook worker's tests must not find deliveries for receivers that are gone."""
    async with database.transaction() as session:
        await session.execute(
            delete(WebhookEndpoint).where(WebhookEndpoint.url.startswith(receiver.base + "/"))
        )
