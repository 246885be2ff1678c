"""How an idempotent request runs.

1. Claim the key in a short transaction of its own (INSERT ... ON CONFLICT DO NOTHING), so a
   second request with the same key sees the claim at once: 409 while the first runs, the
   first's response once it has finished, 422 if the body differs.
2. Do the work in one transaction, and store the response in that same transaction: the
   change and the record of it commit together.
3. If the work fails, release the claim, so that the client can retry the same key once it has
   fixed what was wrong (the failure itself is not replayed). If the release fails too (the
   database went away: the work failed for the same reason), the process keeps the claim as
   pending release and retries it in the background, and before its next claim, so that the
   client's retry after the outage is not refused as still in flight.

A claim older than ``idempotency_lock_seconds`` is taken to be from a process that died and may
be taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.db import Database
from app.errors import BadRequest, IdempotencyInFlight, IdempotencyMismatch
from app.kit.sql import insert_unless_exists
from app.kit.time import now
from app.models import IdempotencyRecord

IN_FLIGHT = "in_flight"
COMPLETED = "completed"

logger = logging.getLogger("app.idempotency")
RELEASE_RETRY_SECONDS = 1.0


class _PendingReleases:
    """The claims this process failed to release (per Database): retried in the background
    every second until released or their lock has run out anyway, and before every claim."""

    def __init__(self) -> None:
        self.ids: set[uuid.UUID] = set()
        self.task: asyncio.Task[None] | None = None


_pending: weakref.WeakKeyDictionary[Database, _PendingReleases] = weakref.WeakKeyDictionary()


async def _release(session: AsyncSession, ids: set[uuid.UUID]) -> None:
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id.in_(ids), IdempotencyRecord.state == IN_FLIGHT
        )
    )


async def _release_pending(database: Database) -> None:
    """Release what earlier failures left claimed; quietly leave it pending if that fails."""
    pending = _pending.get(database)
    if pending is None or not pending.ids:
        return
    ids = set(pending.ids)
    with contextlib.suppress(Exception):
        async with database.transaction() as session:
            await _release(session, ids)
        pending.ids -= ids


def _keep_for_release(database: Database, claimed: uuid.UUID) -> None:
    pending = _pending.setdefault(database, _PendingReleases())
    pending.ids.add(claimed)
    if pending.task is None or pending.task.done():
        pending.task = asyncio.create_task(
            _retry_releases(database, pending), name="lfd-idempotency-release"
        )


async def _retry_releases(database: Database, pending: _PendingReleases) -> None:
    # Past the lock, a claim may be taken over anyway: no need to keep trying after that.
    for _ in range(int(database.settings.idempotency_lock_seconds / RELEASE_RETRY_SECONDS)):
        await asyncio.sleep(RELEASE_RETRY_SECONDS)
        await _release_pending(database)
        if not pending.ids:
            return
    pending.ids.clear()


@dataclass
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


def fingerprint(method: str, path: str, payload: Any) -> str:
    """A hash of what the request asks for: same meaning, same fingerprint, whatever the
    whitespace or key order of the JSON."""
    canonical = json.dumps(
        [method, path, payload], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise BadRequest(
            "This endpoint needs an Idempotency-Key header (a unique value per logical request, "
            "such as a UUID), so that a retry never records a screening twice."
        )
    if len(key) > 255 or not key.isascii() or not key.isprintable():
        raise BadRequest("The Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return key


async def _claim(
    database: Database, client_id: uuid.UUID, key: str, print_: str
) -> StoredResponse | uuid.UUID:
    settings = database.settings
    await _release_pending(database)
    moment = now()
    lock = moment + timedelta(seconds=settings.idempotency_lock_seconds)
    expires = moment + timedelta(hours=settings.idempotency_retention_hours)
    # Autocommit: the claim must be visible to a concurrent retry at once, and each statement
    # here is atomic on its own (the takeover is a compare-and-set on locked_until).
    async with database.autocommit() as session:
        record_id = uuid.uuid4()
        claimed = await insert_unless_exists(
            session,
            IdempotencyRecord,
            ("client_id", "key"),
            {
                "id": record_id,
                "client_id": client_id,
                "key": key,
                "fingerprint": print_,
                "state": IN_FLIGHT,
                "locked_until": lock,
                "created_at": moment,
                "expires_at": expires,
                "response_status": None,
                "response_body": None,
                "response_headers": None,
            },
        )
        if claimed is not None:
            return record_id
        record = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.client_id == client_id, IdempotencyRecord.key == key
            )
        )
        if record is None:  # deleted between the two statements: the first request failed
            raise IdempotencyInFlight("Retry the request.", headers={"Retry-After": "1"})
        expired = record.expires_at <= moment
        if not expired and record.fingerprint != print_:
            raise IdempotencyMismatch(
                "This Idempotency-Key was used for a different request body; use a new key for "
                "a new request."
            )
        if not expired and record.state == COMPLETED:
            return StoredResponse(
                status=record.response_status or 200,
                body=record.response_body,
                headers=dict(record.response_headers or {}),
                replayed=True,
            )
        if not expired and record.locked_until > moment:
            raise IdempotencyInFlight(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                headers={"Retry-After": "1"},
            )
        taken = await session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.id == record.id,
                IdempotencyRecord.locked_until == record.locked_until,
            )
            .values(
                fingerprint=print_,
                state=IN_FLIGHT,
                locked_until=lock,
                created_at=moment,
                expires_at=expires,
                response_status=None,
                response_body=None,
                response_headers=None,
            )
        )
        if getattr(taken, "rowcount", 0) != 1:
            raise IdempotencyInFlight("Retry the request.", headers={"Retry-After": "1"})
        return record.id


async def run_idempotent(
    database: Database,
    principal: Principal,
    key: str,
    print_: str,
    work: Callable[[AsyncSession], Awaitable[StoredResponse]],
) -> StoredResponse:
    claimed = await _claim(database, principal.client_id, key, print_)
    if isinstance(claimed, StoredResponse):
        return claimed
    try:
        async with database.transaction() as session:
            response = await work(session)
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == claimed)
                .values(
                    state=COMPLETED,
                    response_status=response.status,
                    response_body=response.body,
                    response_headers=response.headers,
                )
            )
        return response
    except BaseException:
        try:
            async with database.transaction() as session:
                await _release(session, {claimed})
        except Exception:
            # The database failed the work and now the release: keep trying in the background,
            # and answer for the work's own failure (a 503 when the database is down).
            logger.warning("idempotency release pending", extra={"record_id": str(claimed)})
            _keep_for_release(database, claimed)
        raise


# One purge transaction deletes at most this many records, so a backlog (a runner that was
# down for a month) is cleared in short steps that never hold many locks at once.
PURGE_BATCH = 5_000


async def purge_expired(session: AsyncSession, limit: int | None = None) -> int:
    """Delete up to ``limit`` records whose replay window has ended (``expires_at``, indexed),
    oldest first; returns how many. A key reused after its record is gone is a new request, as
    the API documents. Safe in several processes at once: a record deleted twice is counted
    once (the second DELETE matches nothing)."""
    expired = (
        select(IdempotencyRecord.id)
        .where(IdempotencyRecord.expires_at <= now())
        .order_by(IdempotencyRecord.expires_at)
        .limit(limit or PURGE_BATCH)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(expired))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired_records(database: Database) -> int:
    """The background job: purge expired records batch by batch, each batch its own
    transaction, until none is left; returns how many were deleted."""
    total = 0
    while True:
        async with database.transaction() as session:
            deleted = await purge_expired(session)
        total += deleted
        if deleted < PURGE_BATCH:
            return total
