"""Claims: a worker leases the deliveries that are due before it sends them.

A claim is one transaction (committed before anything is sent): ``UPDATE ... WHERE id IN
(SELECT ... FOR UPDATE SKIP LOCKED)`` sets the lease (locked_by, locked_until) long enough for
the claimed deliveries to be started (claim_lease). No attempt number is taken yet: the
bookkeeping round just before each send does that, once it has confirmed the lease is still
this claim's (app.webhooks.books).

Per endpoint (docs/webhooks.md "Isolation"), a claim takes no more than the worker can start
soon: at most ``min(webhook_endpoint_concurrency, webhook_concurrency)`` requests per endpoint
at once, so ``depth`` (ceil(batch / concurrency)) rounds of them, less what this worker already
holds for it; only that endpoint's concurrency, less what it holds, for an endpoint whose last
attempt failed; nothing for an endpoint whose circuit is open; and one delivery, the probe, for
one whose circuit is half-open (app.webhooks.circuit).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database
from app.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.circuit import Breaker, Circuit
from app.webhooks.schemas import DeliveryStatus

CLAIM_BATCH = 100
OPEN = (DeliveryStatus.pending.value, DeliveryStatus.failed.value)

# What a lease allows beyond the attempts it covers: the bookkeeping round that records an
# attempt (a transaction), and a worker's event loop being slow for a while.
LEASE_MARGIN = timedelta(seconds=60)


def worker_name() -> str:
    """Who holds a lease: host and process (for people reading the table), and a random part
    that makes each pass its own (each claim adds its number: see send_due())."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def attempt_lease(timeout_seconds: float, margin: timedelta = LEASE_MARGIN) -> timedelta:
    """How long a delivery stays this worker's from the start of an attempt: the attempt
    itself (send() bounds it by the timeout) and the round that records it."""
    return timedelta(seconds=timeout_seconds) + margin


def claim_lease(
    batch: int, concurrency: int, timeout_seconds: float, margin: timedelta = LEASE_MARGIN
) -> timedelta:
    """How long claimed deliveries are held before their attempts start: the worker sends
    ``concurrency`` at once, and each endpoint's share of a claim is at most ``depth`` rounds
    of its own concurrency, so the last delivery starts after ceil(batch / concurrency) - 1
    attempts ahead of it, each bounded by the timeout. (Were it to lapse all the same, a
    delivery another claim took meanwhile is skipped: see app.webhooks.books.book().)"""
    rounds = -(-batch // concurrency)
    return timedelta(seconds=rounds * timeout_seconds) + margin


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    body: str
    url: str
    secrets: tuple[str, ...]
    holder: str  # locked_by as this claim set it: the delivery is still the claim's if unchanged
    trips: int  # the endpoint's circuit_trips at the claim: sent only if the circuit has not
    # opened since
    attempt: int = 0  # the attempt's number once it has started (0: claimed, not started)


def endpoint_share(settings: Settings, batch: int) -> tuple[int, int]:
    """(requests at once per endpoint and worker, deliveries a claim may hold per healthy
    endpoint)."""
    per = min(settings.webhook_endpoint_concurrency, settings.webhook_concurrency)
    depth = -(-batch // settings.webhook_concurrency)
    return per, per * depth


def _shares(
    endpoints: list[tuple[uuid.UUID, Circuit]],
    held: Mapping[uuid.UUID, int],
    settings: Settings,
    batch: int,
    at: datetime,
) -> tuple[dict[uuid.UUID, int], set[uuid.UUID]]:
    """How many due deliveries to take per endpoint, and which of them are half-open probes."""
    breaker = Breaker.of(settings)
    per, healthy = endpoint_share(settings, batch)
    shares: dict[uuid.UUID, int] = {}
    probes: set[uuid.UUID] = set()
    for endpoint_id, circuit in endpoints:
        holding = held.get(endpoint_id, 0)
        if circuit.is_tripped(breaker):
            if circuit.may_probe(breaker, at) and holding == 0:
                shares[endpoint_id] = 1
                probes.add(endpoint_id)
            continue
        share = (healthy if circuit.failures == 0 else per) - holding
        if share > 0 or holding:
            shares[endpoint_id] = max(share, 0)  # 0: none now, but say whether any is due
    return shares, probes


async def claim_due(
    database: Database,
    worker: str,
    at: datetime,
    limit: int = CLAIM_BATCH,
    lease: timedelta | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of enabled endpoints, each endpoint's share at most
    (see the module), in a transaction of its own; ``worker`` is the claim's name
    (locked_by)."""
    claimed, _ = await claim(database, worker, at, limit, lease, {})
    return claimed


async def claim(
    database: Database,
    worker: str,
    at: datetime,
    limit: int,
    lease: timedelta | None,
    held: Mapping[uuid.UUID, int],
) -> tuple[list[Claimed], set[uuid.UUID]]:
    """claim_due() for a worker that already holds ``held`` deliveries per endpoint (claimed,
    not yet finished): the claimed deliveries, and the endpoints that have more due than
    their share let this claim take (worth claiming again once their deliveries in hand
    have started)."""
    settings = database.settings
    if lease is None:
        lease = claim_lease(limit, settings.webhook_concurrency, settings.webhook_timeout_seconds)
    due = (
        WebhookDelivery.status.in_(OPEN),
        WebhookDelivery.next_attempt_at <= at,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < at),
        exists().where(
            WebhookEndpoint.id == WebhookDelivery.endpoint_id, WebhookEndpoint.enabled.is_(True)
        ),
    )
    async with database.transaction() as session:
        enabled = (
            await session.execute(
                select(
                    WebhookEndpoint.id,
                    WebhookEndpoint.circuit_failures,
                    WebhookEndpoint.circuit_open_until,
                    WebhookEndpoint.circuit_trips,
                ).where(WebhookEndpoint.enabled.is_(True))
            )
        ).all()
        shares, probes = _shares(
            [(e.id, Circuit(*e[1:])) for e in enabled], held, settings, limit, at
        )
        if not shares:
            return [], set()
        # Each endpoint's most overdue deliveries up to its share (and one more, to know whether
        # there are more), then the most overdue of those up to the limit. (No lock here: a
        # window function cannot take FOR UPDATE.)
        ranked = (
            select(
                WebhookDelivery.id,
                WebhookDelivery.endpoint_id,
                WebhookDelivery.next_attempt_at,
                func.row_number()
                .over(
                    partition_by=WebhookDelivery.endpoint_id,
                    order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
                )
                .label("place"),
            )
            .where(WebhookDelivery.endpoint_id.in_(list(shares)), *due[:3])
            .subquery()
        )
        ranks = (
            await session.execute(
                select(ranked.c.id, ranked.c.endpoint_id, ranked.c.place)
                .where(ranked.c.place <= case(shares, value=ranked.c.endpoint_id, else_=0) + 1)
                .order_by(ranked.c.next_attempt_at, ranked.c.id)
            )
        ).all()
        within = [r for r in ranks if r.place <= shares[r.endpoint_id]]
        candidates = within[:limit]
        waiting = {r.endpoint_id for r in ranks if r.place > shares[r.endpoint_id]}
        waiting |= {r.endpoint_id for r in within[limit:]}
        chosen = [c.id for c in candidates if c.endpoint_id not in probes]
        for c in candidates:
            if c.endpoint_id in probes and await _take_probe(session, c.endpoint_id, at, lease):
                chosen.append(c.id)
        if not chosen:
            return [], waiting
        batch = select(WebhookDelivery.id).where(WebhookDelivery.id.in_(chosen), *due)
        if _postgres(session):
            batch = batch.with_for_update(skip_locked=True, of=WebhookDelivery)
        # The conditions again on the UPDATE: a row another transaction claimed meanwhile is
        # re-checked against its committed state (PostgreSQL) and no longer matches.
        claimed = (
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(batch.scalar_subquery()), *due)
                .values(locked_by=worker, locked_until=at + lease, updated_at=at)
                .returning(
                    WebhookDelivery.id,
                    WebhookDelivery.endpoint_id,
                    WebhookDelivery.event_id,
                    WebhookDelivery.body,
                    WebhookDelivery.next_attempt_at,
                )
                .execution_options(synchronize_session=False)
            )
        ).all()
        if not claimed:
            return [], waiting
        endpoint_ids = {row.endpoint_id for row in claimed}
        endpoints = {
            endpoint.id: endpoint
            for endpoint in (
                await session.scalars(
                    select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids))
                )
            ).all()
        }
    result = []
    # Most overdue first, as the batch was chosen (RETURNING keeps no order).
    for row in sorted(claimed, key=lambda row: (row.next_attempt_at, row.id)):
        endpoint = endpoints[row.endpoint_id]
        secrets = [endpoint.secret]
        if (
            endpoint.previous_secret is not None
            and endpoint.previous_secret_expires_at is not None
            and endpoint.previous_secret_expires_at > at
        ):
            secrets.append(endpoint.previous_secret)
        result.append(
            Claimed(
                delivery_id=row.id,
                endpoint_id=row.endpoint_id,
                message_id=str(row.event_id),
                body=row.body,
                url=endpoint.url,
                secrets=tuple(secrets),
                holder=worker,
                trips=endpoint.circuit_trips,
            )
        )
    return result, waiting


async def _take_probe(
    session: AsyncSession, endpoint_id: uuid.UUID, at: datetime, lease: timedelta
) -> bool:
    """Make this claim the half-open endpoint's one probe: move circuit_open_until past the
    claim's lease, unless another worker did first (the condition is re-checked against the
    committed row on PostgreSQL)."""
    taken = await session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint_id,
            or_(
                WebhookEndpoint.circuit_open_until.is_(None),
                WebhookEndpoint.circuit_open_until <= at,
            ),
        )
        .values(circuit_open_until=at + lease)
        .returning(WebhookEndpoint.id)
        .execution_options(synchronize_session=False)
    )
    return taken.first() is not None
