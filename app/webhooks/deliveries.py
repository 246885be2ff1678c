"""The delivery log an integrator reads (deliveries of an endpoint, each with its attempts),
and the two ways to send now: replay a delivery, or send a `webhook.test` message."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import BadRequest, Conflict
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.sql import load_one
from app.kit.time import now
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.payload import test_event_body
from app.webhooks.schemas import (
    TEST_EVENT_TYPE,
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
)
from app.webhooks.service import load_endpoint


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery)


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    status: DeliveryStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryOut], str | None]:
    """An endpoint's deliveries, newest first."""
    await load_endpoint(session, principal, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if cursor is not None:
        created, last_id = await open_cursor(session, cursor, 2)
        try:
            before = (datetime.fromisoformat(str(created)), uuid.UUID(str(last_id)))
        except ValueError:
            raise BadRequest("The cursor is not one this service issued.") from None
        if before[0].tzinfo is None:
            raise BadRequest("The cursor is not one this service issued.")
        query = query.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < before)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = await sign_cursor(
            session, [page[-1].created_at.isoformat(), str(page[-1].id)]
        )
    return [delivery_out(delivery) for delivery in page], next_cursor


async def _load_delivery(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> tuple[WebhookEndpoint, WebhookDelivery]:
    endpoint = await load_endpoint(session, principal, endpoint_id)
    delivery = await load_one(
        session,
        WebhookDelivery,
        delivery_id,
        "delivery",
        for_update=for_update,
        where=(WebhookDelivery.endpoint_id == endpoint_id,),
        detail="No delivery with that id for this endpoint.",
    )
    return endpoint, delivery


async def read_delivery(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryDetail:
    _, delivery = await _load_delivery(session, principal, endpoint_id, delivery_id)
    attempts = (
        await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.attempt)
        )
    ).all()
    return DeliveryDetail.model_validate(
        {
            **delivery_out(delivery).model_dump(),
            "attempt_log": [AttemptOut.model_validate(attempt) for attempt in attempts],
        }
    )


def _must_be_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict(
            "The endpoint is disabled; enable it (PATCH enabled: true) first.",
            extra={"disabled_reason": endpoint.disabled_reason},
        )


async def replay_delivery(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryOut:
    """Make the delivery due now, whatever its status: the worker sends it within its
    interval (one more attempt; a failure follows the retry schedule from where it was, and a
    delivery out of retries is dead again)."""
    endpoint, delivery = await _load_delivery(
        session, principal, endpoint_id, delivery_id, for_update=True
    )
    _must_be_enabled(endpoint)
    moment = now()
    if delivery.locked_until is not None and delivery.locked_until > moment:
        # A worker holds it: claimed in a batch about to be sent, or being sent now.
        raise Conflict("A worker is sending this delivery right now; retry shortly.")
    delivery.status = DeliveryStatus.pending.value
    delivery.next_attempt_at = moment
    delivery.updated_at = moment
    await _end_cooldown(session, endpoint, moment)
    await session.flush()
    return delivery_out(delivery)


async def _end_cooldown(session: AsyncSession, endpoint: WebhookEndpoint, moment: datetime) -> None:
    """A replay or a test message is someone asking to try the endpoint now: if its circuit is
    open (app.webhooks.circuit), the cool-down ends, so that the next claim sends one delivery
    of the endpoint (its most overdue) as the half-open probe. Not a change to the endpoint
    as the API shows it (no new version, the same updated_at)."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.circuit_open_until > moment)
        .values(circuit_open_until=None, updated_at=WebhookEndpoint.updated_at)
        .execution_options(synchronize_session=False)
    )


async def send_test(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> DeliveryOut:
    """Queue a `webhook.test` message for the endpoint (whatever its event types)."""
    endpoint = await load_endpoint(session, principal, endpoint_id)
    _must_be_enabled(endpoint)
    moment = now()
    message_id = uuid.uuid4()
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        endpoint_id=endpoint.id,
        event_id=message_id,
        event_type=TEST_EVENT_TYPE,
        body=test_event_body(message_id, endpoint.id, moment),
        status=DeliveryStatus.pending.value,
        attempts=0,
        next_attempt_at=moment,
        locked_by=None,
        locked_until=None,
        last_attempt_at=None,
        last_status_code=None,
        last_error=None,
        delivered_at=None,
        created_at=moment,
        updated_at=moment,
    )
    session.add(delivery)
    await _end_cooldown(session, endpoint, moment)
    await session.flush()
    return delivery_out(delivery)
