from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, FetchedValue, Identity, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, utcnow


class OutboxEvent(IdMixin, Base):
    """A state change, written in the same transaction as the change. Thin: ids, type and the
    names of the fields that changed, never their values.

    Its place in the change feed is (`txid`, `seq`): on PostgreSQL `txid` is the id of the
    transaction that wrote it (the column's default, `pg_current_xact_id()`) and `seq` comes
    from an identity; on SQLite, where writers take turns, `txid` is 0 and `seq` is the next
    number. docs/change-feed.md explains why the feed never hands out an event whose
    transaction might still be overtaken by an earlier one.

    On PostgreSQL the table is partitioned by month of ``occurred_at`` (migration 0025,
    app.partitions), so its primary key includes ``occurred_at`` and the position index cannot
    be unique (a unique index must include the partition key); ``seq`` is unique by itself.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_occurred_at", "occurred_at"),
        Index("ix_outbox_events_resource", "resource_type", "resource_id", "txid"),
        Index("ix_outbox_events_position", "txid", "seq"),
    )

    type: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[uuid.UUID]
    death_id: Mapped[uuid.UUID | None]
    # The organisation whose record changed (the death's, the plan's): the feed and webhooks
    # show an event only to those who may see that record (issue 16).
    organisation_id: Mapped[uuid.UUID | None]
    changed: Mapped[list[str]] = mapped_column(JSONType)
    occurred_at: Mapped[datetime] = mapped_column(primary_key=True, default=utcnow)
    client_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    txid: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False))


class ClosedEventMonth(Base):
    """A month of outbox events closed for good (PostgreSQL; app.partitions): its partition
    takes no more rows (a CHECK that every ``txid`` is at most ``max_txid``, added when the
    month had been over for a while and no transaction that could still write into it was
    running), and ``max_txid`` is the highest position it holds. The change feed skips the
    closed months whose events all lie before its cursor, so a page reads one or two months'
    partitions rather than every month's (app.events.months). Written only by the database
    function ``lfd_close_event_months`` (migration 0025), run by the background runner."""

    __tablename__ = "outbox_closed_months"

    month: Mapped[date] = mapped_column(primary_key=True)
    max_txid: Mapped[int] = mapped_column(BigInteger)
    closed_at: Mapped[datetime]
