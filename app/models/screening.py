from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, TimestampMixin, owned_with, utcnow


class Screening(IdMixin, TimestampMixin, Base):
    """The medical examiner's scrutiny of one death (one per death; amendments keep history)."""

    __tablename__ = "screenings"
    __table_args__ = (
        # A period's screenings, with what the timeliness report reads, from the index alone.
        Index(
            "ix_screenings_died_on",
            "died_on",
            postgresql_include=["death_id", "screened_at", "organisation_id"],
        ),
        # A trust's reports in a deployment of many (migration 0030).
        Index(
            "ix_screenings_organisation_id_died_on",
            "organisation_id",
            "died_on",
            postgresql_include=["death_id", "screened_at"],
        ),
        owned_with("deaths", "death_id"),
    )

    death_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    # The death's organisation, copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    # The death's local date of death, copied so that reports range-scan a period's screenings
    # (kept in step when the death's time is corrected: app.deaths.service).
    died_on: Mapped[date]
    examiner_name: Mapped[str] = mapped_column(String(200))
    examiner_gmc_number: Mapped[str] = mapped_column(String(7))
    screened_at: Mapped[datetime]
    records_reviewed: Mapped[bool]
    qap_discussed: Mapped[bool]
    bereaved_contacted: Mapped[bool]
    bereaved_concerns: Mapped[str | None] = mapped_column(Text)
    staff_concerns: Mapped[str | None] = mapped_column(Text)
    cause_part_1a: Mapped[str | None] = mapped_column(String(500))
    cause_part_1b: Mapped[str | None] = mapped_column(String(500))
    cause_part_1c: Mapped[str | None] = mapped_column(String(500))
    cause_part_2: Mapped[str | None] = mapped_column(String(500))
    mccd_issued_at: Mapped[datetime | None]
    coroner_notified: Mapped[bool]
    coroner_reason: Mapped[str | None] = mapped_column(String(40))
    clinical_governance_concern: Mapped[str | None] = mapped_column(Text)
    death_expected: Mapped[bool]
    patient_safety_concern: Mapped[str | None] = mapped_column(Text)
    routes_requested: Mapped[list[str]] = mapped_column(JSONType)
    # The scrutiny in full (app.screenings.scrutiny): the times the ME reports range over, in
    # columns; QAP, proposed and coded causes, registrar rejections, urgent release and the
    # contact log with the bereaved, as JSON (null for screenings recorded before it existed).
    notes_received_at: Mapped[datetime | None]
    scrutiny_completed_at: Mapped[datetime | None]
    scrutiny: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(default=1)
    recorded_by_client_id: Mapped[uuid.UUID | None]


class RouteOverride(IdMixin, Base):
    """A route the rules required and the medical examiner declined, with the written reason."""

    __tablename__ = "route_overrides"
    __table_args__ = (
        UniqueConstraint("screening_id", "route"),
        Index("ix_route_overrides_died_on", "died_on"),
        owned_with("deaths", "death_id"),
    )

    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screenings.id"))
    death_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # The death's organisation, copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    died_on: Mapped[date]  # the death's, copied (as on screenings)
    route: Mapped[str] = mapped_column(String(20))
    reason_codes: Mapped[list[str]] = mapped_column(JSONType)
    override_reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScreeningVersion(IdMixin, Base):
    """A screening as it stood before an amendment replaced it."""

    __tablename__ = "screening_versions"
    __table_args__ = (UniqueConstraint("screening_id", "version"),)

    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screenings.id"))
    version: Mapped[int]
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)
    superseded_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_by_client_id: Mapped[uuid.UUID | None]


class ReferralJudgement(IdMixin, Base):
    """A governance reviewer's retrospective judgement of the medical examiner's referral
    decision on one screened death: one per screening, the current version; a judgement that
    replaces it keeps this one as a ``ReferralJudgementVersion`` first."""

    __tablename__ = "referral_judgements"
    __table_args__ = (
        Index("ix_referral_judgements_died_on", "died_on"),
        owned_with("deaths", "death_id"),
    )

    screening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("screenings.id"), unique=True)
    death_id: Mapped[uuid.UUID]
    # The death's organisation, copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    died_on: Mapped[date]  # the death's, copied (as on screenings)
    # appropriate | possibly_missed | should_have_been_referred
    judgement: Mapped[str] = mapped_column(String(30))
    criterion: Mapped[str | None] = mapped_column(String(40))  # a referral reason code
    reason: Mapped[str] = mapped_column(Text)
    judged_at: Mapped[datetime] = mapped_column(default=utcnow)
    judged_by_client_id: Mapped[uuid.UUID | None]
    judged_by: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(default=1)


class ReferralJudgementVersion(IdMixin, Base):
    """A referral judgement as it stood before a later judgement replaced it."""

    __tablename__ = "referral_judgement_versions"
    __table_args__ = (UniqueConstraint("judgement_id", "version"),)

    judgement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_judgements.id"))
    version: Mapped[int]
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)
    superseded_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_by_client_id: Mapped[uuid.UUID | None]
