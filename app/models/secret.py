from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class ServiceSecret(Base):
    """A secret the deployment generates for itself (at `lfd migrate`), shared by every worker
    and replica through the database: e.g. the key of the patient pseudonyms. An environment
    setting may override it (app.privacy)."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
