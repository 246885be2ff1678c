"""The webhook worker: fan events out into deliveries, then send the deliveries that are due.

The parts, one job per module: fan-out (app.webhooks.fanout), claims and leases
(app.webhooks.claims), sending with its retry schedule (app.webhooks.sending), bookkeeping
(app.webhooks.books) and the circuit breaker per endpoint (app.webhooks.circuit). This module
runs a pass: it claims, sends every claimed delivery in a task of its own, and claims again as
the work in hand runs low, so that one endpoint's slow attempts never hold up another's.

**Isolation.** A delivery's task waits for a slot of its endpoint (at most
``webhook_endpoint_concurrency`` requests at once per endpoint) and then for one of the worker's
(``webhook_concurrency``). An endpoint whose receiver hangs fills its own slots, never all of
the worker's; its claimed deliveries wait behind its slots, not in front of other endpoints'.
The pass claims again whenever what it holds could not keep the worker's slots busy (counting
for each endpoint only what its free slots could start), so healthy endpoints keep being
claimed and sent while a hanging attempt runs out its timeout; and while attempts are still
running with nothing else due, it looks again every ``webhook_worker_interval_seconds`` (fanning
out new events first when it runs as the worker's job). After ``webhook_circuit_failures``
failures in a row an endpoint's circuit opens (app.webhooks.circuit): its claimed deliveries are
released unsent and no more are claimed until the cool-down is over.

The clock (`at`) is a parameter so that tests drive the schedule without sleeping. The
signature's timestamp is always the real time of sending (receivers reject old messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

import httpx

from app.db import Database
from app.kit.time import now
from app.webhooks.books import GONE_REASON, Booked, Books, Clock, Finished, book
from app.webhooks.claims import (
    CLAIM_BATCH,
    OPEN,
    Claimed,
    attempt_lease,
    claim,
    claim_due,
    claim_lease,
    endpoint_share,
    worker_name,
)
from app.webhooks.fanout import DISPATCHER, FANOUT_PAGE, FANOUT_PAGES_PER_PASS, fan_out
from app.webhooks.sending import (
    JITTER,
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    SCHEDULE,
    Outcome,
    http_client,
    next_wait,
    send,
)
from app.worker import Worker

__all__ = [
    "CLAIMS_PER_PASS",
    "CLAIM_BATCH",
    "DISPATCHER",
    "FANOUT_PAGE",
    "FANOUT_PAGES_PER_PASS",
    "GONE_REASON",
    "JITTER",
    "MAX_ATTEMPTS",
    "MAX_RETRY_AFTER",
    "OPEN",
    "SCHEDULE",
    "Booked",
    "Claimed",
    "Finished",
    "Outcome",
    "attempt_lease",
    "book",
    "claim_due",
    "claim_lease",
    "fan_out",
    "http_client",
    "next_wait",
    "run_webhooks",
    "send",
    "send_due",
    "webhook_worker",
    "worker_name",
]

CLAIMS_PER_PASS = 10


class _Pass:
    """One pass's deliveries in hand: claimed, waiting for a slot, sending, being recorded."""

    def __init__(
        self, client: httpx.AsyncClient, books: Books, group: asyncio.TaskGroup, per: int
    ) -> None:
        self.client = client
        self.books = books
        self.group = group
        self.per = per
        settings = books.database.settings
        self.concurrency = settings.webhook_concurrency
        self.lanes = asyncio.Semaphore(self.concurrency)
        self.slots: dict[uuid.UUID, asyncio.Semaphore] = {}
        self.held: Counter[uuid.UUID] = Counter()  # claimed, not yet finished and recorded
        self.slotted: Counter[uuid.UUID] = Counter()  # holding one of the endpoint's slots
        self.drained = False  # an endpoint's last waiting delivery has taken a slot
        self.waiting: set[uuid.UUID] = set()  # endpoints with more due than the last claim took
        self.refill = False  # one of those has run dry: claim again
        self.ended = asyncio.Event()  # set whenever a delivery's task ends, or a queue drains
        self.made = 0

    def hungry(self) -> bool:
        """Whether to claim more (when the last claim found something): the endpoints in hand
        keep fewer requests going than the worker could (an endpoint's requests are at most
        its slots, so a hanging endpoint's backlog does not count), or an endpoint's queue has
        just run dry."""
        return self.drained or sum(self.slotted.values()) < self.concurrency

    def start(self, claimed: list[Claimed]) -> None:
        for item in claimed:
            self.held[item.endpoint_id] += 1
            self.group.create_task(self._deliver(item))

    @property
    def busy(self) -> bool:
        return bool(self.held)

    async def _deliver(self, claimed: Claimed) -> None:
        """Wait for a slot of the endpoint, then one of the worker's; start the attempt (if
        the claim still holds the delivery and the circuit has not opened), send it, record
        it."""
        endpoint_id = claimed.endpoint_id
        settings = self.books.database.settings
        slot = self.slots.setdefault(endpoint_id, asyncio.Semaphore(self.per))
        try:
            finished: Finished | None = None
            async with slot:
                self.slotted[endpoint_id] += 1
                if self.held[endpoint_id] == self.slotted[endpoint_id]:
                    self._dry(endpoint_id)
                try:
                    async with self.lanes:
                        number = await self.books.next(None, claimed)
                        if number is not None:
                            attempt = replace(claimed, attempt=number)
                            outcome = await send(
                                self.client,
                                attempt,
                                settings.webhook_allowed_urls,
                                settings.webhook_timeout_seconds,
                                self.books.clock(),
                            )
                            finished = Finished(attempt, outcome, self.books.clock())
                finally:
                    self.slotted[endpoint_id] -= 1
            if finished is not None:
                self.made += 1
                await self.books.next(finished, None)
        finally:
            self.held[endpoint_id] -= 1
            if self.held[endpoint_id] <= 0:
                del self.held[endpoint_id]
                self.slotted.pop(endpoint_id, None)
            if self.held.get(endpoint_id, 0) == self.slotted.get(endpoint_id, 0):
                self._dry(endpoint_id)
            self.ended.set()

    def _dry(self, endpoint_id: uuid.UUID) -> None:
        """Nothing of this endpoint's waits for a slot any more: time to claim again (if the
        last claim found anything, or left some of this endpoint's behind)."""
        self.drained = True
        if endpoint_id in self.waiting:
            self.refill = True
        self.ended.set()


async def send_due(
    database: Database,
    *,
    at: datetime | None = None,
    batch: int = CLAIM_BATCH,
    max_batches: int = CLAIMS_PER_PASS,
    rng: random.Random | None = None,
    lease: timedelta | None = None,
    between: Callable[[], Awaitable[object]] | None = None,
) -> int:
    """Claim and send what is due: up to ``max_batches`` claims of up to ``batch`` deliveries
    each (and as many again each interval while attempts are still running), and what they
    claimed sent and recorded. Returns how many attempts were made.

    ``at`` stops the worker's clock at that moment (tests drive the retry schedule with it);
    by default the clock is the real time. ``lease`` replaces the claim lease (claim_lease())
    for a test that makes it shorter than a batch takes. ``between`` runs before each look for
    more work while attempts are still running (the worker's job fans out new events there)."""
    settings = database.settings
    rng = rng or random.Random()  # noqa: S311  (retry jitter, not cryptography)

    def clock() -> datetime:
        return at if at is not None else now()

    held = lease or claim_lease(
        batch, settings.webhook_concurrency, settings.webhook_timeout_seconds
    )
    per, _ = endpoint_share(settings, batch)
    name = worker_name()
    books = Books(database, name, clock, rng, attempt_lease(settings.webhook_timeout_seconds))
    claims = 0  # since the last look
    made_claims = 0  # in the pass: each claim's name must be its own
    try:
        async with (
            http_client(settings.webhook_timeout_seconds, settings) as client,
            asyncio.TaskGroup() as group,
        ):
            bookkeeper = group.create_task(books.run())
            work = _Pass(client, books, group, per)
            found = True  # whether the last claim found anything (or may now)
            loop = asyncio.get_running_loop()
            interval = settings.webhook_worker_interval_seconds
            next_look = loop.time() + interval
            while True:
                if found and claims < max_batches and work.hungry():
                    # Each claim its own name (locked_by): a delivery this pass claims
                    # again after its first claim lapsed is sent by the second only.
                    work.drained = work.refill = False
                    made_claims += 1
                    claimed, waiting = await claim(
                        database, f"{name}/{made_claims}", clock(), batch, held, work.held
                    )
                    # An endpoint left waiting stays so while its deliveries are in hand (a
                    # claim skips a half-open endpoint whose probe this pass is sending).
                    work.waiting = waiting | (work.waiting & set(work.held))
                    found = bool(claimed)
                    if found:
                        claims += 1
                        work.start(claimed)
                        await asyncio.sleep(0)  # let them take their slots
                    continue
                if not work.busy and (not found or claims >= max_batches):
                    break
                work.ended.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(work.ended.wait(), max(0.0, next_look - loop.time()))
                # An endpoint that had more due than its share ran dry: claim again.
                found = found or work.refill
                if loop.time() >= next_look:
                    # Every interval while attempts are still running, whatever else happens:
                    # look again (new events, retries come due, circuits half-open).
                    if between is not None:
                        await between()
                    found = work.drained = True
                    claims = 0  # max_batches bounds the claims between two looks
                    next_look = loop.time() + interval
            books.close()
            await bookkeeper
    except ExceptionGroup as failed:
        # A failed round (the database) ends the pass: its error, not a group of one.
        raise failed.exceptions[0] from None
    return work.made


async def run_webhooks(database: Database) -> int:
    """The worker job: fan out new events, then send what is due (fanning out again while
    slow attempts run, so that new events for other endpoints are not held up)."""
    created = await fan_out(database)
    return created + await send_due(database, between=lambda: fan_out(database))


def webhook_worker(database: Database) -> Worker:
    """The webhook loop: its own Worker, every ``webhook_worker_interval_seconds`` (a second by
    default), beside the slower loop of the other jobs."""
    return Worker(
        database,
        database.settings.webhook_worker_interval_seconds,
        jobs=(("webhooks", run_webhooks),),
    )


# Kept for readers of the former single module: the types a pass is made of.
__all__ += ["Clock"]
