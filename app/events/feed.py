"""The change feed: every committed outbox event, exactly once, in a stable order.

An event's place is (txid, seq). On PostgreSQL `txid` is the writing transaction's id and
`seq` a number from an identity; both are taken while the transaction runs, so a transaction
that commits late can hold positions *below* events already committed by others. A cursor
that simply moved past the highest position seen would then skip the late ones.

The feed therefore only hands out events below the **horizon**: the oldest transaction id
still running (`pg_snapshot_xmin(pg_current_snapshot())`). Every transaction with a smaller id
has finished, so every event below the horizon is either committed and visible or rolled back
and gone; nothing can appear there later. Events at or above it wait, invisible, until the
transactions before them finish. The horizon and the page are read in one snapshot
(Database.snapshot()). docs/change-feed.md has the whole argument and its costs (a long
transaction anywhere on the server holds the feed back; it never loses an event).

On SQLite writers take turns (BEGIN IMMEDIATE), so seq is already commit order and there is no
horizon to wait for: `txid` is always 0.
"""

from __future__ import annotations

import uuid
from base64 import urlsafe_b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import orjson
from sqlalchemy import ColumnElement, Select, Text, cast, func, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import BadRequest
from app.events.months import ClosedMonths, closed_months
from app.kit.cursor import decode_cursor
from app.models import OutboxEvent
from app.scoping import current_scope, event_rule

CURSOR_VERSION = "f1"
MAX_SEQ = 2**63 - 1
HORIZON = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True, order=True)
class Position:
    txid: int
    seq: int


class FeedEvent(NamedTuple):
    """One outbox event as the feed hands it out. A tuple, built straight from the row (not an
    ORM object, nor a frozen dataclass, whose __init__ sets each field through
    object.__setattr__): a catch-up reads thousands a second."""

    id: uuid.UUID
    type: str
    resource_type: str
    resource_id: uuid.UUID
    death_id: uuid.UUID | None
    changed: list[str]
    occurred_at: datetime
    txid: int
    seq: int
    # Whose record changed (issue 16): webhooks deliver an event only to endpoints whose
    # owner may see it (app.webhooks.fanout). Not part of the published event.
    organisation_id: uuid.UUID | None = None

    @property
    def position(self) -> Position:
        return Position(self.txid, self.seq)


# `changed` is read as its JSON text and decoded with orjson (read_feed): the driver's own JSON
# decoding (json.loads behind SQLAlchemy's codec) cost more than all the other columns together.
FEED_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.type,
    OutboxEvent.resource_type,
    OutboxEvent.resource_id,
    OutboxEvent.death_id,
    cast(OutboxEvent.changed, Text),
    OutboxEvent.occurred_at,
    OutboxEvent.txid,
    OutboxEvent.seq,
    OutboxEvent.organisation_id,
)


FeedSelect = Select[
    uuid.UUID, str, str, uuid.UUID, uuid.UUID | None, str, datetime, int, int, uuid.UUID | None
]


@dataclass(frozen=True)
class FeedPage:
    events: list[FeedEvent]
    # Where the next read starts: after the last event, or, when the page was not full, after
    # everything the feed could see (so an idle consumer's cursor keeps up with the horizon).
    next: Position | None


_VERSION_BYTES = CURSOR_VERSION.encode()


def encode_place(txid: int, seq: int) -> str:
    """The cursor of the place (txid, seq): exactly what encode_cursor([CURSOR_VERSION, txid,
    seq]) writes (base64url of the compact JSON list, unpadded), without going through
    json.dumps, because every event of a page carries one."""
    raw = b'["%b",%d,%d]' % (_VERSION_BYTES, txid, seq)
    return urlsafe_b64encode(raw).rstrip(b"=").decode()


def encode_position(position: Position) -> str:
    return encode_place(position.txid, position.seq)


def decode_position(cursor: str) -> Position:
    version, txid, seq = decode_cursor(cursor, 3)
    valid = (
        version == CURSOR_VERSION
        and all(type(value) is int for value in (txid, seq))
        and 0 <= txid <= MAX_SEQ
        and 0 <= seq <= MAX_SEQ
    )
    if not valid:
        raise BadRequest("The cursor is not one this service issued.")
    return Position(txid, seq)


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def head_position(session: AsyncSession) -> Position:
    """'Now': every event the feed can hand out today lies at or before this position, and
    every event it hands out later lies after it."""
    if _postgres(session):
        horizon = int(await session.scalar(select(HORIZON)) or 0)
        return Position(horizon - 1, MAX_SEQ)
    last = await session.scalar(select(func.coalesce(func.max(OutboxEvent.seq), 0)))
    return Position(0, int(last or 0))


def type_filter(types: Sequence[str]) -> ColumnElement[bool]:
    """Exact types, and `prefix.*` for a whole resource (`referral.*`)."""
    exact = [t for t in types if not t.endswith(".*")]
    prefixes = [t[:-1] for t in types if t.endswith(".*")]
    clauses: list[ColumnElement[bool]] = []
    if exact:
        clauses.append(OutboxEvent.type.in_(exact))
    clauses.extend(OutboxEvent.type.startswith(prefix, autoescape=True) for prefix in prefixes)
    return or_(*clauses)


def _page_query(
    after: Position | None, limit: int, types: Sequence[str] | None, closed: ClosedMonths
) -> FeedSelect:
    query = select(*FEED_COLUMNS).order_by(OutboxEvent.txid, OutboxEvent.seq).limit(limit)
    if after is not None:
        query = query.where(tuple_(OutboxEvent.txid, OutboxEvent.seq) > (after.txid, after.seq))
        # PostgreSQL: the closed months wholly behind the cursor are not read at all
        # (app.events.months): a page reads the partitions of a month or two, not of every one.
        skip = closed.after(after.txid)
        if skip is not None:
            query = query.where(skip)
    if types:
        query = query.where(type_filter(types))
    return query


async def read_feed(
    session: AsyncSession,
    after: Position | None,
    limit: int,
    types: Sequence[str] | None = None,
) -> FeedPage:
    """The next `limit` committed events after `after` (from the beginning when None).

    Any transaction will do: the page is limited to the horizon read by the statement before
    it, and every transaction below that horizon had finished before that statement, so a later
    statement sees all of its events (Database.snapshot() is there for readers that want one
    snapshot anyway)."""
    head = await head_position(session)
    query = _page_query(after, limit, types, await closed_months(session))
    if _postgres(session):
        query = query.where(OutboxEvent.txid <= head.txid)
    else:
        query = query.where(OutboxEvent.seq <= head.seq)
    scope = current_scope()
    if not scope.everything:
        # Core execution is past the ORM's scope criteria: the same rule, said here.
        query = query.where(event_rule(scope))
    # Core execution on the session's connection: the rows need no ORM result handling.
    rows = (await (await session.connection()).execute(query)).all()
    loads = orjson.loads
    events = [
        FeedEvent(
            event_id, kind, resource, resource_id, death_id, loads(changed), at, txid, seq, org
        )
        for event_id, kind, resource, resource_id, death_id, changed, at, txid, seq, org in rows
    ]
    if len(events) == limit:
        last = events[-1]
        return FeedPage(events, Position(last.txid, last.seq))
    # Not a full page: nothing else the feed can see lies after `after`, so the next read may
    # start at the head (never behind where the consumer already is).
    return FeedPage(events, max(head, after) if after is not None else head)
