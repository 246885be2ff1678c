from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin, owned_with


class Theme(IdMixin, TimestampMixin, Base):
    """A theme that reviews keep finding. Renaming keeps its id (and so its history); retiring
    hides it from new findings without touching old ones."""

    __tablename__ = "themes"

    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    retired_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)


class Finding(IdMixin, TimestampMixin, Base):
    """One piece of learning from a review: a problem in care, good practice, a learning point
    or a concern, under a theme. The death's date, specialty and the review's route are copied
    in so that filters and reports need no joins."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_theme_id_died_on", "theme_id", "died_on"),
        Index("ix_findings_died_on", "died_on"),
        # A trust's reports in a deployment of many (migration 0030).
        Index("ix_findings_organisation_id_died_on", "organisation_id", "died_on"),
        Index("ix_findings_death_id", "death_id"),
        Index("ix_findings_review_id", "review_id"),
        owned_with("deaths", "death_id"),
    )

    death_id: Mapped[uuid.UUID]
    # The death's organisation, copied (app.models.base.owned_with).
    organisation_id: Mapped[uuid.UUID]
    review_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reviews.id"))
    kind: Mapped[str] = mapped_column(String(20))
    theme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("themes.id"))
    phase: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    died_on: Mapped[date]
    specialty: Mapped[str | None] = mapped_column(String(100))
    route: Mapped[str | None] = mapped_column(String(20))
    recorded_by: Mapped[str | None] = mapped_column(String(200))
    created_by_client_id: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(default=1)
