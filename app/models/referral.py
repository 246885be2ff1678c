from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.kit.enums import OPEN_REFERRAL_STATUSES
from app.models.base import Base, IdMixin, JSONType, TimestampMixin, owned_with, utcnow


class Referral(IdMixin, TimestampMixin, Base):
    """A request that a death be reviewed by one route; it sits in its queue until done."""

    __tablename__ = "referrals"
    __table_args__ = (
        # The queues, each in (priority, due, creation, id) order so that a page is an ordered
        # index range, whatever the number of referrals behind it.
        Index("ix_referrals_queue", "route", "status", "priority", "due_at", "created_at", "id"),
        Index("ix_referrals_status_queue", "status", "priority", "due_at", "created_at", "id"),
        Index(
            "ix_referrals_specialty_queue",
            "specialty",
            "status",
            "priority",
            "due_at",
            "created_at",
            "id",
        ),
        # What a claim scans: the claimable statuses only (a partial index stays small however
        # many referrals are finished), in queue order.
        Index(
            "ix_referrals_claimable",
            "route",
            "priority",
            "due_at",
            "created_at",
            "id",
            postgresql_where=text("status IN ('ready', 'in_progress')"),
            sqlite_where=text("status IN ('ready', 'in_progress')"),
        ),
        Index(
            "ix_referrals_claimable_specialty",
            "route",
            "specialty",
            "priority",
            "due_at",
            "created_at",
            "id",
            postgresql_where=text("status IN ('ready', 'in_progress')"),
            sqlite_where=text("status IN ('ready', 'in_progress')"),
        ),
        Index("ix_referrals_status_due_at", "status", "due_at"),
        # GET /v1/referrals?assigned_to= compares without letter case, as claims do.
        Index("ix_referrals_assigned_to_folded", text("lower(assigned_to)"), "status"),
        Index("ix_referrals_death_id_route_status", "death_id", "route", "status"),
        # A period's referrals, for the reports.
        Index("ix_referrals_died_on", "died_on"),
        # A trust's reports in a deployment of many (migration 0030).
        Index("ix_referrals_organisation_id_died_on", "organisation_id", "died_on"),
        owned_with("deaths", "death_id"),
        # A review programme's queue (issue 17): its claimable referrals in queue order.
        Index(
            "ix_referrals_programme_claimable",
            "programme_id",
            "priority",
            "due_at",
            "created_at",
            "id",
            postgresql_where=text("status IN ('ready', 'in_progress')"),
            sqlite_where=text("status IN ('ready', 'in_progress')"),
        ),
        Index("ix_referrals_programme_id", "programme_id"),
    )

    death_id: Mapped[uuid.UUID]
    # The death's organisation, copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    # The death's local date of death, copied so that reports range-scan a period's referrals
    # (kept in step when the death's time is corrected: app.deaths.service).
    died_on: Mapped[date]
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
    # The lease. Stored status stays `ready` (or `in_progress`) while leased: a live lease
    # reads as `claimed`, and an expired one is simply claimable again, with no job to run.
    lease_id: Mapped[uuid.UUID | None]
    leased_by: Mapped[uuid.UUID | None]  # the client holding the lease
    leased_to: Mapped[str | None] = mapped_column(String(200))  # the reviewer it is for
    claimed_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    # Stage-2 SJR: the stage-1 reviewer, who may not take the second review.
    excluded_reviewer: Mapped[str | None] = mapped_column(String(200))
    external_reference: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[datetime | None]
    # The review programme whose queue holds it (route `programme`, issue 17); null otherwise.
    programme_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("programmes.id"))
    version: Mapped[int] = mapped_column(default=1)

    @property
    def overdue(self) -> bool:
        """Still open and past its due date (read by the response schemas)."""
        return self.status in OPEN_REFERRAL_STATUSES and self.due_at < utcnow()

    def lease_live(self, at: datetime) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > at

    @property
    def effective_status(self) -> str:
        """`claimed` while a live lease holds a ready referral; otherwise the stored status."""
        if self.status == "ready" and self.lease_live(utcnow()):
            return "claimed"
        return self.status


class ReferralTransition(IdMixin, Base):
    """Who moved a referral from one state to another, when, and why. Append-only."""

    __tablename__ = "referral_transitions"
    __table_args__ = (Index("ix_referral_transitions_referral_id", "referral_id", "occurred_at"),)

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    death_id: Mapped[uuid.UUID]
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    client_id: Mapped[uuid.UUID | None]
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
