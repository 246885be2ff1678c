from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, utcnow


class AuditEvent(IdMixin, Base):
    """Who read or changed what, for whom, when. Append-only; no foreign keys, so that an audit
    row outlives anything it describes."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_death_id_occurred_at", "death_id", "occurred_at"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_client_id_occurred_at", "client_id", "occurred_at"),
        Index("ix_audit_events_resource_id_occurred_at", "resource_id", "occurred_at"),
    )

    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    client_id: Mapped[uuid.UUID | None]
    client_name: Mapped[str | None] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    # True: on_behalf_of is the subject of a verified user assertion; False: free text the
    # client sent; None: no one named (app.oauth.users).
    on_behalf_of_verified: Mapped[bool | None]
    on_behalf_of_role: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[uuid.UUID | None]
    death_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20), default="success")
