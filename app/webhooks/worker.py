"""The webhook worker: fan events out into deliveries, then send the deliveries that are due.

**Fan-out.** One row (webhook_dispatcher) holds the change-feed position up to which events
have become deliveries. A pass locks it (FOR UPDATE SKIP LOCKED on PostgreSQL: one worker
fans out, the others skip; SQLite's writers take turns), reads the next page of the feed,
inserts one delivery per enabled endpoint whose types match (ON CONFLICT DO NOTHING on
(endpoint, event)) and moves the position, all in one transaction. The feed only hands out
committed events, so a change that rolled back never becomes a delivery; an endpoint only gets
events that occurred after it was registered.

**Sending.** A pass claims a batch of due deliveries (`UPDATE ... WHERE id IN (SELECT ... FOR
UPDATE SKIP LOCKED)`), which sets a lease (locked_by, locked_until) long enough for the whole
batch (claim_lease), and commits. It sends the batch in `webhook_concurrency` lanes. Before each
send, a bookkeeping round checks that the delivery is still this worker's, takes the attempt
number and renews the lease to cover that one attempt and its recording (attempt_lease); a
delivery another worker took meanwhile is skipped. When the attempt ends, the next round logs
it and settles the delivery (only if it is still this worker's): so an attempt is sent only
under a live lease, and recorded as soon as it ends, not when the batch does. A round is one
transaction for whatever the lanes have asked since the last (book()). Each POST is signed per
Standard Webhooks, never follows a redirect, has a total time limit and reads no body. 2xx:
delivered. 410: dead, and the endpoint is disabled. 429 with Retry-After: the next attempt
then. Anything else: retried on SCHEDULE, with jitter, counted from the attempt's end, then
dead.

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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

import httpx
from sqlalchemy import bindparam, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import Database
from app.events.feed import Position, head_position, read_feed
from app.kit.sql import insert_for, insert_unless_exists, table_of
from app.kit.time import now
from app.models import WebhookAttempt, WebhookDelivery, WebhookDispatcher, WebhookEndpoint
from app.webhooks.addresses import AddressRefused, CheckedTransport
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

# What a lease allows beyond the attempts it covers: the bookkeeping round that records an
# attempt (a transaction), and a worker's event loop being slow for a while.
LEASE_MARGIN = timedelta(seconds=60)

Clock = Callable[[], datetime]


def attempt_lease(timeout_seconds: float, margin: timedelta = LEASE_MARGIN) -> timedelta:
    """How long a delivery stays this worker's from the start of an attempt: the attempt
    itself (send() bounds it by the timeout) and the round that records it."""
    return timedelta(seconds=timeout_seconds) + margin


def claim_lease(
    batch: int, concurrency: int, timeout_seconds: float, margin: timedelta = LEASE_MARGIN
) -> timedelta:
    """How long a claimed batch is held before its attempts start: the batch is sent in
    ``concurrency`` lanes, so the last delivery of a lane starts after ceil(batch /
    concurrency) - 1 attempts ahead of it, each bounded by the timeout. (Were it to lapse all
    the same, a delivery another worker claimed meanwhile is skipped: see book().)"""
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
    attempt: int = 0  # the attempt's number once it has started (0: claimed, not started)


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


@dataclass(frozen=True)
class Finished:
    """An attempt that was made, to be logged and settled."""

    claimed: Claimed
    outcome: Outcome
    at: datetime  # the worker's clock when the attempt ended: the retry's wait starts here


async def claim_due(
    database: Database,
    worker: str,
    at: datetime,
    limit: int = CLAIM_BATCH,
    lease: timedelta | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of enabled endpoints, in a transaction of its own
    (committed before anything is sent). No attempt number is taken yet: book()
    takes it just before each send, once it has confirmed the lease is still this worker's."""
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
        except AddressRefused:
            error_kind = "internal_address"
            # Each refusal, so that an endpoint that can never be reached is seen at once.
            logger.warning(
                "webhook attempt refused: the host resolves to an internal address",
                extra={
                    "endpoint_id": str(claimed.endpoint_id),
                    "delivery_id": str(claimed.delivery_id),
                },
            )
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


def _settlement(finished: Finished, rng: random.Random) -> dict[str, Any]:
    """The delivery's new state after an attempt, counted from when the attempt ended."""
    outcome, at = finished.outcome, finished.at
    values: dict[str, Any] = {
        "id": finished.claimed.delivery_id,
        "locked_by": None,
        "locked_until": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error_kind,
        "updated_at": at,
    }
    if outcome.delivered:
        values.update(status=DeliveryStatus.delivered.value, next_attempt_at=None, delivered_at=at)
    else:
        wait = next_wait(finished.claimed.attempt, outcome, rng)
        if wait is None:
            values.update(status=DeliveryStatus.dead.value, next_attempt_at=None)
        else:
            values.update(status=DeliveryStatus.failed.value, next_attempt_at=at + wait)
    return values


@cache
def _locking(postgres: bool) -> Any:
    """The deliveries a round names, with what decides whether this worker may settle or
    start them; locked in id order on PostgreSQL (SQLite's write transactions take turns)."""
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.locked_by,
            WebhookDelivery.status,
            WebhookDelivery.attempts,
            WebhookEndpoint.enabled,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(bindparam("ids", expanding=True)))
        .order_by(WebhookDelivery.id)
    )
    return query.with_for_update(of=WebhookDelivery) if postgres else query


@cache
def _by_id(columns: tuple[str, ...]) -> Any:
    """UPDATE webhook_deliveries SET <columns> WHERE id = :row_id, for executemany."""
    table = table_of(WebhookDelivery)
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({name: bindparam(name) for name in columns})
    )


@cache
def _log() -> Any:
    return insert(table_of(WebhookAttempt))


@cache
def _disable() -> Any:
    """Switch an endpoint off after a 410 (if it is still on)."""
    table = table_of(WebhookEndpoint)
    return (
        update(table)
        .where(table.c.id == bindparam("endpoint_id"), table.c.enabled.is_(True))
        .values(
            enabled=False,
            disabled_reason=GONE_REASON,
            disabled_at=bindparam("at"),
            version=table.c.version + 1,
            updated_at=bindparam("at"),
        )
    )


async def _update_by_id(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """UPDATEs of deliveries by id, one executemany per set of columns."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        values = {name: value for name, value in row.items() if name != "id"}
        shapes.setdefault(tuple(sorted(values)), []).append({"row_id": row["id"], **values})
    for columns, params in shapes.items():
        await connection.execute(_by_id(columns), params)


@dataclass(frozen=True)
class Booked:
    started: dict[uuid.UUID, int]  # delivery -> the number of the attempt it may now make
    settled: frozenset[uuid.UUID]  # finished attempts whose delivery this worker still held


async def book(
    database: Database,
    worker: str,
    finished: Sequence[Finished],
    starting: Sequence[Claimed],
    at: datetime,
    rng: random.Random,
    lease: timedelta,
) -> Booked:
    """One bookkeeping round, in one transaction: log the ``finished`` attempts and settle
    their deliveries, then start the ``starting`` ones.

    Every delivery named is locked first, in id order (so that two workers' rounds never wait
    on each other in a cycle), and read: who holds it, its status, its endpoint's switch.

    - A finished attempt is always logged: the request was made. Its delivery is settled
      (status, next attempt counted from the attempt's end, lease released) only if this worker
      still holds it; if the lease ran out and another worker took the delivery, that worker's
      attempt decides (a warning is logged). A 410 disables the endpoint.
    - An attempt starts only if this worker still holds the delivery, it is still open and its
      endpoint enabled: the attempt number is taken (attempts + 1) and the lease renewed to
      ``at + lease``, which covers the attempt and its recording. A delivery another worker
      holds now is skipped; one this worker holds but may not send (its endpoint was disabled
      meanwhile, by a 410 in this round for instance) is released to wait.

    One commit per round rather than per message (commits are what a busy database makes
    slow); Core statements built once, executemany for the rows (a round runs for every few
    messages, so the ORM's per-statement work would cost more than the database's)."""
    ids = sorted({f.claimed.delivery_id for f in finished} | {c.delivery_id for c in starting})
    if not ids:
        return Booked({}, frozenset())
    async with database.transaction() as session:
        connection = await session.connection()
        locking = _locking(_postgres(session))
        rows = {row.id: row for row in (await connection.execute(locking, {"ids": ids})).all()}

        # A delivery deleted meanwhile (with its endpoint) has no log to write to.
        logged = [f for f in finished if f.claimed.delivery_id in rows]
        settled = [f for f in logged if rows[f.claimed.delivery_id].locked_by == worker]
        for lost in (f for f in logged if rows[f.claimed.delivery_id].locked_by != worker):
            # The lease ran out during the attempt and another worker took the delivery.
            logger.warning(
                "webhook lease lost", extra={"delivery_id": str(lost.claimed.delivery_id)}
            )
        await _update_by_id(connection, [_settlement(f, rng) for f in settled])
        if logged:
            await connection.execute(
                _log(),
                [
                    {
                        "id": uuid.uuid4(),
                        "delivery_id": f.claimed.delivery_id,
                        "attempt": f.claimed.attempt,
                        "worker": worker[:100],
                        "started_at": f.outcome.started_at,
                        "finished_at": f.outcome.finished_at,
                        "duration_ms": f.outcome.duration_ms,
                        "status_code": f.outcome.status_code,
                        "error_kind": f.outcome.error_kind,
                    }
                    for f in logged
                ],
            )
        gone = {f.claimed.endpoint_id for f in settled if f.outcome.status_code == 410}
        for endpoint_id in sorted(gone):
            await connection.execute(_disable(), {"endpoint_id": endpoint_id, "at": at})

        started: dict[uuid.UUID, int] = {}
        released: list[uuid.UUID] = []
        for claimed in starting:
            row = rows.get(claimed.delivery_id)
            if row is None or row.locked_by != worker:
                continue  # deleted, or another worker holds it now: not ours to send
            if row.status in OPEN and row.enabled and claimed.endpoint_id not in gone:
                started[claimed.delivery_id] = int(row.attempts) + 1
            else:
                released.append(claimed.delivery_id)
        await _update_by_id(
            connection,
            [
                {
                    "id": delivery_id,
                    "attempts": number,
                    "locked_until": at + lease,
                    "last_attempt_at": at,
                    "updated_at": at,
                }
                for delivery_id, number in started.items()
            ]
            + [{"id": i, "locked_by": None, "locked_until": None} for i in released],
        )
    return Booked(started, frozenset(f.claimed.delivery_id for f in settled))


class _Books:
    """The bookkeeping of one batch, by one task in rounds: each round is one book() with
    everything the lanes asked for since the last (an attempt to log, the next to start), so
    that a slow receiver's attempt is recorded as soon as it ends while a fast receiver's are
    recorded many to a transaction."""

    def __init__(
        self,
        database: Database,
        worker: str,
        clock: Clock,
        rng: random.Random,
        lease: timedelta,
    ) -> None:
        self.database = database
        self.worker = worker
        self.clock = clock
        self.rng = rng
        self.lease = lease
        self._asked: list[tuple[Finished | None, Claimed | None, asyncio.Future[int | None]]] = []
        self._wake = asyncio.Event()
        self._closing = False

    async def next(self, finished: Finished | None, starting: Claimed | None) -> int | None:
        """Log and settle ``finished``, start ``starting``: its attempt number, or None when
        it must not be sent (another worker holds it now, or its endpoint was disabled)."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._asked.append((finished, starting, future))
        self._wake.set()
        return await future

    def close(self) -> None:
        """No more requests: run() returns once it has booked the last."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            if not self._asked:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            # One turn of the event loop first: attempts whose answers have already arrived
            # join this round instead of each making one of their own.
            await asyncio.sleep(0)
            asked, self._asked = self._asked, []
            booked = await book(
                self.database,
                self.worker,
                [finished for finished, _, _ in asked if finished is not None],
                [starting for _, starting, _ in asked if starting is not None],
                self.clock(),
                self.rng,
                self.lease,
            )
            for _, starting, future in asked:
                number = None if starting is None else booked.started.get(starting.delivery_id)
                future.set_result(number)


async def _send_batch(
    client: httpx.AsyncClient, books: _Books, claimed: list[Claimed], concurrency: int
) -> int:
    """Send a claimed batch in ``concurrency`` lanes; each lane, in turn, has its previous
    attempt recorded and its next one started (one request to the bookkeeper), then sends it.
    Returns how many attempts were made."""
    settings = books.database.settings
    waiting = deque(claimed)

    async def lane() -> int:
        made = 0
        finished: Finished | None = None
        while True:
            starting = waiting.popleft() if waiting else None
            if starting is None and finished is None:
                return made
            number = await books.next(finished, starting)
            finished = None
            if starting is None:
                return made
            if number is None:
                continue
            attempt = replace(starting, attempt=number)
            outcome = await send(
                client,
                attempt,
                settings.webhook_allowed_urls,
                settings.webhook_timeout_seconds,
                books.clock(),
            )
            finished = Finished(attempt, outcome, books.clock())
            made += 1

    try:
        async with asyncio.TaskGroup() as group:
            bookkeeper = group.create_task(books.run())
            lanes = [group.create_task(lane()) for _ in range(min(concurrency, len(claimed)))]
            await asyncio.wait(lanes)
            books.close()
            await bookkeeper
    except ExceptionGroup as failed:
        # A failed round (the database) ends the batch: its error, not a group of one.
        raise failed.exceptions[0] from None
    return sum(task.result() for task in lanes)


def http_client(timeout: float) -> httpx.AsyncClient:
    """No redirects, no proxies or credentials from the environment, one timeout per phase
    (send() also bounds the whole attempt), and connections only to addresses checked when
    they are made (app.webhooks.addresses)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        transport=CheckedTransport(),
    )


async def send_due(
    database: Database,
    *,
    at: datetime | None = None,
    batch: int = CLAIM_BATCH,
    max_batches: int = CLAIMS_PER_PASS,
    rng: random.Random | None = None,
    lease: timedelta | None = None,
) -> int:
    """Claim and send what is due, up to ``max_batches`` batches. Returns how many attempts
    were made.

    ``at`` stops the worker's clock at that moment (tests drive the retry schedule with it);
    by default the clock is the real time. ``lease`` replaces the claim lease (claim_lease())
    for a test that makes it shorter than a batch takes."""
    settings = database.settings
    rng = rng or random.Random()  # noqa: S311  (retry jitter, not cryptography)

    def clock() -> datetime:
        return at if at is not None else now()

    held = lease or claim_lease(
        batch, settings.webhook_concurrency, settings.webhook_timeout_seconds
    )
    sent = 0
    async with http_client(settings.webhook_timeout_seconds) as client:
        for _ in range(max_batches):
            worker = worker_name()
            claimed = await claim_due(database, worker, clock(), batch, held)
            if claimed:
                books = _Books(
                    database,
                    worker,
                    clock,
                    rng,
                    attempt_lease(settings.webhook_timeout_seconds),
                )
                sent += await _send_batch(client, books, claimed, settings.webhook_concurrency)
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
