from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.kit.enums import OPEN_REFERRAL_STATUSES
from app.models.base import Base, IdMixin, JSONType, TimestampMixin, utcnow


class Referral(IdMixin, TimestampMixin, Base):
    """A request that a death be reviewed by one route; it sits in its queue until done."""

    __tablename__ = "referrals"
    __table_args__ = (
        # The queue: next work for a route, in (priority, due, creation) order.
        Index("ix_referrals_queue", "route", "status", "priority", "due_at", "created_at", "id"),
        Index("ix_referrals_specialty_queue", "specialty", "route", "status", "priority", "due_at"),
        Index("ix_referrals_status_due_at", "status", "due_at"),
        Index("ix_referrals_lease_expires_at", "lease_expires_at"),
        Index("ix_referrals_assigned_to", "assigned_to", "status"),
        Index("ix_referrals_death_id_route", "death_id", "route"),
    )

    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"))
    route: Mapped[str] = mapped_column(String(20))
    stage: Mapped[int | None] = mapped_column(SmallInteger)
    reasons: Mapped[list[str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20))
    status_reason: Mapped[str | None] = mapped_column(Text)
    specialty: Mapped[str | None] = mapped_column(String(100))
    site: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(SmallInteger)
    due_at: Mapped[datetime]
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    lease_id: Mapped[uuid.UUID | None]
    leased_by: Mapped[uuid.UUID | None]
    lease_expires_at: Mapped[datetime | None]
    external_reference: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    @property
    def overdue(self) -> bool:
        """Still open and past its due date (read by the response schemas)."""
        return self.status in OPEN_REFERRAL_STATUSES and self.due_at < utcnow()
