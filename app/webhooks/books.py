"""Bookkeeping: each attempt starts only under a live lease, and is recorded as soon as it ends.

Before each send, a round checks that the delivery is still its claim's, takes the attempt
number and renews the lease to cover that one attempt and its recording (attempt_lease); a
delivery another claim took meanwhile is skipped, and so is one claimed before its endpoint's
circuit opened (app.webhooks.circuit). When the attempt ends, the next round logs it, settles
the delivery (only if it is still the claim's) and moves the endpoint's circuit breaker. A round
is one transaction for whatever the senders have asked since the last (Books).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.kit.sql import table_of
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.circuit import Breaker, Circuit, after, verdict
from app.webhooks.claims import OPEN, Claimed
from app.webhooks.schemas import DeliveryStatus
from app.webhooks.sending import Outcome, next_wait

logger = logging.getLogger("app.webhooks")

GONE_REASON = "the endpoint answered 410 Gone"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Finished:
    """An attempt that was made, to be logged and settled."""

    claimed: Claimed
    outcome: Outcome
    at: datetime  # the worker's clock when the attempt ended: the retry's wait starts here


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
            WebhookEndpoint.circuit_failures,
            WebhookEndpoint.circuit_open_until,
            WebhookEndpoint.circuit_trips,
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
def _circuits(postgres: bool) -> Any:
    """The circuit breakers of the endpoints a round moves, locked in id order."""
    table = table_of(WebhookEndpoint)
    query = (
        select(
            table.c.id, table.c.circuit_failures, table.c.circuit_open_until, table.c.circuit_trips
        )
        .where(table.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(table.c.id)
    )
    return query.with_for_update() if postgres else query


@cache
def _trip() -> Any:
    table = table_of(WebhookEndpoint)
    return (
        update(table)
        .where(table.c.id == bindparam("endpoint_id"))
        .values(
            circuit_failures=bindparam("failures"),
            circuit_open_until=bindparam("open_until"),
            circuit_trips=bindparam("trips"),
        )
    )


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
    breaker: Breaker | None = None,
) -> Booked:
    """One bookkeeping round, in one transaction: log the ``finished`` attempts and settle
    their deliveries, then start the ``starting`` ones.

    Every delivery named is locked first, in id order (so that two workers' rounds never wait
    on each other in a cycle), and read: who holds it, its status, its endpoint's switch and
    circuit breaker. ``worker`` names the worker in the attempt log; whether a delivery is
    still held is decided by the name its claim set (Claimed.holder).

    - A finished attempt is always logged: the request was made. Its delivery is settled
      (status, next attempt counted from the attempt's end, lease released) only if its claim
      still holds it; if the lease ran out and another claim took the delivery, that one's
      attempt decides (a warning is logged). A 410 disables the endpoint. The attempts move
      their endpoints' circuit breakers (app.webhooks.circuit), in the order they ended.
    - An attempt starts only if its claim still holds the delivery, it is still open, its
      endpoint enabled and the endpoint's circuit has not opened since the claim: the attempt
      number is taken (attempts + 1) and the lease renewed to ``at + lease``, which covers the
      attempt and its recording. A delivery another claim holds now is skipped; one this claim
      holds but may not send (its endpoint was disabled meanwhile, by a 410 in this round for
      instance, or its circuit opened) is released to wait.

    One commit per round rather than per message (commits are what a busy database makes
    slow); Core statements built once, executemany for the rows (a round runs for every few
    messages, so the ORM's per-statement work would cost more than the database's)."""
    ids = sorted({f.claimed.delivery_id for f in finished} | {c.delivery_id for c in starting})
    if not ids:
        return Booked({}, frozenset())
    breaker = breaker or Breaker.of(database.settings)
    async with database.transaction() as session:
        connection = await session.connection()
        locking = _locking(session.get_bind().dialect.name == "postgresql")
        rows = {row.id: row for row in (await connection.execute(locking, {"ids": ids})).all()}

        # A delivery deleted meanwhile (with its endpoint) has no log to write to.
        logged = [f for f in finished if f.claimed.delivery_id in rows]
        settled = [f for f in logged if rows[f.claimed.delivery_id].locked_by == f.claimed.holder]
        for lost in (
            f for f in logged if rows[f.claimed.delivery_id].locked_by != f.claimed.holder
        ):
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
        trips = await _move_circuits(connection, rows, logged, at, breaker)

        started: dict[uuid.UUID, int] = {}
        released: list[uuid.UUID] = []
        for claimed in starting:
            row = rows.get(claimed.delivery_id)
            if row is None or row.locked_by != claimed.holder:
                continue  # deleted, or another claim holds it now: not ours to send
            if (
                row.status in OPEN
                and row.enabled
                and claimed.endpoint_id not in gone
                and trips.get(claimed.endpoint_id, row.circuit_trips) == claimed.trips
            ):
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


async def _move_circuits(
    connection: AsyncConnection,
    rows: dict[uuid.UUID, Any],
    logged: Sequence[Finished],
    at: datetime,
    breaker: Breaker,
) -> dict[uuid.UUID, int]:
    """Move the circuit breakers of the endpoints whose attempts ended; returns the endpoints'
    trip counts where they changed. An endpoint that answered and whose circuit is closed
    with no failure counted (the usual case) costs nothing: no lock, no write."""
    verdicts: dict[uuid.UUID, list[bool | None]] = {}
    for f in sorted(logged, key=lambda f: f.outcome.finished_at):
        healthy = verdict(f.outcome.status_code, f.outcome.error_kind)
        if healthy is not None:
            verdicts.setdefault(f.claimed.endpoint_id, []).append(healthy)
    seen = {f.claimed.endpoint_id: rows[f.claimed.delivery_id] for f in logged}
    moving = sorted(
        endpoint_id
        for endpoint_id, results in verdicts.items()
        if not all(results)
        or seen[endpoint_id].circuit_failures
        or seen[endpoint_id].circuit_open_until is not None
    )
    if not moving:
        return {}
    postgres = connection.dialect.name == "postgresql"
    current = (await connection.execute(_circuits(postgres), {"ids": moving})).all()
    trips: dict[uuid.UUID, int] = {}
    changes = []
    for row in current:
        before = Circuit(row.circuit_failures, row.circuit_open_until, row.circuit_trips)
        now_ = after(before, verdicts[row.id], at, breaker)
        if now_ == before:
            continue
        if now_.trips != before.trips:
            logger.warning(
                "webhook circuit opened",
                extra={
                    "endpoint_id": str(row.id),
                    "failures": now_.failures,
                    "open_until": now_.open_until.isoformat() if now_.open_until else None,
                },
            )
        trips[row.id] = now_.trips
        changes.append(
            {
                "endpoint_id": row.id,
                "failures": now_.failures,
                "open_until": now_.open_until,
                "trips": now_.trips,
            }
        )
    if changes:
        await connection.execute(_trip(), changes)
    return trips


class Books:
    """The bookkeeping of one pass, by one task in rounds: each round is one book() with
    everything the senders asked for since the last (attempts to log, the next to start), so
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
        self.breaker = Breaker.of(database.settings)
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
        it must not be sent (another claim holds it now, its endpoint was disabled or its
        circuit opened)."""
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
            # Two turns of the event loop first: attempts whose answers have already arrived
            # join this round instead of each making one of their own, and so do the starts
            # of the deliveries their slots were handed to (one more turn away).
            await asyncio.sleep(0)
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
                self.breaker,
            )
            for _, starting, future in asked:
                number = None if starting is None else booked.started.get(starting.delivery_id)
                future.set_result(number)
