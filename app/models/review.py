from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, TimestampMixin, owned_with, utcnow


class Review(IdMixin, TimestampMixin, Base):
    """What a route produced for one referral: an SJR form, an M&M outcome, a LeDeR
    notification, an external reference. The instrument as submitted is kept whole in
    ``detail``; the scores that reports aggregate are columns (and the SJR's phase ratings and
    problems in care are rows of their own)."""

    __tablename__ = "reviews"
    __table_args__ = (
        # A death's reviews; the reports' columns included so that they probe the index alone.
        Index(
            "ix_reviews_death_id_route_status",
            "death_id",
            "route",
            "status",
            postgresql_include=[
                "stage",
                "submitted_at",
                "id",
                "avoidability",
                "overall_rating",
                "notified_at",
                "external_status",
                "organisation_id",
            ],
        ),
        Index("ix_reviews_route_submitted_at", "route", "submitted_at"),
        # A period's reviews, for the reports.
        Index("ix_reviews_died_on", "died_on"),
        # A trust's reports in a deployment of many (migration 0030).
        Index("ix_reviews_organisation_id_died_on", "organisation_id", "died_on"),
        owned_with("deaths", "death_id"),
        # What a phase rating or a problem references (owned_with).
        UniqueConstraint("id", "organisation_id"),
    )

    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), unique=True)
    death_id: Mapped[uuid.UUID]
    # The death's organisation, copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    # The death's local date of death, copied so that reports range-scan a period's reviews
    # (kept in step when the death's time is corrected: app.deaths.service).
    died_on: Mapped[date]
    route: Mapped[str] = mapped_column(String(20))
    stage: Mapped[int | None] = mapped_column(SmallInteger)
    instrument: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))  # draft | submitted
    reviewer: Mapped[str | None] = mapped_column(String(200))
    submitted_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # SJR (and M&M's optional avoidability)
    overall_rating: Mapped[int | None] = mapped_column(SmallInteger)
    quality_of_records: Mapped[int | None] = mapped_column(SmallInteger)
    avoidability: Mapped[int | None] = mapped_column(SmallInteger)
    # M&M
    meeting_date: Mapped[date | None]
    outcome: Mapped[str | None] = mapped_column(String(30))
    # LeDeR and external routes
    external_reference: Mapped[str | None] = mapped_column(String(100))
    external_status: Mapped[str | None] = mapped_column(String(20))
    notified_at: Mapped[datetime | None]
    external_due_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    created_by_client_id: Mapped[uuid.UUID | None]


class ReviewPhaseRating(IdMixin, Base):
    __tablename__ = "review_phase_ratings"
    __table_args__ = (
        UniqueConstraint("review_id", "phase"),
        # Care quality's phase ratings of the final SJRs, read from the index alone.
        Index(
            "ix_review_phase_ratings_review_id_report",
            "review_id",
            postgresql_include=["phase", "rating", "organisation_id"],
        ),
        owned_with("reviews", "review_id"),
    )

    review_id: Mapped[uuid.UUID]
    # The review's organisation (its death's), copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    phase: Mapped[str] = mapped_column(String(20))
    rating: Mapped[int] = mapped_column(SmallInteger)
    # The organisation that gave the care this phase judges (issue 16: cross-system SJR).
    care_organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))


class ReviewProblem(IdMixin, Base):
    """A problem in care an SJR found: its type, the phase it arose in, whether it led to harm."""

    __tablename__ = "review_problems"
    __table_args__ = (
        Index("ix_review_problems_review_id", "review_id"),
        owned_with("reviews", "review_id"),
    )

    review_id: Mapped[uuid.UUID]
    # The review's organisation (its death's), copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    problem_type: Mapped[str] = mapped_column(String(20))
    phase: Mapped[str] = mapped_column(String(20))
    harm: Mapped[str] = mapped_column(String(10))
    care_organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))


class ReviewVersion(IdMixin, Base):
    """A submitted review as it stood before an amendment replaced it."""

    __tablename__ = "review_versions"
    __table_args__ = (UniqueConstraint("review_id", "version"),)

    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reviews.id"))
    version: Mapped[int]
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)
    superseded_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_by_client_id: Mapped[uuid.UUID | None]


class ScaleLabel(Base):
    """The one table the labels of every scored scale come from (care ratings, quality of
    records, avoidability). Seeded by the migrations."""

    __tablename__ = "scale_labels"

    scale: Mapped[str] = mapped_column(String(30), primary_key=True)
    value: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
