from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, utcnow


class IdempotencyRecord(IdMixin, Base):
    """One client's Idempotency-Key: claimed while the request runs, then the response kept
    for replay until it expires."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("client_id", "key"),
        Index("ix_idempotency_records_expires_at", "expires_at"),
    )

    client_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))  # in_flight | completed
    locked_until: Mapped[datetime]
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[Any | None] = mapped_column(JSONType)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
