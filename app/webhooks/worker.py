"""The webhook worker: fan events out into deliveries, then send the deliveries that are due.

**Fan-out.** One row (webhook_dispatcher) holds the change-feed position up to which events
have become deliveries. A pass locks it (FOR UPDATE SKIP LOCKED on PostgreSQL: one worker
fans out, the others skip; SQLite's writers take turns), reads the next page of the feed,
inserts one delivery per enabled endpoint whose types match (ON CONFLICT DO NOTHING on
(endpoint, event)) and moves the position, all in one transaction. The feed only hands out
committed events, so a change that rolled back never becomes a delivery; an endpoint only gets
events that occurred after it was registered.

**Sending.** A pass claims due deliveries (`UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
LOCKED)`), which sets a lease (locked_by, locked_until) and takes the next attempt number, and
commits; so two workers never send the same attempt. Then it POSTs each (several at once),
signed per Standard Webhooks, never following a redirect, with a total time limit, reading
no body; and records the attempt in the log and the outcome on the delivery, in a transaction
that only counts if the lease is still its own. 2xx: delivered. 410: dead, and the endpoint is
disabled. 429 with Retry-After: the next attempt then. Anything else: retried on SCHEDULE, with
jitter, then dead.

The clock (`at`) is a parameter so that tests drive the schedule without sleeping. The
signature's timestamp is always the real time of sending (receivers reject old messages).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.events.feed import Position, head_position, read_feed
from app.kit.sql import insert_for, insert_unless_exists
from app.kit.time import now
from app.models import WebhookAttempt, WebhookDelivery, WebhookDispatcher, WebhookEndpoint
from app.webhooks.payload import event_body
from app.webhooks.schemas import DeliveryStatus, subscribed
from app.webhooks.signing import signed_headers
from app.webhooks.urls import is_allowed
from app.worker import Worker

logger = logging.getLogger("app.webhooks")

# The wait after each failed attempt (Standard Webhooks' schedule after the first, immediate,
# attempt); the attempt after the last wait is the last one.
SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.1  # each wait is stretched or shrunk by up to 10%
MAX_RETRY_AFTER = timedelta(hours=24)
DISPATCHER = "default"
FANOUT_PAGE = 500
FANOUT_PAGES_PER_PASS = 20
CLAIM_BATCH = 100
CLAIMS_PER_PASS = 10
GONE_REASON = "the endpoint answered 410 Gone"

OPEN = (DeliveryStatus.pending.value, DeliveryStatus.failed.value)


def worker_name() -> str:
    """Who holds a lease: host and process (for people reading the table), and a random part
    that makes each claim its own."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- fan-out ----------------------------------------------------------------------------------


async def _fan_out_page(session: AsyncSession, page_size: int) -> tuple[int, bool] | None:
    """One page of the feed into deliveries. None when another worker holds the dispatcher;
    otherwise (deliveries created, whether there may be more)."""
    query = select(WebhookDispatcher).where(WebhookDispatcher.name == DISPATCHER)
    if _postgres(session):
        query = query.with_for_update(skip_locked=True)
    dispatcher = await session.scalar(query)
    if dispatcher is None:
        # Locked by another worker, or (a damaged database) missing: put it back, from "now".
        head = await head_position(session)
        await insert_unless_exists(
            session,
            WebhookDispatcher,
            ("name",),
            {"name": DISPATCHER, "txid": head.txid, "seq": head.seq, "updated_at": now()},
            returning=("name",),
        )
        return None
    after = (
        Position(dispatcher.txid, dispatcher.seq)
        if dispatcher.txid is not None and dispatcher.seq is not None
        else None
    )
    endpoints = (
        await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types, WebhookEndpoint.created_at)
            .where(WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.id)
        )
    ).all()
    if not endpoints:
        # Nobody listens: skip to the head rather than walk the history later.
        head = await head_position(session)
        _move(dispatcher, head if after is None else max(head, after))
        return 0, False
    page = await read_feed(session, after, page_size)
    moment = now()
    rows: list[dict[str, Any]] = []
    for event in page.events:
        body: str | None = None
        for endpoint_id, types, created_at in endpoints:
            if not subscribed(event.type, types) or event.occurred_at < created_at:
                continue
            body = body or event_body(event)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "endpoint_id": endpoint_id,
                    "event_id": event.id,
                    "event_type": event.type,
                    "body": body,
                    "status": DeliveryStatus.pending.value,
                    "attempts": 0,
                    "next_attempt_at": moment,
                    "created_at": moment,
                    "updated_at": moment,
                }
            )
    if rows:
        statement = insert_for(session, WebhookDelivery).on_conflict_do_nothing(
            index_elements=["endpoint_id", "event_id"]
        )
        await session.execute(statement, rows)
    if page.next is not None:
        _move(dispatcher, page.next)
    return len(rows), len(page.events) == page_size


def _move(dispatcher: WebhookDispatcher, position: Position) -> None:
    dispatcher.txid, dispatcher.seq = position.txid, position.seq
    dispatcher.updated_at = now()


async def fan_out(
    database: Database, *, page_size: int = FANOUT_PAGE, max_pages: int = FANOUT_PAGES_PER_PASS
) -> int:
    """Turn new committed events into deliveries, a page per transaction. Returns how many
    deliveries were created (0 when another worker is fanning out)."""
    created = 0
    for _ in range(max_pages):
        async with database.transaction() as session:
            result = await _fan_out_page(session, page_size)
        if result is None:
            break
        count, more = result
        created += count
        if not more:
            break
    return created


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    body: str
    attempt: int
    url: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    status_code: int | None
    error_kind: str | None
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def claim_due(
    database: Database, worker: str, at: datetime, limit: int = CLAIM_BATCH
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of enabled endpoints and take their next attempt
    numbers, in a transaction of its own (committed before anything is sent)."""
    lease = timedelta(seconds=database.settings.webhook_timeout_seconds + 60)
    due = (
        WebhookDelivery.status.in_(OPEN),
        WebhookDelivery.next_attempt_at <= at,
        or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < at),
        exists().where(
            WebhookEndpoint.id == WebhookDelivery.endpoint_id, WebhookEndpoint.enabled.is_(True)
        ),
    )
    async with database.transaction() as session:
        batch = (
            select(WebhookDelivery.id)
            .where(*due)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if _postgres(session):
            batch = batch.with_for_update(skip_locked=True, of=WebhookDelivery)
        # The conditions again on the UPDATE: a row another transaction claimed meanwhile is
        # re-checked against its committed state (PostgreSQL) and no longer matches.
        claimed = (
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(batch.scalar_subquery()), *due)
                .values(
                    locked_by=worker,
                    locked_until=at + lease,
                    attempts=WebhookDelivery.attempts + 1,
                    last_attempt_at=at,
                    updated_at=at,
                )
                .returning(
                    WebhookDelivery.id,
                    WebhookDelivery.endpoint_id,
                    WebhookDelivery.event_id,
                    WebhookDelivery.body,
                    WebhookDelivery.attempts,
                )
                .execution_options(synchronize_session=False)
            )
        ).all()
        if not claimed:
            return []
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
    for row in claimed:
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
                attempt=int(row.attempts),
                url=endpoint.url,
                secrets=tuple(secrets),
            )
        )
    return result


def _retry_after(value: str | None, at: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date (RFC 9110), bounded; None when absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        if value.isdigit():
            wait = timedelta(seconds=int(value))
        else:
            wait = parsedate_to_datetime(value) - at
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)


async def send(
    client: httpx.AsyncClient,
    claimed: Claimed,
    allowed: list[str],
    limit_seconds: float,
    at: datetime,
) -> Outcome:
    """POST one attempt. Never raises for what the receiver or the network does."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    status_code: int | None = None
    error_kind: str | None = None
    retry_after: timedelta | None = None
    if not is_allowed(claimed.url, allowed):
        error_kind = "not_allowed"
    else:
        headers = signed_headers(claimed.message_id, started, claimed.body, claimed.secrets)
        try:
            async with asyncio.timeout(limit_seconds):
                # stream(): the response body is never read (nor stored).
                async with client.stream(
                    "POST", claimed.url, content=claimed.body.encode(), headers=headers
                ) as response:
                    status_code = response.status_code
                    if status_code == 429:
                        retry_after = _retry_after(response.headers.get("retry-after"), at)
        except TimeoutError:
            error_kind = "timeout"
        except httpx.TimeoutException:
            error_kind = "timeout"
        except (httpx.ConnectError, httpx.NetworkError):
            error_kind = "connect"
        except httpx.HTTPError:
            error_kind = "protocol"
        if status_code is not None and not 200 <= status_code < 300:
            error_kind = "gone" if status_code == 410 else "http_status"
    finished = datetime.now(UTC)
    return Outcome(
        started_at=started,
        finished_at=finished,
        duration_ms=round((time.perf_counter() - clock) * 1000),
        status_code=status_code,
        error_kind=error_kind,
        retry_after=retry_after,
    )


def next_wait(attempt: int, outcome: Outcome, rng: random.Random) -> timedelta | None:
    """How long until the next attempt after failed attempt number ``attempt``; None when
    there is none (out of retries, or 410)."""
    if outcome.status_code == 410 or attempt >= MAX_ATTEMPTS:
        return None
    if outcome.retry_after is not None:
        return outcome.retry_after
    base = SCHEDULE[attempt - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def _settlement(
    claimed: Claimed, outcome: Outcome, at: datetime, rng: random.Random
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "locked_by": None,
        "locked_until": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error_kind,
        "updated_at": at,
    }
    if outcome.delivered:
        values.update(status=DeliveryStatus.delivered.value, next_attempt_at=None, delivered_at=at)
    else:
        wait = next_wait(claimed.attempt, outcome, rng)
        if wait is None:
            values.update(status=DeliveryStatus.dead.value, next_attempt_at=None)
        else:
            values.update(status=DeliveryStatus.failed.value, next_attempt_at=at + wait)
    return values


async def record(
    database: Database,
    worker: str,
    claimed: Claimed,
    outcome: Outcome,
    at: datetime,
    rng: random.Random,
) -> bool:
    """Log one attempt and settle its delivery, if the lease is still this worker's."""
    return await record_all(database, worker, [(claimed, outcome)], at, rng) == 1


async def record_all(
    database: Database,
    worker: str,
    results: Sequence[tuple[Claimed, Outcome]],
    at: datetime,
    rng: random.Random,
) -> int:
    """Log a batch's attempts and settle their deliveries in one transaction: one commit per
    batch rather than per message (commits are what a busy database makes slow), and one
    UPDATE per distinct outcome (every 2xx of a batch settles alike). Only deliveries whose
    lease is still this worker's are settled and logged. Returns how many."""
    groups: dict[tuple[tuple[str, Any], ...], list[Claimed]] = {}
    outcomes: dict[uuid.UUID, Outcome] = {}
    for claimed, outcome in results:
        settlement = _settlement(claimed, outcome, at, rng)
        groups.setdefault(tuple(sorted(settlement.items())), []).append(claimed)
        outcomes[claimed.delivery_id] = outcome
    async with database.transaction() as session:
        settled: list[Claimed] = []
        for values, members in groups.items():
            ids = set(
                (
                    await session.scalars(
                        update(WebhookDelivery)
                        .where(
                            WebhookDelivery.id.in_([c.delivery_id for c in members]),
                            WebhookDelivery.locked_by == worker,
                        )
                        .values(dict(values))
                        .returning(WebhookDelivery.id)
                        .execution_options(synchronize_session=False)
                    )
                ).all()
            )
            settled.extend(c for c in members if c.delivery_id in ids)
            for lost in (c for c in members if c.delivery_id not in ids):
                # The lease ran out and another worker took the delivery: its attempt counts.
                logger.warning("webhook lease lost", extra={"delivery_id": str(lost.delivery_id)})
        if not settled:
            return 0
        await session.execute(
            insert(WebhookAttempt),
            [
                {
                    "id": uuid.uuid4(),
                    "delivery_id": c.delivery_id,
                    "attempt": c.attempt,
                    "worker": worker[:100],
                    "started_at": outcomes[c.delivery_id].started_at,
                    "finished_at": outcomes[c.delivery_id].finished_at,
                    "duration_ms": outcomes[c.delivery_id].duration_ms,
                    "status_code": outcomes[c.delivery_id].status_code,
                    "error_kind": outcomes[c.delivery_id].error_kind,
                }
                for c in settled
            ],
        )
        gone = sorted(
            {c.endpoint_id for c in settled if outcomes[c.delivery_id].status_code == 410}
        )
        for endpoint_id in gone:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
                .values(
                    enabled=False,
                    disabled_reason=GONE_REASON,
                    disabled_at=at,
                    version=WebhookEndpoint.version + 1,
                    updated_at=at,
                )
                .execution_options(synchronize_session=False)
            )
    return len(settled)


def http_client(timeout: float) -> httpx.AsyncClient:
    """No redirects, no proxies or credentials from the environment, one timeout per phase
    (send() also bounds the whole attempt)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
    )


async def send_due(
    database: Database,
    *,
    at: datetime | None = None,
    batch: int = CLAIM_BATCH,
    max_batches: int = CLAIMS_PER_PASS,
    rng: random.Random | None = None,
) -> int:
    """Claim and send what is due at ``at`` (now by default), up to ``max_batches`` batches.
    Returns how many attempts were made."""
    settings = database.settings
    rng = rng or random.Random()  # noqa: S311  (retry jitter, not cryptography)
    limit = asyncio.Semaphore(settings.webhook_concurrency)
    sent = 0
    async with http_client(settings.webhook_timeout_seconds) as client:
        for _ in range(max_batches):
            moment = at or now()
            worker = worker_name()
            claimed = await claim_due(database, worker, moment, batch)

            async def attempt(one: Claimed, moment: datetime = moment) -> tuple[Claimed, Outcome]:
                async with limit:
                    return one, await send(
                        client,
                        one,
                        settings.webhook_allowed_urls,
                        settings.webhook_timeout_seconds,
                        moment,
                    )

            results = await asyncio.gather(*(attempt(one) for one in claimed))
            if results:
                await record_all(database, worker, results, moment, rng)
            sent += len(claimed)
            if len(claimed) < batch:
                break
    return sent


async def run_webhooks(database: Database) -> int:
    """The worker job: fan out new events, then send what is due."""
    created = await fan_out(database)
    return created + await send_due(database)


def webhook_worker(database: Database) -> Worker:
    """The webhook loop: its own Worker, every ``webhook_worker_interval_seconds`` (a second by
    default), beside the slower loop of the other jobs."""
    return Worker(
        database,
        database.settings.webhook_worker_interval_seconds,
        jobs=(("webhooks", run_webhooks),),
    )
