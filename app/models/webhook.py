"""Webhooks: the endpoints integrators register, one delivery per endpoint and event, the log of
every attempt, and the dispatcher's place in the change feed. No patient data anywhere: a
delivery's body is the thin event (ids, type, names of changed fields)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, TimestampMixin


class WebhookEndpoint(IdMixin, TimestampMixin, Base):
    """A URL that receives signed events. The secret is kept in clear because the worker signs
    with it (it is a shared HMAC key, not a password); it is shown to the client only on create
    and on rotate. After a rotation the previous secret also signs until it expires."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_client", "created_by_client_id", "created_at"),)

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JSONType)  # empty: every type
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    secret_rotated_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None]
    created_by_client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    version: Mapped[int] = mapped_column(default=1)
    # The circuit breaker (app.webhooks.circuit), here so that every worker sees it: failed
    # attempts in a row; until when nothing more is claimed (open, or a half-open probe in
    # flight); how many times it has opened (a claim made before the latest opening is not sent).
    circuit_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    circuit_open_until: Mapped[datetime | None]
    circuit_trips: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WebhookDelivery(IdMixin, TimestampMixin, Base):
    """One event for one endpoint. `status`: pending (due, never tried or replayed), failed
    (the last attempt failed; `next_attempt_at` is the retry), delivered, dead (out of
    retries, or the endpoint answered 410). A worker holds it while sending (the lease)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_log", "endpoint_id", "created_at", "id"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    # The outbox event's id (the `webhook-id`), or a fresh id for a `webhook.test` message.
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(60))
    # The exact JSON sent, so that every attempt carries the same bytes.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(String(40))
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(IdMixin, Base):
    """One HTTP request of a delivery: when, how long, the status code or the kind of error.
    Never a body or a header of the response."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(SmallInteger)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    error_kind: Mapped[str | None] = mapped_column(String(40))


class WebhookDispatcher(Base):
    """The change-feed position up to which events have been fanned out into deliveries. One
    row; the worker that holds its lock does the fan-out."""

    __tablename__ = "webhook_dispatcher"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    txid: Mapped[int | None] = mapped_column(BigInteger)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
