"""How far behind the read replica is, measured by each worker process for itself.

A check is two small statements: the primary's WAL insert position, then, on the replica,
whether it is a standby in recovery, how far it has replayed and when the last transaction it
replayed committed. From them:

- **lag in bytes**: the primary's position less the replica's replay position (0 when the
  replica has replayed everything the primary had written when the check began);
- **lag in seconds**, an upper bound on how old the replica's data may be: 0 when it has
  replayed everything; otherwise the smaller of (a) the age of the newest position this
  process saw on the primary that the replica has replayed past (exact, on this process's own
  clock, but only as fine as the checks are frequent) and (b) the time since the commit of the
  last transaction the replica replayed (PostgreSQL's usual measure; it compares the
  primary's clock with the replica's).

The replica is used while it is a standby that answers and its lag in seconds is at most
``read_replica_max_lag_seconds``; otherwise reads go to the primary. Checks are made when
reads need them, at most every ``read_replica_check_seconds``: a read never waits for one
except the first (a stale result is used while a new check runs in the background), and a
failed read on the replica marks it unreachable at once (app.replica.reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import Database
from app.replica.lsn import format_lsn, parse_lsn, record_boundary

logger = logging.getLogger("app.replica")

PRIMARY_POSITION = (
    "SELECT pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')::int,"
    " pg_size_bytes(current_setting('wal_segment_size'))"
)
REPLICA_POSITION = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
)
# Primary positions kept for the lag bound (a): one per check, so a few minutes' worth.
SAMPLES = 512


class ReplicaState(StrEnum):
    not_configured = "not_configured"  # no LFD_READ_DATABASE_URL: every read on the primary
    in_use = "in_use"  # a standby within the lag bound: the replica's reads go there
    lagging = "lagging"  # behind by more than the bound (or by an unknown amount)
    unreachable = "unreachable"  # did not answer, or a read on it failed
    not_a_standby = "not_a_standby"  # answers, but is not in recovery (not a hot standby)
    unmeasured = "unmeasured"  # the primary did not answer, so the lag cannot be known


@dataclass(frozen=True)
class ReplicaStatus:
    state: ReplicaState
    checked_at: float | None = None  # this process's monotonic clock
    replay_lsn: int | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    error: str | None = None  # the exception's type name, never its message

    @property
    def usable(self) -> bool:
        return self.state is ReplicaState.in_use

    def describe(self, now: float, max_lag_seconds: float | None) -> dict[str, Any]:
        """What /readyz shows (no address, no message: the type of a failure only)."""
        shown: dict[str, Any] = {
            "state": self.state.value,
            "reads": "replica" if self.usable else "primary",
        }
        if self.state is ReplicaState.not_configured:
            return shown
        shown["max_lag_seconds"] = max_lag_seconds
        if self.lag_seconds is not None:
            shown["lag_seconds"] = round(self.lag_seconds, 3)
        if self.lag_bytes is not None:
            shown["lag_bytes"] = self.lag_bytes
        if self.replay_lsn is not None:
            shown["replay_lsn"] = format_lsn(self.replay_lsn)
        if self.checked_at is not None:
            shown["checked_seconds_ago"] = round(max(0.0, now - self.checked_at), 3)
        if self.error is not None:
            shown["error"] = self.error
        return shown


NOT_CONFIGURED = ReplicaStatus(ReplicaState.not_configured)


def lag_bound(
    replay: int,
    samples: deque[tuple[float, int]],
    now: float,
    since_last_replayed_commit: float | None,
) -> float | None:
    """The upper bound on the replica's staleness described above; None when nothing bounds it
    yet (no position seen that it has passed, and no transaction replayed since it started)."""
    bounds: list[float] = []
    for seen_at, position in reversed(samples):
        if position <= replay:
            bounds.append(max(0.0, now - seen_at))
            break
    if since_last_replayed_commit is not None and math.isfinite(since_last_replayed_commit):
        bounds.append(max(0.0, since_last_replayed_commit))
    return min(bounds) if bounds else None


class ReplicaMonitor:
    """The replica's status in this process, checked lazily (module docstring)."""

    def __init__(
        self, database: Database, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.database = database
        self.engine: AsyncEngine | None = database.read_engine
        self.max_lag_seconds = settings.read_replica_max_lag_seconds
        self.interval = settings.read_replica_check_seconds
        # A check waits at most this long for each database (besides the driver's connect
        # timeout on the replica).
        self.timeout = max(settings.read_replica_connect_timeout_seconds, 1.0) + 1.0
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES)
        self._status: ReplicaStatus | None = None if self.engine is not None else NOT_CONFIGURED
        self._checking: asyncio.Task[ReplicaStatus] | None = None

    @property
    def configured(self) -> bool:
        return self.engine is not None

    @property
    def last(self) -> ReplicaStatus | None:
        """The latest status without checking (None before the first check)."""
        return self._status

    async def current(self) -> ReplicaStatus:
        """The status for a read: the latest, checking first only if there is none; a new
        check starts in the background when the latest is older than the interval."""
        status = self._status
        if status is None:
            return await self.check()
        if status.state is ReplicaState.not_configured:
            return status
        if status.checked_at is None or self.clock() - status.checked_at >= self.interval:
            self._start_check()
        return status

    async def check(self) -> ReplicaStatus:
        """A fresh status (joins a check already running)."""
        if self.engine is None:
            return NOT_CONFIGURED
        task = self._start_check()
        return await asyncio.shield(task)

    def failed(self, error: BaseException) -> None:
        """A read found the replica gone: no reads go there until a check finds it again."""
        self._status = ReplicaStatus(
            ReplicaState.unreachable, self.clock(), error=type(error).__name__
        )
        logger.warning("read replica failed", extra={"error_type": type(error).__name__})

    async def close(self) -> None:
        task, self._checking = self._checking, None
        if task is not None and not task.done():
            task.cancel()
            # Closing: the check's result, or how it ended, no longer matters.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _start_check(self) -> asyncio.Task[ReplicaStatus]:
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._measure(), name="lfd-replica-check")
        return self._checking

    async def _measure(self) -> ReplicaStatus:
        try:
            status = await self._measured()
        except Exception as error:  # an answer it could not read: no reads there meanwhile
            status = ReplicaStatus(
                ReplicaState.unmeasured, self.clock(), error=type(error).__name__
            )
        previous = self._status
        if previous is None or previous.state is not status.state:
            level = logging.INFO if status.usable else logging.WARNING
            logger.log(
                level,
                "read replica state",
                extra={"state": status.state.value, "error_type": status.error},
            )
        self._status = status
        return status

    async def _measured(self) -> ReplicaStatus:
        assert self.engine is not None
        started = self.clock()
        try:
            async with asyncio.timeout(self.timeout):
                primary = await one_row(self.database.engine, PRIMARY_POSITION)
        except Exception as error:  # the primary's own failures are the primary's business
            return ReplicaStatus(ReplicaState.unmeasured, started, error=type(error).__name__)
        position = record_boundary(parse_lsn(primary[0]), int(primary[1]), int(primary[2]))
        self.samples.append((started, position))
        try:
            async with asyncio.timeout(self.timeout):
                standby = await one_row(self.engine, REPLICA_POSITION)
        except Exception as error:  # unreachable, refused, timed out: all mean "not now"
            return ReplicaStatus(ReplicaState.unreachable, started, error=type(error).__name__)
        now = self.clock()
        in_recovery, replay_text, since_commit = standby
        if not in_recovery or replay_text is None:
            return ReplicaStatus(ReplicaState.not_a_standby, now)
        replay = parse_lsn(replay_text)
        lag_bytes = max(0, position - replay)
        lag_seconds: float | None = 0.0
        if lag_bytes:
            lag_seconds = lag_bound(replay, self.samples, now, since_commit)
        within = lag_seconds is not None and lag_seconds <= self.max_lag_seconds
        return ReplicaStatus(
            ReplicaState.in_use if within else ReplicaState.lagging,
            now,
            replay_lsn=replay,
            lag_bytes=lag_bytes,
            lag_seconds=lag_seconds,
        )


async def one_row(engine: AsyncEngine, statement: str) -> tuple[Any, ...]:
    """One row of one statement on a pooled connection, straight through the driver: no
    transaction (asyncpg runs a lone statement in autocommit), no SQLAlchemy statement handling
    (a third less time for the write position each write waits for: docs/benchmarks.md)."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        try:
            row = await raw.driver_connection.fetchrow(statement)  # type: ignore[union-attr]
        except BaseException:
            # Past SQLAlchemy, so its disconnect handling too: a connection that failed (or
            # was interrupted mid-statement) must not go back to the pool.
            await connection.invalidate()
            raise
    return tuple(row)
