from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, JSONType, utcnow


class DeathNotification(IdMixin, Base):
    """A trust system's word that a patient died (JSON, HL7 v2 ADT or FHIR), or the key a
    later screening was sent under: the sender's source system and reference name one death.
    Several notifications (two systems, or the ME office's own reference) may name the same
    death; the sender's key is unique, which makes a retry find what it made.

    What the key was sent about is kept as keyed hashes, never the values (migration 0020):
    ``patient_keys`` identify the patient (NHS number, local id and name, each with the date of
    birth, as far as they were sent), ``content_hash`` the death as notified.
    The same key for another patient is refused; for the same patient with other details it is
    a correction (app.notifications.corrections)."""

    __tablename__ = "death_notifications"
    __table_args__ = (
        UniqueConstraint("source_system", "source_reference"),
        Index("ix_death_notifications_death_id", "death_id"),
    )

    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"))
    source_system: Mapped[str] = mapped_column(String(100))
    source_reference: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))  # json | hl7v2 | fhir | screening
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]  # the sender's own time for the message, when it gave one
    message_id: Mapped[str | None] = mapped_column(String(100))  # e.g. MSH-10
    client_id: Mapped[uuid.UUID | None]
    # {"nhs" | "local" | "name": HMAC}: the patient at each kind of identifier it was sent with
    patient_keys: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    corrected_at: Mapped[datetime | None]  # the last correction sent under the key
    correction: Mapped[str | None] = mapped_column(String(20))  # applied | not_applied


class WorklistClaim(Base):
    """The medical examiner office's lease on a death awaiting scrutiny: one per death, bound
    to the client that claimed it (and the person it claimed for). An expired lease needs no
    clean-up: the death is simply claimable again."""

    __tablename__ = "worklist_claims"

    death_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deaths.id"), primary_key=True)
    lease_id: Mapped[uuid.UUID]
    leased_by: Mapped[uuid.UUID]
    leased_to: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime]
