"""What a pseudonymised client (a commissioner) is shown of a death notification: the channel,
the sending system and the month, with the death pseudonymised; never the sender's reference
or message id (which a sending system can look a patient up by), nor exact times."""

from __future__ import annotations

import uuid

from pydantic import Field

from app.deaths import pseudonymised as deaths
from app.deaths.pseudonymised import DeathPseudonymised
from app.notifications.schemas import (
    CHANNEL,
    CORRECTION,
    DEATH,
    MCCD_OVERDUE,
    SCRUTINY_OVERDUE,
    Channel,
    Correction,
    NotificationRecorded,
    WorklistItem,
)
from app.privacy.pseudonym import month
from app.privacy.schemas import MONTH, PseudonymisedModel


class NotificationPseudonymised(PseudonymisedModel):
    id: uuid.UUID
    death_id: uuid.UUID
    source_system: str
    channel: Channel = Field(description=CHANNEL)
    received_month: str = Field(description=MONTH)
    death_created: bool = Field(
        description="true when this notification created the death; false when it was known."
    )
    correction: Correction | None = Field(description=CORRECTION)
    death: DeathPseudonymised = Field(description=DEATH)


def notification(key: bytes, full: NotificationRecorded) -> NotificationPseudonymised:
    return NotificationPseudonymised(
        id=full.id,
        death_id=full.death_id,
        source_system=full.source_system,
        channel=full.channel,
        received_month=month(full.received_at),
        death_created=full.death_created,
        correction=full.correction,
        death=deaths.death(key, full.death),
    )


class WorklistItemPseudonymised(PseudonymisedModel):
    """A worklist entry without exact times (which would give the time of death)."""

    death: DeathPseudonymised = Field(description="The death awaiting scrutiny.")
    waiting_days: int = Field(description="Whole days since the death was notified.")
    mccd_overdue: bool = Field(description=MCCD_OVERDUE)
    scrutiny_overdue: bool = Field(description=SCRUTINY_OVERDUE)
    claimed: bool = Field(description="Whether an ME office has a live claim on the death.")


def worklist_item(key: bytes, full: WorklistItem) -> WorklistItemPseudonymised:
    return WorklistItemPseudonymised(
        death=deaths.death(key, full.death),
        waiting_days=int(full.waiting_hours // 24),
        mccd_overdue=full.mccd_overdue,
        scrutiny_overdue=full.scrutiny_overdue,
        claimed=full.claim is not None,
    )
