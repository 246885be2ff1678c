"""Which database a read goes to, and read-your-writes (docs/replica.md).

A read that may come from the replica (the reports, the change feed) goes there when the
replica is in use (app.replica.monitor) and has replayed everything the reading client needs
to see; otherwise, and whenever the replica fails during the read, it runs on the primary.

**What a client needs to see.** The client is the API client its credential belongs to (an API
key or an access token: the same client id either way, through key rotations too). When a
request by a client that may read from the replica writes (an unsafe method answered below
400), the response carries ``X-LFD-Read-After``: the primary's WAL insert position read after
the write committed, so at or past the commit record. The worker also remembers it for that
client for ``read_your_writes_seconds``. A read by the client then goes to the replica only if
the replica has replayed at least that far (or the position in an ``X-LFD-Read-After`` the
read carries: this is how read-your-writes holds across workers and replicas of the service,
which do not share memory). The replay position compared is one the worker read *before* the
read's snapshot began, so the snapshot holds the write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.db import Database, Work
from app.replica.lsn import format_lsn, parse_lsn, read_after_header, record_boundary
from app.replica.monitor import PRIMARY_POSITION, ReplicaMonitor, ReplicaStatus, one_row
from app.telemetry import REPLICA_READS

logger = logging.getLogger("app.replica")
T = TypeVar("T")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_AFTER = "X-LFD-Read-After"
READ_FROM = "X-LFD-Read-From"
# A read that needs a newer replay position than the last check saw checks again, unless the
# last check is this fresh (a client paging fast through the feed must not make a check each).
RECHECK_AFTER_SECONDS = 0.005
# The write's response waits at most this for the primary's position (then goes without it).
WRITE_POSITION_TIMEOUT_SECONDS = 1.0
# Errors of a read on the replica after which the same read runs on the primary. The replica
# is gone or going (connection failures, shutdown, too many connections): no reads go there
# until a check finds it again. Or this read was unlucky: PostgreSQL cancelled it for a
# conflict with recovery (40001, 40P01), or the replica's pool had no connection free; the
# replica stays in use. Not a statement timeout (57014): that read would take as long on the
# primary.
_CONFLICT_STATES = frozenset({"40001", "40P01"})
_GONE_STATES = frozenset({"57P01", "57P02", "57P03", "57P04", "53300"})


class Source(StrEnum):
    primary = "primary"
    replica = "replica"


class Failure(StrEnum):
    gone = "replica_failed"  # the metric's reason
    unlucky = "replica_conflict"


def replica_failure(error: BaseException) -> Failure | None:
    """Whether (and why) a read that failed on the replica should run on the primary."""
    if isinstance(error, PoolTimeout):
        return Failure.unlucky
    if isinstance(error, OSError | TimeoutError):
        return Failure.gone
    if isinstance(error, DBAPIError):
        state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if state in _CONFLICT_STATES:
            return Failure.unlucky
        if (
            error.connection_invalidated
            or isinstance(error, OperationalError | InterfaceError)
            or state in _GONE_STATES
            or (isinstance(state, str) and state.startswith("08"))
        ) and state != "57014":
            return Failure.gone
    return None


class Reads:
    """Per worker process: the replica's monitor and the clients who wrote lately."""

    def __init__(
        self, database: Database, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.database = database
        self.monitor = ReplicaMonitor(database, settings, clock)
        self.clock = clock
        self.window = settings.read_your_writes_seconds
        self.max_clients = settings.read_your_writes_max_clients
        # client id -> (WAL position of its last write, when this worker forgets it)
        self._writes: OrderedDict[str, tuple[int, float]] = OrderedDict()

    @property
    def configured(self) -> bool:
        return self.monitor.configured

    # --- writes --------------------------------------------------------------------------------

    async def write_position(self) -> int:
        """The primary's WAL position now: past the commit of every write acknowledged so
        far (the insert position, so that it holds with synchronous_commit off too)."""
        text, block, segment = await one_row(self.database.engine, PRIMARY_POSITION)
        return record_boundary(parse_lsn(text), int(block), int(segment))

    def wrote(self, client_id: str, position: int) -> None:
        """Remember that this client's write committed at or before ``position``."""
        if self.window <= 0:
            return
        earlier = self._writes.pop(client_id, None)
        if earlier is not None:
            position = max(position, earlier[0])
        self._writes[client_id] = (position, self.clock() + self.window)
        while len(self._writes) > self.max_clients:
            self._writes.popitem(last=False)

    def needed(self, client_id: str | None, after: int | None) -> int | None:
        """The WAL position a read by this client must see (None: any replica in use)."""
        positions = [] if after is None else [after]
        mark = self._writes.get(client_id) if client_id is not None else None
        if mark is not None:
            if mark[1] > self.clock():
                positions.append(mark[0])
            else:
                self._writes.pop(str(client_id), None)
        return max(positions) if positions else None

    # --- reads ---------------------------------------------------------------------------------

    async def choose(self, client_id: str | None, after: int | None) -> tuple[Source, str]:
        """Where this client's read goes, and why (the reason is a metric label)."""
        if not self.monitor.configured:
            return Source.primary, "not_configured"
        status = await self.monitor.current()
        if not status.usable:
            return Source.primary, status.state.value
        need = self.needed(client_id, after)
        if need is None or _replayed(status, need):
            return Source.replica, "in_use"
        if status.checked_at is None or self.clock() - status.checked_at > RECHECK_AFTER_SECONDS:
            status = await self.monitor.check()
            if not status.usable:
                return Source.primary, status.state.value
            if _replayed(status, need):
                return Source.replica, "in_use"
        return Source.primary, "read_your_writes"

    async def run(
        self,
        client_id: str | None,
        after: int | None,
        read: Callable[[AsyncSession], Awaitable[T]],
        work: Work | None = None,
    ) -> tuple[T, Source]:
        """``read`` in one read-only snapshot, on the replica when it may, else on the primary.
        ``read`` must only read: after a failure on the replica it runs again on the primary."""
        source, reason = await self.choose(client_id, after)
        if source is Source.replica:
            try:
                async with self.database.snapshot(work, replica=True) as session:
                    result = await read(session)
            except Exception as error:
                failure = replica_failure(error)
                if failure is None:
                    raise
                if failure is Failure.gone:
                    self.monitor.failed(error)
                reason = failure.value
            else:
                REPLICA_READS.labels(Source.replica.value, reason).inc()
                return result, Source.replica
        async with self.database.snapshot(work) as session:
            result = await read(session)
        REPLICA_READS.labels(Source.primary.value, reason).inc()
        return result, Source.primary

    async def status(self) -> ReplicaStatus:
        return await self.monitor.check()

    async def close(self) -> None:
        await self.monitor.close()


def _replayed(status: ReplicaStatus, position: int) -> bool:
    return status.replay_lsn is not None and status.replay_lsn >= position


# --- the request's side --------------------------------------------------------------------------


class ReplicaReads:
    """A route's handle on Reads: the calling client, and the position it asked for."""

    def __init__(self, request: Request, read_after: str | None) -> None:
        self.request = request
        self.read_after = read_after

    async def run(
        self, read: Callable[[AsyncSession], Awaitable[T]], work: Work | None = None
    ) -> T:
        reads: Reads = self.request.app.state.reads
        # Parsed here, inside the route (after the credential check), not as the dependency
        # is built: an anonymous caller gets its 401 whatever else it sent.
        after = read_after_header(self.read_after)
        client_id = getattr(self.request.state, "client_id", None)
        result, source = await reads.run(client_id, after, read, work)
        if reads.configured:
            self.request.state.lfd_read_from = source.value
        return result


def replica_reads(
    request: Request,
    read_after: Annotated[
        str | None,
        Header(
            alias=READ_AFTER,
            description="Read at least what the write that answered with this value in its "
            "own `X-LFD-Read-After` header wrote (a WAL position). Only needed when the "
            "deployment has a read replica and this read may reach another worker or "
            "replica of the service than the write did (docs/replica.md).",
            examples=["0/3A2F1C8"],
        ),
    ] = None,
) -> ReplicaReads:
    return ReplicaReads(request, read_after)


ReplicaReadsDep = Annotated[ReplicaReads, Depends(replica_reads)]


class ReadAfterWriteMiddleware:
    """Marks writes and tells clients where reads came from (installed only when a replica is
    configured). ``reader`` gives the id of a request's client when it may read from the
    replica (None otherwise: its writes need no mark)."""

    def __init__(
        self, app: ASGIApp, reads: Reads, reader: Callable[[dict[str, object]], str | None]
    ) -> None:
        self.app = app
        self.reads = reads
        self.reader = reader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        writes = scope["method"] not in SAFE_METHODS

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                added: list[tuple[bytes, bytes]] = []
                source = state.get("lfd_read_from")
                if source is not None:
                    added.append((READ_FROM.lower().encode(), str(source).encode()))
                if writes and message["status"] < 400:
                    position = await self._mark(state)
                    if position is not None:
                        added.append((READ_AFTER.lower().encode(), position.encode()))
                if added:
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_marked)

    async def _mark(self, state: dict[str, object]) -> str | None:
        client_id = self.reader(state)
        if client_id is None:
            return None
        try:
            async with asyncio.timeout(WRITE_POSITION_TIMEOUT_SECONDS):
                position = await self.reads.write_position()
        except Exception as error:  # the write stands; only its token is missing
            logger.warning("write position not read", extra={"error_type": type(error).__name__})
            return None
        self.reads.wrote(client_id, position)
        return format_lsn(position)
