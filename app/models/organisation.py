"""Organisations (trusts, their sites, ICBs, GP practices, other providers) and the shares
that open one death to another organisation for a stated purpose and period (issue 16)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, TimestampMixin, utcnow


class Organisation(IdMixin, TimestampMixin, Base):
    """One organisation of the registry. ``parent_id``: a site's trust, a practice's ICB, a
    trust's ICB. The default organisation (one per deployment) owns whatever was recorded
    before organisations existed (``lfd organisations adopt``)."""

    __tablename__ = "organisations"
    __table_args__ = (Index("ix_organisations_parent_id", "parent_id"),)

    ods_code: Mapped[str | None] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(30))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    # Other names it is written as ("UHL"), each matched without regard to case or punctuation.
    aliases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Per-organisation settings over the deployment's (app.organisations.settings).
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)


class CaseShare(IdMixin, Base):
    """One death shared with another organisation: its clients see it identifiably, for the
    purpose and until the share ends or is revoked, and may post their review or findings."""

    __tablename__ = "case_shares"
    __table_args__ = (
        Index("ix_case_shares_organisation_id_death_id", "organisation_id", "death_id"),
        Index("ix_case_shares_death_id", "death_id"),
    )

    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    purpose: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"))
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_client_id: Mapped[uuid.UUID | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_client_id: Mapped[uuid.UUID | None]
